//! Validated input: services receive values that already obey the contract's rules.

use crate::domain::{text, DomainError};

/// Longest message body, in characters (not bytes).
pub const MAX_BODY_CHARS: usize = 4000;

/// A message body: non-empty after trimming, at most 4000 characters, no NUL, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(raw: String) -> Result<Self, DomainError> {
        if raw.trim().is_empty() {
            return Err(DomainError::invalid("body must not be empty"));
        }
        if text::has_nul(&raw) {
            return Err(DomainError::invalid("body must not contain NUL characters"));
        }
        if raw.chars().count() > MAX_BODY_CHARS {
            return Err(DomainError::invalid(format!(
                "body must be at most {MAX_BODY_CHARS} characters"
            )));
        }
        Ok(Self(raw))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A client's idempotency key: 1–64 of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(raw: String) -> Result<Self, DomainError> {
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if raw.is_empty() || raw.len() > 64 || !valid_chars {
            return Err(DomainError::invalid(
                "client_id must be 1-64 characters of A-Z, a-z, 0-9, _ and -",
            ));
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 32;

/// Most labels one chat may have.
pub const MAX_LABELS: usize = 20;

/// One label: trimmed, 1–32 characters, no control or bidi override characters, something
/// visible. Kept as typed otherwise (`VIP` and `vip` are two labels).
pub fn parse_label(raw: &str) -> Result<String, DomainError> {
    text::check_line("label", raw, MAX_LABEL_CHARS).map_err(|e| DomainError::invalid(e.to_string()))
}

/// A chat's set of labels: each one valid (see [`parse_label`]), duplicates dropped, sorted,
/// at most 20.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels(Vec<String>);

impl Labels {
    pub fn parse(raw: Vec<String>) -> Result<Self, DomainError> {
        let mut labels = raw
            .iter()
            .map(|label| parse_label(label))
            .collect::<Result<Vec<_>, _>>()?;
        labels.sort();
        labels.dedup();
        if labels.len() > MAX_LABELS {
            return Err(DomainError::invalid(format!(
                "a chat may have at most {MAX_LABELS} labels"
            )));
        }
        Ok(Self(labels))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// A person's display name: trimmed, 1–100 characters.
/// A person's display name: trimmed, 1–100 characters, no control or bidi override
/// characters (which can make "Support Team" read backwards), something visible.
pub fn parse_name(raw: &str) -> Result<String, DomainError> {
    text::check_display_name(raw, 100).map_err(|e| DomainError::invalid(e.to_string()))
}

/// An email address: trimmed, lower-cased, one `@` with text on both sides, at most 254 bytes.
pub fn parse_email(raw: &str) -> Result<String, DomainError> {
    let email = raw.trim().to_lowercase();
    let well_formed = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if !well_formed || email.len() > 254 {
        return Err(DomainError::invalid("email is not a valid address"));
    }
    Ok(email)
}

/// Shortest agent password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// An agent password: 10–1024 characters (the upper bound keeps hashing cheap to refuse).
pub fn parse_password(raw: &str) -> Result<String, DomainError> {
    let chars = raw.chars().count();
    if !(MIN_PASSWORD_CHARS..=1024).contains(&chars) {
        return Err(DomainError::invalid(format!(
            "password must be {MIN_PASSWORD_CHARS}-1024 characters"
        )));
    }
    Ok(raw.to_string())
}

/// A URL the visitor came from: at most 2048 bytes, http(s) only, else dropped.
pub fn parse_page_url(raw: &str) -> Option<String> {
    let url = raw.trim();
    let is_web = url.starts_with("http://") || url.starts_with("https://");
    (is_web && url.len() <= 2048 && !url.chars().any(char::is_control)).then(|| url.to_string())
}

/// Longest `external_id`, in bytes.
pub const MAX_EXTERNAL_ID_BYTES: usize = 256;

/// The host site's id for a logged-in visitor: 1–256 bytes, no control characters, kept
/// exactly as sent (the site signs these very bytes, so nothing is trimmed or folded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(raw: String) -> Result<Self, DomainError> {
        if raw.is_empty() || raw.len() > MAX_EXTERNAL_ID_BYTES {
            return Err(DomainError::invalid(format!(
                "external_id must be 1-{MAX_EXTERNAL_ID_BYTES} bytes"
            )));
        }
        if raw.chars().any(char::is_control) || text::has_bidi_control(&raw) {
            return Err(DomainError::invalid(
                "external_id must not contain control characters",
            ));
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Longest rating comment, in characters.
pub const MAX_RATING_COMMENT_CHARS: usize = 1000;

/// A visitor's rating of a chat: 1–5, with an optional comment of at most 1000 characters
/// (empty or white space only counts as none; no NUL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRating {
    pub rating: i64,
    pub comment: Option<String>,
}

impl NewRating {
    pub fn parse(rating: i64, comment: Option<String>) -> Result<Self, DomainError> {
        if !(1..=5).contains(&rating) {
            return Err(DomainError::invalid("rating must be 1, 2, 3, 4 or 5"));
        }
        let comment = comment.filter(|c| !c.trim().is_empty());
        if let Some(comment) = &comment {
            if comment.chars().count() > MAX_RATING_COMMENT_CHARS {
                return Err(DomainError::invalid(format!(
                    "comment must be at most {MAX_RATING_COMMENT_CHARS} characters"
                )));
            }
            if text::has_nul(comment) {
                return Err(DomainError::invalid(
                    "comment must not contain NUL characters",
                ));
            }
        }
        Ok(Self { rating, comment })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_of_only_white_space_is_refused() {
        assert!(MessageBody::parse(" \n\t ".into()).is_err());
        assert!(MessageBody::parse(String::new()).is_err());
    }

    #[test]
    fn a_body_is_counted_in_characters_not_bytes() {
        assert!(MessageBody::parse("é".repeat(4000)).is_ok());
        assert!(MessageBody::parse("é".repeat(4001)).is_err());
    }

    #[test]
    fn a_body_is_stored_verbatim() {
        let body = MessageBody::parse("  <b>hi</b>\n".into()).unwrap();
        assert_eq!(body.into_inner(), "  <b>hi</b>\n");
    }

    #[test]
    fn a_body_with_nul_is_refused() {
        assert!(MessageBody::parse("a\u{0}b".into()).is_err());
    }

    #[test]
    fn names_that_deceive_are_refused() {
        assert!(parse_name("\u{202E}Support Team").is_err());
        assert!(parse_name("\u{200B}").is_err());
        assert_eq!(parse_name("  Ann  ").unwrap(), "Ann");
    }

    #[test]
    fn client_ids_allow_only_the_contract_alphabet() {
        assert!(ClientId::parse("abc-DEF_123".into()).is_ok());
        assert!(ClientId::parse("a".repeat(64)).is_ok());
        assert!(ClientId::parse("a".repeat(65)).is_err());
        assert!(ClientId::parse(String::new()).is_err());
        assert!(ClientId::parse("a b".into()).is_err());
        assert!(ClientId::parse("é".into()).is_err());
    }

    #[test]
    fn labels_are_trimmed_sorted_and_deduplicated() {
        let labels = Labels::parse(vec![" vip ".into(), "billing".into(), "vip".into()]).unwrap();
        assert_eq!(labels.as_slice(), ["billing", "vip"]);
        assert_eq!(parse_label(&"é".repeat(32)).unwrap(), "é".repeat(32));
    }

    #[test]
    fn bad_labels_are_refused() {
        for raw in ["", "  ", "a\nb", "\u{202E}vip", "\u{200B}"] {
            assert!(parse_label(raw).is_err(), "{raw:?}");
        }
        assert!(parse_label(&"x".repeat(33)).is_err());
        let many = (0..21).map(|i| format!("l{i}")).collect();
        assert!(Labels::parse(many).is_err());
        let twenty = (0..20).map(|i| format!("l{i}")).collect();
        assert!(Labels::parse(twenty).is_ok());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(parse_email(" Ann@Example.COM ").unwrap(), "ann@example.com");
        assert!(parse_email("nope").is_err());
        assert!(parse_email("@x").is_err());
        assert!(parse_email("a@b@c").is_err());
    }

    #[test]
    fn passwords_must_be_long_enough() {
        assert!(parse_password("short").is_err());
        assert!(parse_password("long enough pass").is_ok());
    }

    #[test]
    fn external_ids_are_kept_verbatim_within_their_limits() {
        assert_eq!(ExternalId::parse(" 42 ".into()).unwrap().as_str(), " 42 ");
        assert!(ExternalId::parse("x".repeat(256)).is_ok());
        assert!(ExternalId::parse("x".repeat(257)).is_err());
        assert!(ExternalId::parse(String::new()).is_err());
        assert!(ExternalId::parse("a\nb".into()).is_err());
        assert!(ExternalId::parse("\u{202E}42".into()).is_err());
    }

    #[test]
    fn ratings_are_one_to_five_with_a_short_comment() {
        assert!(NewRating::parse(0, None).is_err());
        assert!(NewRating::parse(6, None).is_err());
        assert_eq!(
            NewRating::parse(5, Some("  ".into())).unwrap().comment,
            None
        );
        assert!(NewRating::parse(1, Some("é".repeat(1000))).is_ok());
        assert!(NewRating::parse(1, Some("é".repeat(1001))).is_err());
        assert!(NewRating::parse(3, Some("a\u{0}".into())).is_err());
    }

    #[test]
    fn page_urls_must_be_web_urls() {
        assert!(parse_page_url("javascript:alert(1)").is_none());
        assert_eq!(
            parse_page_url("https://a.example/x").as_deref(),
            Some("https://a.example/x")
        );
    }
}
