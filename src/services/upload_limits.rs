//! Decides who may upload how much: concurrent uploads per visitor token and
//! per client address, bytes per uploader and per address over a sliding hour,
//! and a floor of free disk space below which uploads stop.
//!
//! Intended order in an upload handler:
//! 1. [`UploadLimits::begin`] → hold the [`UploadPermit`] until the upload is
//!    stored or refused;
//! 2. [`UploadLimits::would_fit`] with the request's `Content-Length`, and
//!    [`UploadLimits::disk_has_room`] for the spool and database directories,
//!    before reading the body;
//! 3. spool the body, then [`UploadLimits::charge`] its real size (this checks
//!    again, atomically, so racing uploads cannot overshoot the quota).
//!
//! Addresses are keyed as given for IPv4 and by /64 prefix for IPv6, because
//! one IPv6 client normally owns a whole /64 and could rotate through it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::domain::DomainError;

/// Length of the quota window.
const WINDOW_SECS: u64 = 3600;
/// Granularity of the window: bytes are booked into per-minute buckets.
const BUCKET_SECS: u64 = 60;
const BUCKETS: u64 = WINDOW_SECS / BUCKET_SECS;
/// We cannot know when a running upload ends; a few seconds is a fair guess
/// for the 10 MB uploads the limits are tuned for.
const CONCURRENT_RETRY_AFTER_SECS: u64 = 5;

/// Upload limits. For the first four settings 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadPolicy {
    /// Uploads running at once with one visitor token.
    pub max_concurrent_per_token: usize,
    /// Uploads running at once from one address (IPv6: one /64).
    pub max_concurrent_per_ip: usize,
    /// Bytes one uploader (visitor) may store per sliding hour.
    pub bytes_per_visitor_per_hour: u64,
    /// Bytes one address may store per sliding hour, all uploaders together.
    pub bytes_per_ip_per_hour: u64,
    /// Free bytes that must remain on the disk after an upload.
    pub min_free_disk: u64,
}

impl Default for UploadPolicy {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        UploadPolicy {
            max_concurrent_per_token: 2,
            max_concurrent_per_ip: 4,
            bytes_per_visitor_per_hour: 100 * MIB,
            bytes_per_ip_per_hour: 200 * MIB,
            min_free_disk: 512 * MIB,
        }
    }
}

/// Why an upload is refused. The messages are shown to users.
///
/// HTTP: the first two are 429 with `Retry-After`, the last is 507.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefusal {
    #[error("too many uploads at once; try again in {retry_after_secs} seconds")]
    TooManyConcurrent { retry_after_secs: u64 },
    #[error("upload limit reached; try again in {retry_after_secs} seconds")]
    QuotaExceeded { retry_after_secs: u64 },
    #[error("the server is low on storage space, so uploads are paused")]
    InsufficientStorage,
}

impl UploadRefusal {
    /// The value for a `Retry-After` header, if the refusal has one.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match *self {
            UploadRefusal::TooManyConcurrent { retry_after_secs }
            | UploadRefusal::QuotaExceeded { retry_after_secs } => Some(retry_after_secs),
            UploadRefusal::InsufficientStorage => None,
        }
    }
}

/// A concurrency or quota refusal is a rate limit (429 with `Retry-After`); a disk below its
/// floor is `InsufficientStorage` (507).
impl From<UploadRefusal> for DomainError {
    fn from(refusal: UploadRefusal) -> Self {
        match refusal {
            UploadRefusal::TooManyConcurrent { retry_after_secs }
            | UploadRefusal::QuotaExceeded { retry_after_secs } => DomainError::RateLimited {
                retry_after: retry_after_secs,
            },
            UploadRefusal::InsufficientStorage => {
                DomainError::InsufficientStorage(refusal.to_string())
            }
        }
    }
}

/// Shared upload bookkeeping; clones share the same state.
#[derive(Clone)]
pub struct UploadLimits {
    shared: Arc<Shared>,
}

struct Shared {
    policy: UploadPolicy,
    /// Bucket numbers count minutes since this instant.
    origin: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running_per_token: HashMap<[u8; 32], usize>,
    running_per_ip: HashMap<IpAddr, usize>,
    bytes_per_owner: HashMap<String, Window>,
    bytes_per_ip: HashMap<IpAddr, Window>,
}

impl State {
    /// Whether `incoming` bytes fit both the owner's and the address's quota;
    /// `ip` is already keyed. Prunes expired buckets but books nothing.
    fn check(
        &mut self,
        policy: &UploadPolicy,
        owner: &str,
        ip: IpAddr,
        incoming: u64,
        secs: u64,
    ) -> Result<(), UploadRefusal> {
        let owner_window = touch(self.bytes_per_owner.get_mut(owner), secs);
        let owner_check = check_window(
            owner_window,
            policy.bytes_per_visitor_per_hour,
            incoming,
            secs,
        );
        let ip_window = touch(self.bytes_per_ip.get_mut(&ip), secs);
        let ip_check = check_window(ip_window, policy.bytes_per_ip_per_hour, incoming, secs);
        combine(owner_check, ip_check)
    }
}

/// Bytes booked in the last hour, one entry per minute that saw uploads,
/// oldest first. Entries older than the window are dropped on every touch, so
/// there are never more than `BUCKETS` of them.
#[derive(Debug, Default)]
struct Window {
    buckets: VecDeque<(u64, u64)>,
}

impl Window {
    fn prune(&mut self, minute: u64) {
        while let Some(&(bucket, _)) = self.buckets.front() {
            if bucket + BUCKETS <= minute {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    fn used(&self) -> u64 {
        self.buckets
            .iter()
            .fold(0u64, |sum, &(_, bytes)| sum.saturating_add(bytes))
    }

    fn book(&mut self, minute: u64, bytes: u64) {
        match self.buckets.back_mut() {
            // `>=`: a caller that read the clock just before a racing one may
            // arrive second; adding to the newer bucket keeps the order.
            Some((bucket, booked)) if *bucket >= minute => *booked = booked.saturating_add(bytes),
            _ => self.buckets.push_back((minute, bytes)),
        }
    }
}

impl UploadLimits {
    /// Empty bookkeeping enforcing `policy`.
    pub fn new(policy: UploadPolicy) -> Self {
        UploadLimits {
            shared: Arc::new(Shared {
                policy,
                origin: Instant::now(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The policy being enforced.
    pub fn policy(&self) -> &UploadPolicy {
        &self.shared.policy
    }

    /// Counts one running upload for `token_key` (e.g. a hash of the visitor
    /// token) and `ip`, or refuses if either already has its maximum.
    pub fn begin(&self, token_key: [u8; 32], ip: IpAddr) -> Result<UploadPermit, UploadRefusal> {
        let ip = ip_key(ip);
        let policy = &self.shared.policy;
        let mut state = self.shared.lock();
        let per_token = state
            .running_per_token
            .get(&token_key)
            .copied()
            .unwrap_or(0);
        let per_ip = state.running_per_ip.get(&ip).copied().unwrap_or(0);
        if at_limit(per_token, policy.max_concurrent_per_token)
            || at_limit(per_ip, policy.max_concurrent_per_ip)
        {
            return Err(UploadRefusal::TooManyConcurrent {
                retry_after_secs: CONCURRENT_RETRY_AFTER_SECS,
            });
        }
        *state.running_per_token.entry(token_key).or_default() += 1;
        *state.running_per_ip.entry(ip).or_default() += 1;
        Ok(UploadPermit {
            shared: Arc::clone(&self.shared),
            token_key,
            ip,
        })
    }

    /// Whether `declared_len` more bytes (or, if unknown, any byte at all)
    /// would fit in the quotas of `owner` and `ip` now. Books nothing.
    /// `exempt` (agents) always fits.
    ///
    /// A multipart `Content-Length` is a few hundred bytes more than the file;
    /// that only matters right at the limit.
    pub fn would_fit(
        &self,
        owner: &str,
        ip: IpAddr,
        declared_len: Option<u64>,
        exempt: bool,
    ) -> Result<(), UploadRefusal> {
        self.would_fit_at(owner, ip, declared_len, exempt, Instant::now())
    }

    /// Checks that `bytes` fit in the quotas of `owner` (visitor or agent id)
    /// and `ip` and, if so, books them; otherwise books nothing. `exempt`
    /// (agents) is neither checked nor booked.
    pub fn charge(
        &self,
        owner: &str,
        ip: IpAddr,
        bytes: u64,
        exempt: bool,
    ) -> Result<(), UploadRefusal> {
        self.charge_at(owner, ip, bytes, exempt, Instant::now())
    }

    /// Forgets uploaders and addresses with nothing booked in the last hour.
    /// Call it periodically (e.g. every few minutes) to bound memory.
    pub fn sweep(&self) {
        self.sweep_at(Instant::now());
    }

    /// Refuses unless the filesystem holding `dir` has at least
    /// `min_free_disk + incoming` bytes available to unprivileged users.
    ///
    /// If the free space cannot be read the upload is refused (and logged):
    /// failing open would defeat the check.
    pub fn disk_has_room(&self, dir: &Path, incoming: u64) -> Result<(), UploadRefusal> {
        match fs4::available_space(dir) {
            Ok(available) => room_left(available, self.shared.policy.min_free_disk, incoming),
            Err(error) => {
                log::warn!(
                    "cannot read free space of {}: {error}; refusing uploads",
                    dir.display()
                );
                Err(UploadRefusal::InsufficientStorage)
            }
        }
    }

    fn would_fit_at(
        &self,
        owner: &str,
        ip: IpAddr,
        declared_len: Option<u64>,
        exempt: bool,
        now: Instant,
    ) -> Result<(), UploadRefusal> {
        if exempt {
            return Ok(());
        }
        let secs = self.shared.secs(now);
        let mut state = self.shared.lock();
        let incoming = declared_len.unwrap_or(1);
        state.check(&self.shared.policy, owner, ip_key(ip), incoming, secs)
    }

    fn charge_at(
        &self,
        owner: &str,
        ip: IpAddr,
        bytes: u64,
        exempt: bool,
        now: Instant,
    ) -> Result<(), UploadRefusal> {
        if exempt {
            return Ok(());
        }
        let ip = ip_key(ip);
        let policy = &self.shared.policy;
        let secs = self.shared.secs(now);
        let minute = secs / BUCKET_SECS;
        // Check and book under one lock, so racing uploads cannot overshoot.
        let mut state = self.shared.lock();
        state.check(policy, owner, ip, bytes, secs)?;
        if bytes == 0 {
            return Ok(());
        }
        // Unlimited quotas keep no state at all.
        if policy.bytes_per_visitor_per_hour != 0 {
            match state.bytes_per_owner.get_mut(owner) {
                Some(window) => window.book(minute, bytes),
                None => {
                    let mut window = Window::default();
                    window.book(minute, bytes);
                    state.bytes_per_owner.insert(owner.to_owned(), window);
                }
            }
        }
        if policy.bytes_per_ip_per_hour != 0 {
            state
                .bytes_per_ip
                .entry(ip)
                .or_default()
                .book(minute, bytes);
        }
        Ok(())
    }

    fn sweep_at(&self, now: Instant) {
        let minute = self.shared.secs(now) / BUCKET_SECS;
        let mut state = self.shared.lock();
        let live = |window: &mut Window| {
            window.prune(minute);
            !window.buckets.is_empty()
        };
        state.bytes_per_owner.retain(|_, window| live(window));
        state.bytes_per_ip.retain(|_, window| live(window));
    }
}

impl fmt::Debug for UploadLimits {
    // Hand-written so token keys never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("UploadLimits")
            .field("policy", &self.shared.policy)
            .field("running_tokens", &state.running_per_token.len())
            .field("running_ips", &state.running_per_ip.len())
            .field("tracked_owners", &state.bytes_per_owner.len())
            .field("tracked_ips", &state.bytes_per_ip.len())
            .finish()
    }
}

impl Shared {
    /// The state is plain counters that stay consistent even if a holder
    /// panicked, so a poisoned lock is used as is rather than failing uploads
    /// (or panicking in `UploadPermit::drop`) forever.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }
}

/// One running upload; dropping it frees the slot for its token and address.
#[must_use = "the upload slot is released as soon as the permit is dropped"]
pub struct UploadPermit {
    shared: Arc<Shared>,
    token_key: [u8; 32],
    ip: IpAddr,
}

impl fmt::Debug for UploadPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadPermit")
            .field("ip", &self.ip)
            .finish_non_exhaustive()
    }
}

impl Drop for UploadPermit {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        release(&mut state.running_per_token, &self.token_key);
        release(&mut state.running_per_ip, &self.ip);
    }
}

fn release<K: std::hash::Hash + Eq>(running: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = running.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            running.remove(key);
        }
    }
}

fn at_limit(running: usize, max: usize) -> bool {
    max != 0 && running >= max
}

fn touch(window: Option<&mut Window>, secs: u64) -> Option<&Window> {
    window.map(|window| {
        window.prune(secs / BUCKET_SECS);
        &*window
    })
}

/// Whether `incoming` more bytes fit under `limit` given the pruned `window`;
/// if not, how long until enough of the oldest bookings leave the window.
fn check_window(
    window: Option<&Window>,
    limit: u64,
    incoming: u64,
    secs: u64,
) -> Result<(), UploadRefusal> {
    if limit == 0 {
        return Ok(());
    }
    let used = window.map_or(0, Window::used);
    let total = used.saturating_add(incoming);
    if total <= limit {
        return Ok(());
    }
    // More than a whole window's worth can never fit; say "in an hour"
    // rather than inviting a quick retry.
    if incoming > limit {
        return Err(UploadRefusal::QuotaExceeded {
            retry_after_secs: WINDOW_SECS,
        });
    }
    let mut excess = total - limit;
    let buckets = window.map(|w| w.buckets.iter()).into_iter().flatten();
    for &(bucket, bytes) in buckets {
        if bytes >= excess {
            let expires = (bucket + BUCKETS) * BUCKET_SECS;
            return Err(UploadRefusal::QuotaExceeded {
                retry_after_secs: expires.saturating_sub(secs).max(1),
            });
        }
        excess -= bytes;
    }
    // Unreachable: incoming <= limit means excess <= used.
    Err(UploadRefusal::QuotaExceeded {
        retry_after_secs: WINDOW_SECS,
    })
}

/// Both checks must pass; if both fail, report the later retry so the client
/// does not come back only to hit the other limit.
fn combine(
    a: Result<(), UploadRefusal>,
    b: Result<(), UploadRefusal>,
) -> Result<(), UploadRefusal> {
    match (a, b) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(a), Err(b)) => {
            if a.retry_after_secs() >= b.retry_after_secs() {
                Err(a)
            } else {
                Err(b)
            }
        }
    }
}

fn room_left(available: u64, min_free: u64, incoming: u64) -> Result<(), UploadRefusal> {
    if available >= min_free.saturating_add(incoming) {
        Ok(())
    } else {
        Err(UploadRefusal::InsufficientStorage)
    }
}

/// IPv4 as is (also when IPv4-mapped); IPv6 cut to its /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2));

    fn token(n: u8) -> [u8; 32] {
        [n; 32]
    }

    fn quotas(per_visitor: u64, per_ip: u64) -> UploadLimits {
        UploadLimits::new(UploadPolicy {
            bytes_per_visitor_per_hour: per_visitor,
            bytes_per_ip_per_hour: per_ip,
            ..UploadPolicy::default()
        })
    }

    fn at(limits: &UploadLimits, secs: u64) -> Instant {
        limits.shared.origin + Duration::from_secs(secs)
    }

    fn quota_retry(result: Result<(), UploadRefusal>) -> u64 {
        match result {
            Err(UploadRefusal::QuotaExceeded { retry_after_secs }) => retry_after_secs,
            other => panic!("expected QuotaExceeded, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_documented_numbers() {
        let policy = UploadPolicy::default();
        assert_eq!(policy.max_concurrent_per_token, 2);
        assert_eq!(policy.max_concurrent_per_ip, 4);
        assert_eq!(policy.bytes_per_visitor_per_hour, 100 << 20);
        assert_eq!(policy.bytes_per_ip_per_hour, 200 << 20);
        assert_eq!(policy.min_free_disk, 512 << 20);
    }

    #[test]
    fn concurrent_permits_per_token_are_released_on_drop() {
        let limits = UploadLimits::new(UploadPolicy::default());
        let first = limits.begin(token(1), A).unwrap();
        let _second = limits.begin(token(1), A).unwrap();

        assert_eq!(
            limits.begin(token(1), A).unwrap_err(),
            UploadRefusal::TooManyConcurrent {
                retry_after_secs: CONCURRENT_RETRY_AFTER_SECS
            }
        );
        // Another token from the same address is still fine.
        let _other = limits.begin(token(2), A).unwrap();

        drop(first);
        let _third = limits.begin(token(1), A).unwrap();
    }

    #[test]
    fn concurrent_permits_per_ip_count_all_tokens() {
        let limits = UploadLimits::new(UploadPolicy::default());
        let permits: Vec<_> = (0..4).map(|n| limits.begin(token(n), A).unwrap()).collect();

        assert!(matches!(
            limits.begin(token(9), A),
            Err(UploadRefusal::TooManyConcurrent { .. })
        ));
        let _elsewhere = limits.begin(token(9), B).unwrap();

        drop(permits);
        let _again = limits.begin(token(9), A).unwrap();
    }

    #[test]
    fn dropped_permits_leave_no_state_behind() {
        let limits = UploadLimits::new(UploadPolicy::default());
        let permits = [
            limits.begin(token(1), A).unwrap(),
            limits.begin(token(2), B).unwrap(),
        ];
        drop(permits);
        let state = limits.shared.lock();
        assert!(state.running_per_token.is_empty());
        assert!(state.running_per_ip.is_empty());
    }

    #[test]
    fn a_refused_begin_takes_no_slot() {
        let limits = UploadLimits::new(UploadPolicy {
            max_concurrent_per_token: 1,
            max_concurrent_per_ip: 1,
            ..UploadPolicy::default()
        });
        let held = limits.begin(token(1), A).unwrap();
        // Refused on the address, so token 2 must not be counted.
        assert!(limits.begin(token(2), A).is_err());
        drop(held);
        let _ok = limits.begin(token(2), B).unwrap();
        assert_eq!(
            limits.shared.lock().running_per_token.get(&token(2)),
            Some(&1)
        );
    }

    #[test]
    fn zero_means_unlimited() {
        let limits = UploadLimits::new(UploadPolicy {
            max_concurrent_per_token: 0,
            max_concurrent_per_ip: 0,
            bytes_per_visitor_per_hour: 0,
            bytes_per_ip_per_hour: 0,
            min_free_disk: 0,
        });
        let _permits: Vec<_> = (0..50)
            .map(|_| limits.begin(token(1), A).unwrap())
            .collect();
        for _ in 0..50 {
            limits.charge("v1", A, u64::MAX / 4, false).unwrap();
        }
        let state = limits.shared.lock();
        assert!(state.bytes_per_owner.is_empty() && state.bytes_per_ip.is_empty());
    }

    #[test]
    fn quota_per_owner_and_per_ip_are_independent() {
        let limits = quotas(100, 150);
        let t = at(&limits, 10);

        limits.charge_at("v1", A, 100, false, t).unwrap();
        // v1 is full, even from another address.
        quota_retry(limits.charge_at("v1", B, 1, false, t));
        // A still has 50 for other visitors.
        limits.charge_at("v2", A, 50, false, t).unwrap();
        quota_retry(limits.charge_at("v3", A, 1, false, t));
        // v3 from elsewhere is unaffected.
        limits.charge_at("v3", B, 1, false, t).unwrap();
        // Agents are exempt and book nothing.
        limits.charge_at("agent-1", A, 1_000, true, t).unwrap();
        assert!(!limits.shared.lock().bytes_per_owner.contains_key("agent-1"));
    }

    #[test]
    fn a_refused_charge_books_nothing() {
        let limits = quotas(100, 1_000);
        let t = at(&limits, 0);
        limits.charge_at("v1", A, 90, false, t).unwrap();
        quota_retry(limits.charge_at("v1", A, 20, false, t));
        // Still 10 left: the refused 20 were not booked.
        limits.charge_at("v1", A, 10, false, t).unwrap();
        let state = limits.shared.lock();
        assert_eq!(state.bytes_per_ip[&A].used(), 100);
    }

    #[test]
    fn would_fit_checks_the_declared_length_without_booking() {
        let limits = quotas(100, 1_000);
        let t = at(&limits, 0);
        limits.charge_at("v1", A, 90, false, t).unwrap();

        quota_retry(limits.would_fit_at("v1", A, Some(20), false, t));
        limits.would_fit_at("v1", A, Some(10), false, t).unwrap();
        limits.would_fit_at("v1", A, None, false, t).unwrap();
        limits.would_fit_at("v1", A, Some(10_000), true, t).unwrap();
        assert_eq!(limits.shared.lock().bytes_per_owner["v1"].used(), 90);

        limits.charge_at("v1", A, 10, false, t).unwrap();
        // Unknown length: refused once nothing at all is left.
        quota_retry(limits.would_fit_at("v1", A, None, false, t));
        // An unknown uploader creates no state.
        limits.would_fit_at("nobody", B, Some(5), false, t).unwrap();
        assert!(!limits.shared.lock().bytes_per_owner.contains_key("nobody"));
    }

    #[test]
    fn the_window_slides_and_retry_after_says_when() {
        let limits = quotas(100, 0);
        limits
            .charge_at("v1", A, 60, false, at(&limits, 0))
            .unwrap();
        limits
            .charge_at("v1", A, 40, false, at(&limits, 30 * 60))
            .unwrap();

        // One minute in: the first 60 bytes leave the window at 3600 s.
        let retry = quota_retry(limits.charge_at("v1", A, 1, false, at(&limits, 60)));
        assert_eq!(retry, 3600 - 60);
        // Needing more than the oldest booking frees: wait for the second too.
        let retry = quota_retry(limits.charge_at("v1", A, 61, false, at(&limits, 60)));
        assert_eq!(retry, 30 * 60 + 3600 - 60);

        // One second before the first booking expires: still full, retry 1.
        let retry = quota_retry(limits.charge_at("v1", A, 1, false, at(&limits, 3599)));
        assert_eq!(retry, 1);
        // After an hour only the 40 remain.
        limits
            .charge_at("v1", A, 60, false, at(&limits, 3600))
            .unwrap();
        quota_retry(limits.charge_at("v1", A, 1, false, at(&limits, 3601)));
    }

    #[test]
    fn retry_after_is_the_later_of_both_limits() {
        let limits = quotas(100, 100);
        limits
            .charge_at("v2", B, 100, false, at(&limits, 0))
            .unwrap();
        limits
            .charge_at("v1", A, 100, false, at(&limits, 20 * 60))
            .unwrap();
        // v2 frees up at 60 min, address A only at 80 min: say 80.
        let retry = quota_retry(limits.charge_at("v2", A, 1, false, at(&limits, 30 * 60)));
        assert_eq!(retry, 80 * 60 - 30 * 60);
    }

    #[test]
    fn a_file_bigger_than_the_whole_quota_waits_a_full_window() {
        let limits = quotas(100, 0);
        let retry = quota_retry(limits.would_fit_at("v1", A, Some(101), false, at(&limits, 0)));
        assert_eq!(retry, WINDOW_SECS);
    }

    #[test]
    fn memory_per_key_stays_bounded() {
        let limits = quotas(u64::MAX, u64::MAX);
        for minute in 0..3 * 60 {
            for second in [0, 30] {
                let t = at(&limits, minute * 60 + second);
                limits.charge_at("v1", A, 1, false, t).unwrap();
            }
        }
        let state = limits.shared.lock();
        assert_eq!(state.bytes_per_owner["v1"].buckets.len(), BUCKETS as usize);
        assert_eq!(state.bytes_per_owner["v1"].used(), 2 * BUCKETS);
    }

    #[test]
    fn a_late_clock_reading_joins_the_newest_bucket() {
        let limits = quotas(1_000, 0);
        limits
            .charge_at("v1", A, 10, false, at(&limits, 120))
            .unwrap();
        limits
            .charge_at("v1", A, 5, false, at(&limits, 60))
            .unwrap();
        let state = limits.shared.lock();
        assert_eq!(state.bytes_per_owner["v1"].buckets, [(2, 15)]);
    }

    #[test]
    fn sweep_forgets_idle_keys() {
        let limits = quotas(1_000, 1_000);
        limits
            .charge_at("v1", A, 10, false, at(&limits, 0))
            .unwrap();
        limits
            .charge_at("v2", B, 10, false, at(&limits, 30 * 60))
            .unwrap();

        limits.sweep_at(at(&limits, 61 * 60));
        {
            let state = limits.shared.lock();
            assert!(!state.bytes_per_owner.contains_key("v1"));
            assert!(!state.bytes_per_ip.contains_key(&A));
            assert!(state.bytes_per_owner.contains_key("v2"));
            assert!(state.bytes_per_ip.contains_key(&B));
        }

        limits.sweep_at(at(&limits, 2 * 3600));
        let state = limits.shared.lock();
        assert!(state.bytes_per_owner.is_empty() && state.bytes_per_ip.is_empty());
    }

    #[test]
    fn ipv6_clients_are_limited_per_64_and_mapped_ipv4_as_ipv4() {
        let limits = quotas(0, 100);
        let t = at(&limits, 0);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        limits.charge_at("v1", one, 100, false, t).unwrap();
        quota_retry(limits.charge_at("v2", same_64, 1, false, t));
        limits.charge_at("v3", other_64, 1, false, t).unwrap();

        let mapped: IpAddr = "::ffff:203.0.113.1".parse().unwrap();
        limits.charge_at("v4", A, 100, false, t).unwrap();
        quota_retry(limits.charge_at("v5", mapped, 1, false, t));
    }

    #[test]
    fn clones_share_state() {
        let limits = UploadLimits::new(UploadPolicy::default());
        let clone = limits.clone();
        let _a = limits.begin(token(1), A).unwrap();
        let _b = clone.begin(token(1), A).unwrap();
        assert!(limits.begin(token(1), A).is_err());
    }

    #[test]
    fn disk_has_room_compares_free_space_with_the_floor() {
        let dir = std::env::temp_dir();
        let strict = UploadLimits::new(UploadPolicy {
            min_free_disk: u64::MAX,
            ..UploadPolicy::default()
        });
        assert_eq!(
            strict.disk_has_room(&dir, 1),
            Err(UploadRefusal::InsufficientStorage)
        );

        let lax = UploadLimits::new(UploadPolicy {
            min_free_disk: 0,
            ..UploadPolicy::default()
        });
        lax.disk_has_room(&dir, 0).unwrap();
        lax.disk_has_room(&dir, 1).unwrap();
        // Asking for more than any disk has is refused even with no floor.
        assert!(lax.disk_has_room(&dir, u64::MAX).is_err());
    }

    #[test]
    fn disk_has_room_fails_closed_when_space_is_unknown() {
        let limits = UploadLimits::new(UploadPolicy::default());
        let missing = std::env::temp_dir().join("parley-no-such-dir-for-upload-limits");
        assert_eq!(
            limits.disk_has_room(&missing, 0),
            Err(UploadRefusal::InsufficientStorage)
        );
    }

    #[test]
    fn room_left_arithmetic() {
        assert!(room_left(100, 50, 50).is_ok());
        assert!(room_left(100, 50, 51).is_err());
        assert!(room_left(100, u64::MAX, u64::MAX).is_err());
    }

    #[test]
    fn refusals_become_rate_limits_or_insufficient_storage() {
        let quota = DomainError::from(UploadRefusal::QuotaExceeded {
            retry_after_secs: 42,
        });
        assert!(matches!(
            quota,
            DomainError::RateLimited { retry_after: 42 }
        ));
        let busy = DomainError::from(UploadRefusal::TooManyConcurrent {
            retry_after_secs: 5,
        });
        assert!(matches!(busy, DomainError::RateLimited { retry_after: 5 }));
        assert!(matches!(
            DomainError::from(UploadRefusal::InsufficientStorage),
            DomainError::InsufficientStorage(_)
        ));
    }

    #[test]
    fn refusals_carry_retry_after_and_readable_messages() {
        let refusal = UploadRefusal::QuotaExceeded {
            retry_after_secs: 42,
        };
        assert_eq!(refusal.retry_after_secs(), Some(42));
        assert_eq!(
            refusal.to_string(),
            "upload limit reached; try again in 42 seconds"
        );
        assert_eq!(UploadRefusal::InsufficientStorage.retry_after_secs(), None);
    }
}
