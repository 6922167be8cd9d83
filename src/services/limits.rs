//! Abuse limits: request rates per client IP and per token, and login back-off.
//!
//! The login back-off is kept per (account, address): an attacker guessing a colleague's
//! password from elsewhere slows only their own attempts. A second, much looser count per
//! account across all addresses caps a guessing campaign spread over many addresses.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::{Caller, DomainError};

/// Failed logins for one account from one address before each further attempt must wait.
const FREE_LOGIN_FAILURES: u32 = 5;
/// The longest the back-off of one account from one address grows to.
const MAX_LOGIN_BACKOFF: Duration = Duration::from_secs(300);
/// Failed logins for one account from all addresses together before the account-wide
/// back-off starts: far more than one person mistypes, far fewer than a spread-out attack.
const FREE_ACCOUNT_FAILURES: u32 = 50;
/// The account-wide back-off stays short, so its owner is delayed, never locked out.
const MAX_ACCOUNT_BACKOFF: Duration = Duration::from_secs(30);
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
    /// Per (account, address).
    login_failures: Mutex<HashMap<(String, IpAddr), Failures>>,
    /// Per account, from every address.
    account_failures: Mutex<HashMap<String, Failures>>,
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
            account_failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn check_new_visitor(&self, ip: IpAddr) -> Result<(), DomainError> {
        self.check(&self.visitors_per_ip, &ip)
    }

    /// Before a login: the per-IP rate, then the back-offs after failures.
    pub fn check_login(&self, ip: IpAddr, email: &str) -> Result<(), DomainError> {
        self.check(&self.logins_per_ip, &ip)?;
        if !self.enabled {
            return Ok(());
        }
        let key = (email.to_string(), ip);
        let here = wait_after(&self.login_failures, &key, |count| {
            backoff(count, FREE_LOGIN_FAILURES, MAX_LOGIN_BACKOFF)
        });
        let everywhere = wait_after(&self.account_failures, email, |count| {
            backoff(count, FREE_ACCOUNT_FAILURES, MAX_ACCOUNT_BACKOFF)
        });
        match here.max(everywhere) {
            wait if wait.is_zero() => Ok(()),
            wait => Err(rate_limited(wait)),
        }
    }

    /// Counts a failed login for an account, known or not (so failures reveal nothing).
    pub fn login_failed(&self, ip: IpAddr, email: &str) {
        count_failure(&self.login_failures, (email.to_string(), ip));
        count_failure(&self.account_failures, email.to_string());
    }

    /// Forgets this address's failures for the account (others' attempts still count).
    pub fn login_succeeded(&self, ip: IpAddr, email: &str) {
        self.login_failures
            .lock()
            .expect("limits lock is never poisoned")
            .remove(&(email.to_string(), ip));
    }

    pub fn check_send(&self, ip: IpAddr, caller: &Caller) -> Result<(), DomainError> {
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
        self.account_failures
            .lock()
            .expect("limits lock is never poisoned")
            .retain(|_, f| f.last.elapsed() < LOGIN_FAILURE_MEMORY);
    }

    fn check<K: Hash + Eq + Clone>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
    ) -> Result<(), DomainError> {
        if !self.enabled {
            return Ok(());
        }
        limiter.check_key(key).map_err(|not_until| {
            rate_limited(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }
}

/// How long the holder of `key` must still wait, given its failures.
fn wait_after<K, Q>(
    failures: &Mutex<HashMap<K, Failures>>,
    key: &Q,
    backoff_for: impl Fn(u32) -> Duration,
) -> Duration
where
    K: Hash + Eq + std::borrow::Borrow<Q>,
    Q: Hash + Eq + ?Sized,
{
    let failures = failures.lock().expect("limits lock is never poisoned");
    failures.get(key).map_or(Duration::ZERO, |f| {
        backoff_for(f.count).saturating_sub(f.last.elapsed())
    })
}

fn count_failure<K: Hash + Eq>(failures: &Mutex<HashMap<K, Failures>>, key: K) {
    let mut failures = failures.lock().expect("limits lock is never poisoned");
    let entry = failures.entry(key).or_insert(Failures {
        count: 0,
        last: Instant::now(),
    });
    if entry.last.elapsed() > LOGIN_FAILURE_MEMORY {
        entry.count = 0;
    }
    entry.count += 1;
    entry.last = Instant::now();
}

/// Wait before the next attempt after `count` failures: none for the first `free`, then
/// doubling from 1 s up to `max`.
fn backoff(count: u32, free: u32, max: Duration) -> Duration {
    if count < free {
        return Duration::ZERO;
    }
    let exponent = (count - free).min(16);
    Duration::from_secs(1u64 << exponent).min(max)
}

fn rate_limited(wait: Duration) -> DomainError {
    DomainError::RateLimited {
        retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_backoff_starts_after_a_few_failures_and_is_capped() {
        let login_backoff = |count| backoff(count, FREE_LOGIN_FAILURES, MAX_LOGIN_BACKOFF);
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
            limits.login_failed(ip, "a@example.com");
        }
        assert!(matches!(
            limits.check_login(ip, "a@example.com"),
            Err(DomainError::RateLimited { retry_after: 1 })
        ));
        assert!(limits.check_login(ip, "b@example.com").is_ok());
        limits.login_succeeded(ip, "a@example.com");
        assert!(limits.check_login(ip, "a@example.com").is_ok());
    }

    #[test]
    fn failures_from_another_address_do_not_lock_the_owner_out() {
        let limits = Limits::new(true);
        let attacker: IpAddr = [203, 0, 113, 9].into();
        let owner: IpAddr = [198, 51, 100, 7].into();
        for _ in 0..FREE_LOGIN_FAILURES * 3 {
            limits.login_failed(attacker, "colleague@example.com");
        }
        assert!(limits
            .check_login(attacker, "colleague@example.com")
            .is_err());
        assert!(limits.check_login(owner, "colleague@example.com").is_ok());
    }

    #[test]
    fn a_campaign_from_many_addresses_meets_the_account_wide_cap() {
        let limits = Limits::new(true);
        for i in 0..FREE_ACCOUNT_FAILURES {
            let ip: IpAddr = [10, 1, (i / 256) as u8, (i % 256) as u8].into();
            limits.login_failed(ip, "boss@example.com");
        }
        let fresh: IpAddr = [192, 0, 2, 1].into();
        match limits.check_login(fresh, "boss@example.com") {
            Err(DomainError::RateLimited { retry_after }) => {
                assert!(retry_after <= MAX_ACCOUNT_BACKOFF.as_secs())
            }
            other => panic!("expected the account-wide back-off, got {other:?}"),
        }
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
