//! Canned responses: replies the team writes once and agents insert by shortcut.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::DomainError;

/// Most canned responses a team keeps: the agents' list is loaded whole.
pub const MAX_CANNED: i64 = 500;
/// Longest shortcut, in characters.
pub const MAX_SHORTCUT_CHARS: usize = 32;

/// A reply an agent inserts by typing `/` and its shortcut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0190a5f2-7c3e-7d4a-9b1e-2f6c8d0e4a51",
    "shortcut": "refund",
    "body": "Hi {{visitor.name}}, your refund is on its way. — {{agent.name}}"
}))]
pub struct CannedResponse {
    #[schema(format = "uuid")]
    pub id: String,
    /// 1–32 of `a-z`, `0-9`, `_` and `-`; unique.
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    pub shortcut: String,
    /// The text, under the rules of a message body. It may hold `{{visitor.name}}`,
    /// `{{visitor.email}}` and `{{agent.name}}`, which the agent UI fills in; the server
    /// stores it as written.
    pub body: String,
}

/// A shortcut: 1–32 of `[a-z0-9_-]`, as written (nothing is lower-cased for the caller).
pub fn parse_shortcut(raw: &str) -> Result<String, DomainError> {
    let valid = !raw.is_empty()
        && raw.len() <= MAX_SHORTCUT_CHARS
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        return Err(DomainError::invalid(format!(
            "shortcut must be 1-{MAX_SHORTCUT_CHARS} characters of a-z, 0-9, _ and -"
        )));
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts_take_only_lower_case_letters_digits_underscore_and_hyphen() {
        for ok in ["a", "refund", "re-fund_2", &"x".repeat(32)] {
            assert!(parse_shortcut(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Refund",
            "re fund",
            "/refund",
            "é",
            &"x".repeat(33),
            "a\0",
        ] {
            assert!(parse_shortcut(bad).is_err(), "{bad:?}");
        }
    }
}
