//! Who is calling: bearer tokens (random, stored hashed), agent passwords (argon2id),
//! and the [`Caller`] extractor every protected handler takes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use futures_util::future::LocalBoxFuture;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::{self, Role};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::tokens::{self, Owner};

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Visitor { id: String },
    Agent { id: String, role: Role },
}

impl Caller {
    pub fn id(&self) -> &str {
        match self {
            Caller::Visitor { id } | Caller::Agent { id, .. } => id,
        }
    }

    pub fn is_agent(&self) -> bool {
        matches!(self, Caller::Agent { .. })
    }

    /// The agent's id, or `403` for a visitor.
    pub fn require_agent(&self) -> Result<&str, ApiError> {
        match self {
            Caller::Agent { id, .. } => Ok(id),
            Caller::Visitor { .. } => Err(ApiError::Forbidden("only agents may do this")),
        }
    }

    pub fn require_admin(&self) -> Result<&str, ApiError> {
        match self {
            Caller::Agent {
                id,
                role: Role::Admin,
            } => Ok(id),
            _ => Err(ApiError::Forbidden("only admins may do this")),
        }
    }

    /// The visitor's id, or `403` for an agent.
    pub fn require_visitor(&self) -> Result<&str, ApiError> {
        match self {
            Caller::Visitor { id } => Ok(id),
            Caller::Agent { .. } => Err(ApiError::Forbidden("only visitors may do this")),
        }
    }
}

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
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ApiError::Internal(Box::new(std::io::Error::other(e.to_string()))))
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

/// How long a looked-up token is trusted without asking the database again. Revocations made
/// through this server take effect at once; ones made by the CLI within this time.
const SESSION_CACHE_TTL: Duration = Duration::from_secs(10);
const SESSION_CACHE_MAX: usize = 100_000;

/// A token hash's owner and when it was looked up.
type CachedOwners = HashMap<[u8; 32], (Owner, Instant)>;

/// Token hash → owner, so a request does not hit the database to authenticate.
#[derive(Clone, Default)]
pub struct SessionCache {
    entries: Arc<Mutex<CachedOwners>>,
    /// Bumped by every revocation: a lookup that started before one is not cached, so a
    /// revoked token cannot slip back in between its database read and the cache write.
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl SessionCache {
    fn get(&self, hash: &[u8; 32]) -> Option<Owner> {
        let entries = self.entries.lock().expect("cache lock is never poisoned");
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < SESSION_CACHE_TTL)
            .map(|(owner, _)| owner.clone())
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn put(&self, hash: [u8; 32], owner: Owner, looked_up_at: u64) {
        let mut entries = self.entries.lock().expect("cache lock is never poisoned");
        if self.generation() != looked_up_at {
            return;
        }
        if entries.len() >= SESSION_CACHE_MAX {
            entries.retain(|_, (_, at)| at.elapsed() < SESSION_CACHE_TTL);
            if entries.len() >= SESSION_CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(hash, (owner, Instant::now()));
    }

    /// Forgets one token (logout).
    pub fn forget(&self, hash: &[u8; 32]) {
        self.entries
            .lock()
            .expect("cache lock is never poisoned")
            .remove(hash);
    }

    /// Forgets every token of an owner (disable, password change).
    pub fn forget_owner(&self, owner_id: &str) {
        let mut entries = self.entries.lock().expect("cache lock is never poisoned");
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries.retain(|_, (owner, _)| match owner {
            Owner::Visitor { id } | Owner::Agent { id, .. } => id != owner_id,
        });
    }
}

/// The bearer token of a request, if it has a well-formed one.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 128)
        .then_some(token)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let hash = bearer(req).map(hash_token);
        Box::pin(async move {
            let (Some(state), Some(hash)) = (state, hash) else {
                return Err(ApiError::Unauthorized);
            };
            let owner = match state.sessions.get(&hash) {
                Some(owner) => owner,
                None => {
                    let generation = state.sessions.generation();
                    let now = domain::now();
                    let owner = state
                        .store
                        .read(move |conn| Ok(tokens::lookup(conn, &hash, &now)?))
                        .await?
                        .ok_or(ApiError::Unauthorized)?;
                    state.sessions.put(hash, owner.clone(), generation);
                    owner
                }
            };
            Ok(match owner {
                Owner::Visitor { id } => Caller::Visitor { id },
                Owner::Agent { id, role } => Caller::Agent { id, role },
            })
        })
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
