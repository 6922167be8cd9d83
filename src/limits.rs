//! Abuse limits: request rates per client IP and per token, and login back-off per account.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::Caller;
use crate::error::ApiError;

/// Failed logins for one account before each further attempt must wait.
const FREE_LOGIN_FAILURES: u32 = 5;
/// The longest an account's login back-off grows to.
const MAX_LOGIN_BACKOFF: Duration = Duration::from_secs(300);
/// Failures older than this are forgotten.
const LOGIN_FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).expect("quotas are non-zero constants");
    let burst = NonZeroU32::new(burst).expect("bursts are non-zero constants");
    Quota::per_minute(per_minute).allow_burst(burst)
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// All limits of one server. With `enabled = false` every check passes (benchmarks, tests).
pub struct Limits {
    enabled: bool,
    visitors_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    logins_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    visitor_sends_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    visitor_sends_per_token: DefaultKeyedRateLimiter<String>,
    agent_sends_per_token: DefaultKeyedRateLimiter<String>,
    login_failures: Mutex<HashMap<String, Failures>>,
}

impl Limits {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            // A shop behind one NAT may greet many visitors; a script may not greet thousands.
            visitors_per_ip: RateLimiter::keyed(quota(60, 30)),
            logins_per_ip: RateLimiter::keyed(quota(20, 10)),
            visitor_sends_per_ip: RateLimiter::keyed(quota(3000, 100)),
            // People type a few messages a minute; bursts cover pasting and offline queues.
            visitor_sends_per_token: RateLimiter::keyed(quota(600, 30)),
            agent_sends_per_token: RateLimiter::keyed(quota(3000, 200)),
            login_failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn check_new_visitor(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.check(&self.visitors_per_ip, &ip)
    }

    /// Before a login: the per-IP rate, then the account's back-off after failures.
    pub fn check_login(&self, ip: IpAddr, email: &str) -> Result<(), ApiError> {
        self.check(&self.logins_per_ip, &ip)?;
        if !self.enabled {
            return Ok(());
        }
        let failures = self
            .login_failures
            .lock()
            .expect("limits lock is never poisoned");
        if let Some(f) = failures.get(email) {
            let wait = login_backoff(f.count).saturating_sub(f.last.elapsed());
            if !wait.is_zero() {
                return Err(rate_limited(wait));
            }
        }
        Ok(())
    }

    /// Counts a failed login for an account, known or not (so failures reveal nothing).
    pub fn login_failed(&self, email: &str) {
        let mut failures = self
            .login_failures
            .lock()
            .expect("limits lock is never poisoned");
        let entry = failures.entry(email.to_string()).or_insert(Failures {
            count: 0,
            last: Instant::now(),
        });
        if entry.last.elapsed() > LOGIN_FAILURE_MEMORY {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = Instant::now();
    }

    pub fn login_succeeded(&self, email: &str) {
        self.login_failures
            .lock()
            .expect("limits lock is never poisoned")
            .remove(email);
    }

    pub fn check_send(&self, ip: IpAddr, caller: &Caller) -> Result<(), ApiError> {
        match caller {
            Caller::Visitor { id } => {
                self.check(&self.visitor_sends_per_ip, &ip)?;
                self.check(&self.visitor_sends_per_token, id)
            }
            Caller::Agent { id, .. } => self.check(&self.agent_sends_per_token, id),
        }
    }

    /// Drops state of keys that have been quiet, so memory does not grow with every IP seen.
    pub fn sweep(&self) {
        self.visitors_per_ip.retain_recent();
        self.logins_per_ip.retain_recent();
        self.visitor_sends_per_ip.retain_recent();
        self.visitor_sends_per_token.retain_recent();
        self.agent_sends_per_token.retain_recent();
        self.login_failures
            .lock()
            .expect("limits lock is never poisoned")
            .retain(|_, f| f.last.elapsed() < LOGIN_FAILURE_MEMORY);
    }

    fn check<K: Hash + Eq + Clone>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
    ) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        limiter.check_key(key).map_err(|not_until| {
            rate_limited(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }
}

/// Wait before the next attempt after `count` failures: none for the first few, then
/// doubling from 1 s up to [`MAX_LOGIN_BACKOFF`].
fn login_backoff(count: u32) -> Duration {
    if count < FREE_LOGIN_FAILURES {
        return Duration::ZERO;
    }
    let exponent = (count - FREE_LOGIN_FAILURES).min(16);
    Duration::from_secs(1u64 << exponent).min(MAX_LOGIN_BACKOFF)
}

fn rate_limited(wait: Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_backoff_starts_after_a_few_failures_and_is_capped() {
        assert_eq!(login_backoff(4), Duration::ZERO);
        assert_eq!(login_backoff(5), Duration::from_secs(1));
        assert_eq!(login_backoff(7), Duration::from_secs(4));
        assert_eq!(login_backoff(40), MAX_LOGIN_BACKOFF);
    }

    #[test]
    fn an_account_with_many_failures_must_wait() {
        let limits = Limits::new(true);
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..FREE_LOGIN_FAILURES {
            limits.login_failed("a@example.com");
        }
        assert!(matches!(
            limits.check_login(ip, "a@example.com"),
            Err(ApiError::RateLimited { retry_after: 1 })
        ));
        assert!(limits.check_login(ip, "b@example.com").is_ok());
        limits.login_succeeded("a@example.com");
        assert!(limits.check_login(ip, "a@example.com").is_ok());
    }

    #[test]
    fn disabled_limits_never_refuse() {
        let limits = Limits::new(false);
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..1000 {
            assert!(limits.check_new_visitor(ip).is_ok());
        }
    }

    #[test]
    fn a_burst_of_new_visitors_from_one_ip_is_limited() {
        let limits = Limits::new(true);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let refused = (0..100)
            .filter(|_| limits.check_new_visitor(ip).is_err())
            .count();
        assert!(refused >= 60, "{refused}");
    }
}
