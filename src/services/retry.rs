//! The clock, back-off and failure text of the durable outboxes (webhook deliveries, mail):
//! times are unix milliseconds in the database, a failed attempt waits `base · 2^(n-1)`,
//! capped, plus up to 10% jitter so that many failures do not retry in step, and its error is
//! stored as one bounded line.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10 * 60);

/// The wait before retry number `attempts` (1-based): `base · 2^(attempts-1)`, capped at
/// [`MAX_BACKOFF`].
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    base.saturating_mul(1u32 << exponent).min(MAX_BACKOFF)
}

/// When retry number `attempts` is due (unix ms): [`backoff`] from `now`, plus jitter.
pub fn retry_at(base: Duration, attempts: i64, now: i64) -> i64 {
    let delay = millis(backoff(base, attempts));
    let jitter = rand::thread_rng().gen_range(0..=delay / 10);
    now.saturating_add(delay).saturating_add(jitter)
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What a failure's stored description is cut to.
pub const MAX_ERROR_CHARS: usize = 300;

/// A failed attempt's error and its causes on one line ("error sending request: …
/// connection refused"), cut to [`MAX_ERROR_CHARS`] characters: what an outbox stores.
pub fn describe_failure(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}

/// The time from `now` to `at` (unix ms), zero if it has passed.
pub fn until(at: i64, now: i64) -> Duration {
    Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let base = Duration::from_secs(1);
        assert_eq!(backoff(base, 1), Duration::from_secs(1));
        assert_eq!(backoff(base, 2), Duration::from_secs(2));
        assert_eq!(backoff(base, 4), Duration::from_secs(8));
        assert_eq!(backoff(base, 11), MAX_BACKOFF);
        assert_eq!(backoff(base, 10_000), MAX_BACKOFF);
    }

    #[test]
    fn a_retry_is_due_after_its_backoff_and_at_most_a_tenth_more() {
        let base = Duration::from_secs(2);
        for attempts in 1..5 {
            let at = retry_at(base, attempts, 1_000);
            let delay = millis(backoff(base, attempts));
            assert!((1_000 + delay..=1_000 + delay + delay / 10).contains(&at));
        }
        assert_eq!(until(500, 1_000), Duration::ZERO);
        assert_eq!(until(1_500, 1_000), Duration::from_millis(500));
    }

    #[test]
    fn a_failure_is_described_with_its_causes_on_one_bounded_line() {
        #[derive(Debug)]
        struct Wrapped(std::io::Error);
        impl std::fmt::Display for Wrapped {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("sending failed")
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let wrapped = Wrapped(std::io::Error::other("connection reset"));
        assert_eq!(
            describe_failure(&wrapped),
            "sending failed: connection reset"
        );
        let long = Wrapped(std::io::Error::other("é".repeat(1_000)));
        assert_eq!(describe_failure(&long).chars().count(), MAX_ERROR_CHARS);
    }
}
