//! Signed, expiring links in emails: the continuity link that reopens a visitor's chat in
//! any browser, and the visitor's unsubscribe link.
//!
//! A token is `<visitor id>.<expiry, unix s>.<hex HMAC-SHA256>`; the MAC covers the
//! purpose, the visitor id and the expiry, under a key the server makes once and keeps in
//! the database (so every instance checks what another signed). Nothing else is stored:
//! a link stays valid until it expires. The clock is a parameter, so expiry is testable.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a continuity link works.
pub const CONTINUE_FOR_SECS: i64 = 7 * 24 * 60 * 60;
/// How long an unsubscribe link works (mail is kept and read long after it arrived).
pub const UNSUBSCRIBE_FOR_SECS: i64 = 365 * 24 * 60 * 60;
/// Longest token accepted: a UUID, a timestamp and 64 hex digits fit with room to spare.
const MAX_TOKEN_BYTES: usize = 200;

/// What a link lets its holder do; a token for one purpose is refused for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Continue,
    Unsubscribe,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Continue => b"continue",
            Purpose::Unsubscribe => b"unsubscribe",
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    Malformed,
    BadSignature,
    Expired,
}

/// Signs and checks tokens with the server's key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, purpose: Purpose, visitor_id: &str, expires_at: i64) -> Hmac<Sha256> {
        // HMAC takes a key of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(purpose.label());
        mac.update(b"\n");
        mac.update(visitor_id.as_bytes());
        mac.update(b"\n");
        mac.update(expires_at.to_string().as_bytes());
        mac
    }

    /// A token for `visitor_id`, valid until `expires_at` (unix seconds).
    pub fn sign(&self, purpose: Purpose, visitor_id: &str, expires_at: i64) -> String {
        let tag = self.mac(purpose, visitor_id, expires_at).finalize();
        format!(
            "{visitor_id}.{expires_at}.{}",
            hex::encode(tag.into_bytes())
        )
    }

    /// The visitor id a token names, if this server signed it for `purpose` and it has not
    /// expired at `now` (unix seconds). The tag is compared in constant time.
    pub fn verify(&self, purpose: Purpose, token: &str, now: i64) -> Result<String, LinkError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(LinkError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(visitor_id), Some(expires), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Malformed);
        };
        let expires_at: i64 = expires.parse().map_err(|_| LinkError::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| LinkError::Malformed)?;
        if visitor_id.is_empty() {
            return Err(LinkError::Malformed);
        }
        self.mac(purpose, visitor_id, expires_at)
            .verify_slice(&tag)
            .map_err(|_| LinkError::BadSignature)?;
        if now >= expires_at {
            return Err(LinkError::Expired);
        }
        Ok(visitor_id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signed_link_names_its_visitor_until_it_expires() {
        let signer = Signer::new(b"key");
        let token = signer.sign(Purpose::Continue, "v-1", NOW + CONTINUE_FOR_SECS);
        assert_eq!(
            signer.verify(Purpose::Continue, &token, NOW),
            Ok("v-1".into())
        );
        let last_second = NOW + CONTINUE_FOR_SECS - 1;
        assert!(signer
            .verify(Purpose::Continue, &token, last_second)
            .is_ok());
        assert_eq!(
            signer.verify(Purpose::Continue, &token, NOW + CONTINUE_FOR_SECS),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn a_changed_visitor_expiry_or_tag_is_refused() {
        let signer = Signer::new(b"key");
        let token = signer.sign(Purpose::Continue, "v-1", NOW + 60);
        let tag = token.rsplit('.').next().unwrap();
        let other_visitor = format!("v-2.{}.{tag}", NOW + 60);
        let later = format!("v-1.{}.{tag}", NOW + 6_000);
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        for forged in [other_visitor, later, flipped] {
            assert_eq!(
                signer.verify(Purpose::Continue, &forged, NOW),
                Err(LinkError::BadSignature),
                "{forged}"
            );
        }
        // Another server's key, or the other purpose.
        let elsewhere = Signer::new(b"other key");
        assert!(elsewhere.verify(Purpose::Continue, &token, NOW).is_err());
        assert!(signer.verify(Purpose::Unsubscribe, &token, NOW).is_err());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let signer = Signer::new(b"key");
        for junk in [
            "",
            "a",
            "a.b",
            "a.1.zz",
            ".1.00",
            "a.1.00.x",
            &"x".repeat(500),
        ] {
            assert_eq!(
                signer.verify(Purpose::Continue, junk, NOW),
                Err(LinkError::Malformed),
                "{junk}"
            );
        }
    }
}
