//! The long polls each token holds, so one page cannot pile up connections, and so a
//! revoked token's held polls answer at once instead of delivering one more message.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

/// Why a held poll was told to end before anything changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotEnd {
    /// A newer poll of the same token took its place.
    Evicted,
    /// Its token was revoked (logout, disabled agent, new password, rotated token).
    Revoked,
}

struct Signal {
    token: [u8; 32],
    id: u64,
    notify: Notify,
    revoked: AtomicBool,
    /// When the poll took its place: its wait is counted from here.
    claimed_at: Instant,
}

impl Signal {
    fn end(&self, revoked: bool) {
        if revoked {
            self.revoked.store(true, Ordering::SeqCst);
        }
        // notify_one keeps a permit, so a poll not yet waiting still sees it.
        self.notify.notify_one();
    }
}

/// A token's held polls, oldest first.
type HeldPolls = VecDeque<(u64, Arc<Signal>)>;

/// Every token's held polls. Cheap to clone.
#[derive(Clone, Default)]
pub struct PollSlots {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    by_token: Mutex<HashMap<[u8; 32], HeldPolls>>,
    next_id: AtomicU64,
}

/// A held poll's place among its token's polls; dropping it frees the place. Two pointers:
/// a parked poll carries it for its whole wait.
pub struct PollSlot {
    slots: PollSlots,
    signal: Arc<Signal>,
}

impl PollSlot {
    /// Resolves when the poll must end early, saying why.
    pub async fn ended(&self) -> SlotEnd {
        self.signal.notify.notified().await;
        if self.signal.revoked.load(Ordering::SeqCst) {
            SlotEnd::Revoked
        } else {
            SlotEnd::Evicted
        }
    }

    /// When the poll took this place (kept here, not in the parked future, which must stay
    /// small): a poll that waits again counts its wait from this instant.
    pub fn claimed_at(&self) -> Instant {
        self.signal.claimed_at
    }
}

impl Drop for PollSlot {
    fn drop(&mut self) {
        let mut by_token = self.slots.lock();
        let token = &self.signal.token;
        if let Some(polls) = by_token.get_mut(token) {
            polls.retain(|(id, _)| *id != self.signal.id);
            if polls.is_empty() {
                by_token.remove(token);
            }
        }
    }
}

impl PollSlots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], HeldPolls>> {
        self.inner
            .by_token
            .lock()
            .expect("slots lock is never poisoned")
    }

    /// Takes a place for a held poll of `token`. When the token already holds `max` polls,
    /// the oldest is told to answer now.
    pub fn claim(&self, token: [u8; 32], max: usize) -> PollSlot {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let signal = Arc::new(Signal {
            token,
            id,
            notify: Notify::new(),
            revoked: AtomicBool::new(false),
            claimed_at: Instant::now(),
        });
        let mut by_token = self.lock();
        // Most tokens hold one poll at a time: room for one, not the default four.
        let polls = by_token
            .entry(token)
            .or_insert_with(|| VecDeque::with_capacity(1));
        polls.push_back((id, signal.clone()));
        while polls.len() > max.max(1) {
            if let Some((_, oldest)) = polls.pop_front() {
                oldest.end(false);
            }
        }
        PollSlot {
            slots: self.clone(),
            signal,
        }
    }

    /// Ends every held poll of these tokens as revoked. Call after the revocation committed.
    pub fn revoke(&self, tokens: &[[u8; 32]]) {
        let by_token = self.lock();
        for token in tokens {
            for (_, signal) in by_token.get(token).into_iter().flatten() {
                signal.end(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_token_over_its_poll_limit_evicts_its_oldest_poll() {
        let slots = PollSlots::default();
        let oldest = slots.claim([1; 32], 2);
        let _middle = slots.claim([1; 32], 2);
        let _other_token = slots.claim([2; 32], 2);
        let _newest = slots.claim([1; 32], 2);
        let end = tokio::time::timeout(Duration::from_millis(100), oldest.ended())
            .await
            .expect("the oldest poll is told to answer");
        assert_eq!(end, SlotEnd::Evicted);
    }

    #[tokio::test]
    async fn revoking_a_token_ends_its_polls_and_no_others() {
        let slots = PollSlots::default();
        let revoked = slots.claim([1; 32], 6);
        let other = slots.claim([2; 32], 6);
        slots.revoke(&[[1; 32]]);
        let end = tokio::time::timeout(Duration::from_millis(100), revoked.ended())
            .await
            .expect("the revoked token's poll is told at once");
        assert_eq!(end, SlotEnd::Revoked);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), other.ended())
                .await
                .is_err(),
            "another token's poll keeps waiting"
        );
    }
}
