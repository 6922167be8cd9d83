//! Identity verification: the host site vouches for a logged-in user by signing its own
//! user id with a secret only it and Parley know, so a visitor can claim an `external_id`
//! (and with it that user's chats on every device) only with the site's signature.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::{DomainError, ExternalId};

/// What a new visitor says about who it is: both fields, one, or neither, as sent.
#[derive(Debug, Default, Clone)]
pub struct Claim {
    pub external_id: Option<String>,
    pub identity_hash: Option<String>,
}

impl Claim {
    fn is_empty(&self) -> bool {
        self.external_id.is_none() && self.identity_hash.is_none()
    }
}

/// The server's identity settings. Cheap to clone.
#[derive(Clone, Default)]
pub struct Identity {
    secret: Option<Vec<u8>>,
    required: bool,
}

impl std::fmt::Debug for Identity {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("secret", &self.secret.as_ref().map(|_| "…"))
            .field("required", &self.required)
            .finish()
    }
}

/// Shortest accepted secret, in bytes: an HMAC key as guessable as a password would let
/// anyone sign any user id.
pub const MIN_SECRET_BYTES: usize = 16;

impl Identity {
    /// `required` without a secret could admit no visitor at all: refused at start.
    pub fn new(secret: Option<&str>, required: bool) -> Result<Self, String> {
        let secret = secret.filter(|s| !s.is_empty());
        match secret {
            None if required => Err("--identity-required needs --identity-secret".into()),
            Some(s) if s.len() < MIN_SECRET_BYTES => Err(format!(
                "--identity-secret must be at least {MIN_SECRET_BYTES} bytes"
            )),
            _ => Ok(Self {
                secret: secret.map(|s| s.as_bytes().to_vec()),
                required,
            }),
        }
    }

    /// Whether visitors without a verified identity are refused.
    pub fn required(&self) -> bool {
        self.required
    }

    /// The verified `external_id` of a claim, `None` for an anonymous visitor (allowed only
    /// when identity is not required).
    ///
    /// - no secret configured, but identity fields sent: `Invalid` (the site's integration
    ///   is wrong; a `401` would hide that);
    /// - `identity_hash` without `external_id`, or a malformed `external_id`: `Invalid`;
    /// - a missing or wrong hash, or no claim while identity is required: `Unauthorized`.
    pub fn verify(&self, claim: &Claim) -> Result<Option<ExternalId>, DomainError> {
        if claim.is_empty() {
            return if self.required {
                Err(DomainError::Unauthorized)
            } else {
                Ok(None)
            };
        }
        let Some(secret) = &self.secret else {
            return Err(DomainError::invalid(
                "identity verification is not configured on this server \
                 (no identity secret): send no external_id or identity_hash",
            ));
        };
        let external_id = claim
            .external_id
            .clone()
            .ok_or_else(|| DomainError::invalid("identity_hash needs an external_id"))?;
        let external_id = ExternalId::parse(external_id)?;
        let hash = claim
            .identity_hash
            .as_deref()
            .ok_or(DomainError::Unauthorized)?;
        // Any case of hex decodes; a hash that is no hex at all is simply wrong.
        let hash = hex::decode(hash).map_err(|_| DomainError::Unauthorized)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
        mac.update(external_id.as_str().as_bytes());
        // Constant-time: the comparison does not tell how many leading bytes were right.
        mac.verify_slice(&hash)
            .map_err(|_| DomainError::Unauthorized)?;
        Ok(Some(external_id))
    }
}

/// The hash a host site computes for `external_id`: lowercase hex HMAC-SHA256 (for tests
/// and documentation; the server only ever verifies).
pub fn sign(secret: &str, external_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(external_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef-secret";

    fn claim(id: Option<&str>, hash: Option<&str>) -> Claim {
        Claim {
            external_id: id.map(str::to_string),
            identity_hash: hash.map(str::to_string),
        }
    }

    #[test]
    fn the_hash_is_lowercase_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn only_the_right_hash_verifies_its_id() {
        let identity = Identity::new(Some(SECRET), false).unwrap();
        let good = sign(SECRET, "42");
        let verified = identity.verify(&claim(Some("42"), Some(&good))).unwrap();
        assert_eq!(verified.unwrap().as_str(), "42");
        let upper = good.to_uppercase();
        assert!(identity.verify(&claim(Some("42"), Some(&upper))).is_ok());
        for wrong in [
            claim(Some("43"), Some(&good)),
            claim(Some("42"), Some(&sign("another secret of length", "42"))),
            claim(Some("42"), Some(&good[..62])),
            claim(Some("42"), Some("zz")),
            claim(Some("42"), None),
        ] {
            assert!(matches!(
                identity.verify(&wrong),
                Err(DomainError::Unauthorized)
            ));
        }
        assert!(matches!(
            identity.verify(&claim(None, Some(&good))),
            Err(DomainError::Invalid(_))
        ));
        assert!(identity.verify(&Claim::default()).unwrap().is_none());
    }

    #[test]
    fn required_identity_refuses_anonymous_visitors() {
        let identity = Identity::new(Some(SECRET), true).unwrap();
        assert!(matches!(
            identity.verify(&Claim::default()),
            Err(DomainError::Unauthorized)
        ));
        assert!(Identity::new(None, true).is_err());
        assert!(Identity::new(Some("short"), false).is_err());
    }

    #[test]
    fn without_a_secret_identity_fields_are_invalid() {
        let identity = Identity::new(None, false).unwrap();
        let sent = claim(Some("42"), Some(&sign(SECRET, "42")));
        assert!(matches!(
            identity.verify(&sent),
            Err(DomainError::Invalid(_))
        ));
        assert!(identity.verify(&Claim::default()).unwrap().is_none());
    }
}
