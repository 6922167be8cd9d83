//! The leaves every layer shares: the contract's objects, validated input, the caller, and
//! the rules' error type. Nothing here knows of HTTP, SQL or threads.

pub mod caller;
pub mod canned;
pub mod context;
pub mod error;
pub mod hours;
pub mod input;
pub mod mention;
pub mod model;
pub mod search;
pub mod settings;
pub mod text;

pub use caller::Caller;
pub use error::DomainError;
pub use input::*;
pub use model::*;
pub use settings::Availability;

use time::macros::format_description;
use time::OffsetDateTime;

/// The instant as the contract writes it: RFC 3339 UTC with milliseconds.
pub fn timestamp(at: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .expect("a UTC date always formats")
}

/// Now, in the contract's timestamp format.
pub fn now() -> String {
    timestamp(OffsetDateTime::now_utc())
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_795_304_200_123_456_789)
            .expect("a valid instant");
        let text = timestamp(at);
        assert!(text.ends_with('Z') && text.len() == 24, "{text}");
        assert!(text.contains(".123Z"));
    }
}
