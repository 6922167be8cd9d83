//! The team's settings that admins change at run time: business hours, the away message and
//! the pre-chat form; and an agent's availability.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::hours::BusinessHours;
use crate::domain::DomainError;

/// Longest away message, in characters.
pub const MAX_AWAY_MESSAGE_CHARS: usize = 500;

/// Whether an agent takes chats now. Present = `online` and a request within the presence
/// window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    #[default]
    Online,
    Away,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Online => "online",
            Availability::Away => "away",
        }
    }

    pub fn from_db(raw: &str) -> Self {
        if raw == "away" {
            Availability::Away
        } else {
            Availability::Online
        }
    }
}

/// Whether the pre-chat form asks for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ask {
    /// Not asked.
    Off,
    /// Asked, may be left empty (the default: the page has always offered both fields).
    #[default]
    Optional,
    /// Asked before the first message.
    Required,
}

/// What the visitor page asks before the first message. The email is always asked (and
/// required) while nobody is online, whatever `ask_email` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Prechat {
    #[serde(default)]
    pub ask_name: Ask,
    #[serde(default)]
    pub ask_email: Ask,
}

/// The team's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct TeamSettings {
    /// `null`: always open.
    #[schema(required = true)]
    pub business_hours: Option<BusinessHours>,
    /// Shown to visitors while nobody is online; 1–500 characters, `null` for the page's own.
    #[schema(required = true, max_length = 500)]
    pub away_message: Option<String>,
    pub prechat: Prechat,
}

/// An away message: trimmed, empty means none, at most 500 characters.
pub fn parse_away_message(raw: Option<String>) -> Result<Option<String>, DomainError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > MAX_AWAY_MESSAGE_CHARS {
        return Err(DomainError::invalid(format!(
            "away_message must be at most {MAX_AWAY_MESSAGE_CHARS} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(DomainError::invalid(
            "away_message must not hold control characters",
        ));
    }
    Ok(Some(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn away_messages_are_trimmed_bounded_and_empty_means_none() {
        assert_eq!(parse_away_message(None).unwrap(), None);
        assert_eq!(parse_away_message(Some("  ".into())).unwrap(), None);
        assert_eq!(
            parse_away_message(Some(" back soon \n".into())).unwrap(),
            Some("back soon".into())
        );
        assert!(parse_away_message(Some("é".repeat(500))).is_ok());
        assert!(parse_away_message(Some("é".repeat(501))).is_err());
        assert!(parse_away_message(Some("a\u{0}b".into())).is_err());
    }
}
