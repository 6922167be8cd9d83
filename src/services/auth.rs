//! Who is calling: bearer tokens (random, stored hashed), agent passwords (argon2id), and
//! [`Sessions`], which turns a token into a [`Caller`] without a database read per request
//! and makes a revocation take effect at once, held polls included.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::{self, Caller, DomainError};
use crate::poll::Hub;
use crate::services::bus::Bus;
use crate::store::tokens::{self, Owner};
use crate::store::Store;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// A new bearer token and the hash that is stored for it.
pub struct NewToken {
    pub token: String,
    pub hash: [u8; 32],
}

/// 256 random bits, hex-encoded, with a prefix that tells the kind apart in logs and configs.
pub fn new_token(kind: &str) -> NewToken {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let prefix = if kind == "agent" { "pa_" } else { "pv_" };
    let token = format!("{prefix}{}", hex::encode(secret));
    let hash = hash_token(&token);
    NewToken { token, hash }
}

/// Tokens are high-entropy, so one SHA-256 is enough (no salt or stretching needed).
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// argon2id with the crate's recommended parameters.
pub fn hash_password(password: &str) -> Result<String, DomainError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| DomainError::internal(format!("password hashing failed: {e}")))
}

/// Checks a password against a stored hash (argon2's comparison is constant-time).
/// With `None` it checks against a dummy hash, so unknown emails cost the same time.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default());
    let stored = stored.unwrap_or(dummy);
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// How long a looked-up token is trusted without asking the database again. Revocations
/// made through this server take effect at once; ones made elsewhere (the CLI) move the
/// session epoch, which [`Sessions::watch_epoch`] looks at every [`EPOCH_CHECK_EVERY`]. A
/// short lifetime here would cost a database read per held poll per lifetime: with 10,000
/// polls and 10 s, a thousand reads a second.
const SESSION_CACHE_TTL: Duration = Duration::from_secs(10 * 60);
const SESSION_CACHE_MAX: usize = 100_000;
/// How often the session epoch is read.
pub const EPOCH_CHECK_EVERY: Duration = Duration::from_secs(2);

/// A token hash's owner, when it was looked up, and when the token expires.
type CachedOwners = HashMap<[u8; 32], (Owner, Instant, Option<OffsetDateTime>)>;

/// Token hash → owner, so a request does not hit the database to authenticate.
#[derive(Default)]
struct SessionCache {
    entries: Mutex<CachedOwners>,
    /// Bumped by every revocation: a lookup that started before one is not cached, so a
    /// revoked token cannot slip back in between its database read and the cache write.
    generation: std::sync::atomic::AtomicU64,
}

impl SessionCache {
    fn get(&self, hash: &[u8; 32]) -> Option<Owner> {
        let entries = self.entries.lock().expect("cache lock is never poisoned");
        entries
            .get(hash)
            .filter(|(_, at, expires)| {
                at.elapsed() < SESSION_CACHE_TTL
                    && expires.is_none_or(|e| e > OffsetDateTime::now_utc())
            })
            .map(|(owner, _, _)| owner.clone())
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn put(
        &self,
        hash: [u8; 32],
        owner: Owner,
        expires: Option<OffsetDateTime>,
        looked_up_at: u64,
    ) {
        let mut entries = self.entries.lock().expect("cache lock is never poisoned");
        if self.generation() != looked_up_at {
            return;
        }
        if entries.len() >= SESSION_CACHE_MAX {
            entries.retain(|_, (_, at, _)| at.elapsed() < SESSION_CACHE_TTL);
            if entries.len() >= SESSION_CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(hash, (owner, Instant::now(), expires));
    }

    /// Forgets one token.
    fn forget(&self, hash: &[u8; 32]) {
        self.entries
            .lock()
            .expect("cache lock is never poisoned")
            .remove(hash);
    }

    /// Forgets every token.
    fn clear(&self) {
        let mut entries = self.entries.lock().expect("cache lock is never poisoned");
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries.clear();
    }

    /// Forgets every token of an owner (disable, password change).
    fn forget_owner(&self, owner_id: &str) {
        let mut entries = self.entries.lock().expect("cache lock is never poisoned");
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries.retain(|_, (owner, _, _)| match owner {
            Owner::Visitor { id, .. } | Owner::Agent { id, .. } => id != owner_id,
        });
    }
}

/// Authenticates tokens and revokes them. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    store: Store,
    hub: Hub,
    bus: Bus,
    cache: Arc<SessionCache>,
    /// With identity verification required, a visitor the host site did not vouch for is
    /// refused here, on every request: its token works nowhere (not only at creation).
    verified_visitors_only: bool,
}

impl Sessions {
    pub fn new(store: Store, hub: Hub, bus: Bus) -> Self {
        Self {
            store,
            hub,
            bus,
            cache: Arc::default(),
            verified_visitors_only: false,
        }
    }

    /// Refuses the tokens of visitors without a verified identity (`--identity-required`).
    pub fn verified_visitors_only(mut self, only: bool) -> Self {
        self.verified_visitors_only = only;
        self
    }

    /// The live owner of a token hash, or `Unauthorized`.
    pub async fn authenticate(&self, hash: [u8; 32]) -> Result<Caller, DomainError> {
        let owner = match self.cache.get(&hash) {
            Some(owner) => owner,
            None => {
                let generation = self.cache.generation();
                let now = domain::now();
                let (owner, expires_at) = self
                    .store
                    .read(move |db| Ok(tokens::lookup(db, &hash, &now)?))
                    .await?
                    .ok_or(DomainError::Unauthorized)?;
                let expires = expires_at.and_then(|at| OffsetDateTime::parse(&at, &Rfc3339).ok());
                self.cache.put(hash, owner.clone(), expires, generation);
                owner
            }
        };
        Ok(match owner {
            Owner::Visitor {
                verified: false, ..
            } if self.verified_visitors_only => return Err(DomainError::Unauthorized),
            Owner::Visitor { id, .. } => Caller::Visitor { id },
            Owner::Agent { id, role } => Caller::Agent { id, role },
        })
    }

    /// Call after the deletion of these tokens committed: they stop working at once, and
    /// their held polls answer `401` now rather than deliver one more message.
    pub fn revoked(&self, hashes: &[[u8; 32]]) {
        self.forget(hashes);
        self.hub.revoke(hashes);
        self.bus.revoked(hashes);
    }

    /// Drops these tokens from the cache (another instance revoked them, and ends their
    /// polls held here through the hub).
    pub fn forget(&self, hashes: &[[u8; 32]]) {
        for hash in hashes {
            self.cache.forget(hash);
        }
    }

    /// Watches the session epoch until `shutdown`: when a revocation made elsewhere (the CLI)
    /// moved it, every cached session is read again.
    pub fn watch_epoch(&self, shutdown: CancellationToken) {
        let sessions = self.clone();
        tokio::spawn(async move {
            let mut seen = None;
            let mut every = tokio::time::interval(EPOCH_CHECK_EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = shutdown.cancelled() => break,
                }
                match sessions
                    .store
                    .read(|db| Ok(tokens::session_epoch(db)?))
                    .await
                {
                    Ok(epoch) => {
                        if seen.is_some_and(|seen| seen != epoch) {
                            sessions.cache.clear();
                        }
                        seen = Some(epoch);
                    }
                    Err(e) => log::warn!("could not read the session epoch: {e}"),
                }
            }
        });
    }

    /// Call after an owner's role or state changed: its cached sessions are read again.
    pub fn owner_changed(&self, owner_id: &str) {
        self.cache.forget_owner(owner_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let a = new_token("visitor");
        let b = new_token("visitor");
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with("pv_") && a.token.len() == 67);
        assert_eq!(a.hash, hash_token(&a.token));
    }

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("wrong horse battery", Some(&hash)));
        assert!(!verify_password("correct horse battery", None));
    }
}
