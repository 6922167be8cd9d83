//! Where a long poll waits: one `Notify` per chat that has pollers, one for the agent inbox.
//!
//! The protocol that makes polling race-free:
//! 1. a poller [`Hub::subscribe`]s and `enable()`s its `Notified` future **before** it reads
//!    the database;
//! 2. a writer commits **before** it calls [`Hub::chat_changed`].
//!
//! `notify_waiters` wakes every `Notified` that was enabled before the call. So a commit is
//! either visible to the poller's read, or its notification comes after the poller enabled
//! its future and wakes it: no change can fall between the read and the wait.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::model::{Chat, Message, Typing};

/// A `true` typing state lasts this long after the last one.
pub const TYPING_TTL: Duration = Duration::from_secs(5);

#[derive(Default)]
struct ChatEntry {
    notify: Arc<Notify>,
    /// Live subscriptions; the entry is removed when this drops to zero.
    subscribers: usize,
    /// How many subscribers wait with each cursor (`after`): `(cursor, count)`. Nearly always
    /// one cursor, so a short list, not a map (which costs a table per chat).
    cursors: Vec<(i64, usize)>,
    /// The highest message seq announced for this chat while it had pollers.
    latest_seq: i64,
    /// The message with seq `latest_seq`, if its writer handed it over.
    published: Option<Arc<Published>>,
}

impl ChatEntry {
    fn cursor_index(&self, cursor: i64) -> Option<usize> {
        self.cursors.iter().position(|(c, _)| *c == cursor)
    }
}

/// A committed message and its chat as of that commit, handed to the chat's waiting pollers:
/// a poller woken by it can answer without a database read.
pub struct Published {
    /// The chat's last seq before this message (read in the same transaction): a poller whose
    /// cursor is exactly here needs exactly this one message.
    pub prev_seq: i64,
    pub message: Message,
    pub chat: Chat,
    /// The typing/read state version read before `chat` was: if the version has moved since,
    /// the chat's read markers may be stale and the poller reads the database instead.
    pub state_version: u64,
}

/// A token's held polls, oldest first: each poll's id and the `Notify` that evicts it.
type HeldPolls = VecDeque<(u64, Arc<Notify>)>;

#[derive(Default, Clone, Copy)]
struct TypingUntil {
    visitor: Option<Instant>,
    agent: Option<Instant>,
}

/// Shared, cheap to clone.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Keyed by the same `Arc<str>` its subscriptions hold: one copy of each id.
    chats: Mutex<HashMap<Arc<str>, ChatEntry>>,
    inbox: Notify,
    typing: Mutex<HashMap<String, TypingUntil>>,
    shutting_down: AtomicBool,
    shutdown: Notify,
    polls_by_token: Mutex<HashMap<[u8; 32], HeldPolls>>,
    next_poll: AtomicU64,
    /// Per chat, the version of its state that has no seq (typing, read markers) and when it
    /// last changed. Versions come from one counter, so they never repeat across chats.
    state_versions: Mutex<HashMap<String, (u64, Instant)>>,
    next_state_version: AtomicU64,
}

/// Versions untouched this long are forgotten; a poller quoting one gets one early answer.
const STATE_VERSION_MEMORY: Duration = Duration::from_secs(10 * 60);

/// A held poll's place among its token's polls; dropping it frees the place.
pub struct PollSlot {
    hub: Hub,
    token: [u8; 32],
    id: u64,
    evicted: Arc<Notify>,
}

impl PollSlot {
    /// Resolves when a newer poll of the same token has taken this one's place.
    pub async fn evicted(&self) {
        self.evicted.notified().await
    }
}

impl Drop for PollSlot {
    fn drop(&mut self) {
        let mut polls = self
            .hub
            .inner
            .polls_by_token
            .lock()
            .expect("hub lock is never poisoned");
        if let Some(slots) = polls.get_mut(&self.token) {
            slots.retain(|(id, _)| *id != self.id);
            if slots.is_empty() {
                polls.remove(&self.token);
            }
        }
    }
}

/// A poller's registration on one chat; dropping it unregisters.
pub struct Subscription {
    hub: Hub,
    chat_id: Arc<str>,
    after: i64,
    notify: Arc<Notify>,
}

impl Subscription {
    pub fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut chats = self
            .hub
            .inner
            .chats
            .lock()
            .expect("hub lock is never poisoned");
        if let Some(entry) = chats.get_mut(&self.chat_id) {
            entry.subscribers -= 1;
            if let Some(i) = entry.cursor_index(self.after) {
                entry.cursors[i].1 -= 1;
                if entry.cursors[i].1 == 0 {
                    entry.cursors.swap_remove(i);
                }
            }
            if entry.subscribers == 0 {
                chats.remove(&self.chat_id);
            }
        }
    }
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a poller whose cursor is `after` on a chat. Enable its
    /// `notify().notified()` before reading.
    pub fn subscribe(&self, chat_id: &str, after: i64) -> Subscription {
        let mut chats = self.inner.chats.lock().expect("hub lock is never poisoned");
        let chat_id: Arc<str> = chats
            .get_key_value(chat_id)
            .map_or_else(|| Arc::from(chat_id), |(key, _)| key.clone());
        let entry = chats.entry(chat_id.clone()).or_default();
        entry.subscribers += 1;
        match entry.cursor_index(after) {
            Some(i) => entry.cursors[i].1 += 1,
            None => entry.cursors.push((after, 1)),
        }
        Subscription {
            hub: self.clone(),
            chat_id,
            after,
            notify: entry.notify.clone(),
        }
    }

    /// Takes a place for a held poll of `token`. When the token already holds `max` polls,
    /// the oldest is told to answer now: a page cannot pile up connections.
    pub fn claim_poll_slot(&self, token: [u8; 32], max: usize) -> PollSlot {
        let id = self.inner.next_poll.fetch_add(1, Ordering::Relaxed);
        let evicted = Arc::new(Notify::new());
        let mut polls = self
            .inner
            .polls_by_token
            .lock()
            .expect("hub lock is never poisoned");
        // Most tokens hold one poll at a time: room for one, not the default four.
        let slots = polls
            .entry(token)
            .or_insert_with(|| VecDeque::with_capacity(1));
        slots.push_back((id, evicted.clone()));
        while slots.len() > max.max(1) {
            if let Some((_, oldest)) = slots.pop_front() {
                // notify_one keeps a permit, so a poll not yet waiting still sees it.
                oldest.notify_one();
            }
        }
        PollSlot {
            hub: self.clone(),
            token,
            id,
            evicted,
        }
    }

    /// Number of chats with at least one poller (for metrics and tests).
    pub fn watched_chats(&self) -> usize {
        self.inner
            .chats
            .lock()
            .expect("hub lock is never poisoned")
            .len()
    }

    /// Wakes the chat's pollers. Call only after the change has committed.
    pub fn chat_changed(&self, chat_id: &str) {
        let notify = {
            let chats = self.inner.chats.lock().expect("hub lock is never poisoned");
            chats.get(chat_id).map(|entry| entry.notify.clone())
        };
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }

    /// The chat's typing/read state version; a poll quoting an older one answers at once.
    pub fn state_version(&self, chat_id: &str) -> u64 {
        self.inner
            .state_versions
            .lock()
            .expect("hub lock is never poisoned")
            .get(chat_id)
            .map_or(0, |(version, _)| *version)
    }

    /// Records that typing or a read marker changed (after the change is applied or
    /// committed), then wakes the chat's pollers.
    pub fn state_changed(&self, chat_id: &str) {
        let version = self.inner.next_state_version.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner
            .state_versions
            .lock()
            .expect("hub lock is never poisoned")
            .insert(chat_id.to_string(), (version, Instant::now()));
        self.chat_changed(chat_id);
    }

    /// Forgets state versions of chats that have been quiet for a while.
    pub fn prune(&self) {
        self.inner
            .state_versions
            .lock()
            .expect("hub lock is never poisoned")
            .retain(|_, (_, at)| at.elapsed() < STATE_VERSION_MEMORY);
    }

    /// Announces a committed message (`seq`) to the chat's pollers and the agents' inbox
    /// pollers, with the message itself when the writer could hand it over. Announcements can
    /// arrive out of commit order (they come from different threads); an older one never
    /// replaces a newer one.
    pub fn message_added(&self, chat_id: &str, seq: i64, published: Option<Published>) {
        let notify = {
            let mut chats = self.inner.chats.lock().expect("hub lock is never poisoned");
            chats.get_mut(chat_id).map(|entry| {
                if seq >= entry.latest_seq {
                    entry.latest_seq = seq;
                    entry.published = published.map(Arc::new);
                }
                entry.notify.clone()
            })
        };
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
        self.inner.inbox.notify_waiters();
    }

    /// Whether a poller of this chat waits with cursor `seq`: only then is handing over the
    /// next message worth the writer's time (pollers that lag behind read the database).
    pub fn has_poller_at(&self, chat_id: &str, seq: i64) -> bool {
        self.inner
            .chats
            .lock()
            .expect("hub lock is never poisoned")
            .get(chat_id)
            .is_some_and(|entry| entry.cursor_index(seq).is_some())
    }

    /// The handed-over message that is everything after `after`: it must be the newest
    /// message announced and directly follow `after`.
    pub fn published_after(&self, chat_id: &str, after: i64) -> Option<Arc<Published>> {
        let chats = self.inner.chats.lock().expect("hub lock is never poisoned");
        let entry = chats.get(chat_id)?;
        entry
            .published
            .as_ref()
            .filter(|p| p.prev_seq == after && p.message.seq == entry.latest_seq)
            .cloned()
    }

    pub fn inbox(&self) -> &Notify {
        &self.inner.inbox
    }

    /// Records a typing state and wakes the chat's pollers; a `true` expires by itself.
    pub fn set_typing(&self, chat_id: &str, agent_side: bool, typing: bool) {
        let changed = {
            let mut all = self
                .inner
                .typing
                .lock()
                .expect("hub lock is never poisoned");
            let now = Instant::now();
            let before = current(all.get(chat_id).copied(), now);
            let entry = all.entry(chat_id.to_string()).or_default();
            let until = typing.then(|| now + TYPING_TTL);
            if agent_side {
                entry.agent = until;
            } else {
                entry.visitor = until;
            }
            let after = current(Some(*entry), now);
            if after == Typing::default() {
                all.remove(chat_id);
            }
            before != after
        };
        if changed {
            self.state_changed(chat_id);
        }
        if typing {
            // Wake pollers when the state lapses, so they learn it without asking.
            let hub = self.clone();
            let chat_id = chat_id.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(TYPING_TTL + Duration::from_millis(20)).await;
                hub.expire_typing(&chat_id);
            });
        }
    }

    fn expire_typing(&self, chat_id: &str) {
        let expired = {
            let mut all = self
                .inner
                .typing
                .lock()
                .expect("hub lock is never poisoned");
            let now = Instant::now();
            match all.get(chat_id).copied() {
                Some(entry) if current(Some(entry), now) == Typing::default() => {
                    all.remove(chat_id);
                    true
                }
                _ => false,
            }
        };
        if expired {
            self.state_changed(chat_id);
        }
    }

    pub fn typing(&self, chat_id: &str) -> Typing {
        let all = self
            .inner
            .typing
            .lock()
            .expect("hub lock is never poisoned");
        current(all.get(chat_id).copied(), Instant::now())
    }

    /// Answers every held poll now and makes new ones return at once.
    pub fn shut_down(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        self.inner.shutdown.notify_waiters();
        self.inner.inbox.notify_waiters();
        let notifies: Vec<_> = {
            let chats = self.inner.chats.lock().expect("hub lock is never poisoned");
            chats.values().map(|entry| entry.notify.clone()).collect()
        };
        for notify in notifies {
            notify.notify_waiters();
        }
    }

    /// Resolves when the server starts shutting down (at once if it already has).
    pub async fn shutting_down(&self) {
        let notified = self.inner.shutdown.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }
}

fn current(entry: Option<TypingUntil>, now: Instant) -> Typing {
    let live = |until: Option<Instant>| until.is_some_and(|t| t > now);
    entry.map_or_else(Typing::default, |e| Typing {
        visitor: live(e.visitor),
        agent: live(e.agent),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_after_enable_wakes_the_poller() {
        let hub = Hub::new();
        let subscription = hub.subscribe("c1", 0);
        let notified = subscription.notify().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // The "commit" lands between the poller's read and its wait.
        hub.message_added("c1", 1, None);
        tokio::time::timeout(Duration::from_secs(1), notified)
            .await
            .expect("a notification given after enable() is never lost");
    }

    fn published(prev_seq: i64, seq: i64) -> Published {
        let visitor = crate::model::Visitor {
            id: "v".into(),
            name: None,
            email: None,
            page_url: None,
            created_at: String::new(),
        };
        let message = Message {
            id: format!("m{seq}"),
            seq,
            chat_id: "c1".into(),
            sender: "visitor".into(),
            author: None,
            body: "hi".into(),
            client_id: None,
            event: None,
            attachment: None,
            created_at: String::new(),
        };
        let chat = Chat {
            id: "c1".into(),
            status: "open".into(),
            visitor,
            assignee: None,
            created_at: String::new(),
            last_seq: seq,
            last_message_at: None,
            last_message: Some(message.clone()),
            unread: 1,
            unread_by_visitor: 0,
            read: Default::default(),
        };
        Published {
            prev_seq,
            message,
            chat,
            state_version: 0,
        }
    }

    #[tokio::test]
    async fn a_handed_over_message_answers_only_the_poller_right_before_it() {
        let hub = Hub::new();
        let _poller = hub.subscribe("c1", 4);
        assert!(hub.has_poller_at("c1", 4) && !hub.has_poller_at("c1", 3));
        hub.message_added("c1", 7, Some(published(4, 7)));
        assert!(hub.published_after("c1", 4).is_some());
        assert!(
            hub.published_after("c1", 3).is_none(),
            "it would miss seq 4"
        );
        assert!(hub.published_after("c1", 7).is_none());
        // A late announcement of an older message changes nothing.
        hub.message_added("c1", 6, Some(published(4, 6)));
        assert_eq!(hub.published_after("c1", 4).map(|p| p.message.seq), Some(7));
        // A newer message announced without a copy voids the old copy.
        hub.message_added("c1", 9, None);
        assert!(hub.published_after("c1", 4).is_none());
        assert!(hub.published_after("c1", 7).is_none());
    }

    #[tokio::test]
    async fn nothing_is_kept_for_chats_without_pollers() {
        let hub = Hub::new();
        hub.message_added("c1", 7, Some(published(4, 7)));
        assert!(!hub.has_poller_at("c1", 4));
        assert!(hub.published_after("c1", 4).is_none());
    }

    #[tokio::test]
    async fn entries_are_removed_when_the_last_poller_leaves() {
        let hub = Hub::new();
        let a = hub.subscribe("c1", 0);
        let b = hub.subscribe("c1", 3);
        assert_eq!(hub.watched_chats(), 1);
        drop(a);
        assert_eq!(hub.watched_chats(), 1);
        drop(b);
        assert_eq!(hub.watched_chats(), 0);
    }

    #[tokio::test]
    async fn typing_is_per_side_and_can_be_cleared() {
        let hub = Hub::new();
        hub.set_typing("c1", false, true);
        assert_eq!(
            hub.typing("c1"),
            Typing {
                visitor: true,
                agent: false
            }
        );
        hub.set_typing("c1", false, false);
        assert_eq!(hub.typing("c1"), Typing::default());
    }

    #[tokio::test]
    async fn a_token_over_its_poll_limit_evicts_its_oldest_poll() {
        let hub = Hub::new();
        let oldest = hub.claim_poll_slot([1; 32], 2);
        let _middle = hub.claim_poll_slot([1; 32], 2);
        let _other_token = hub.claim_poll_slot([2; 32], 2);
        let _newest = hub.claim_poll_slot([1; 32], 2);
        tokio::time::timeout(Duration::from_millis(100), oldest.evicted())
            .await
            .expect("the oldest poll is told to answer");
    }

    #[tokio::test]
    async fn state_versions_grow_with_each_change_and_are_pruned_by_age() {
        let hub = Hub::new();
        assert_eq!(hub.state_version("c1"), 0);
        hub.set_typing("c1", true, true);
        let first = hub.state_version("c1");
        hub.state_changed("c1");
        assert!(hub.state_version("c1") > first);
        hub.prune();
        assert!(hub.state_version("c1") > 0, "recent versions are kept");
    }

    #[tokio::test]
    async fn shutdown_is_seen_even_by_late_callers() {
        let hub = Hub::new();
        hub.shut_down();
        tokio::time::timeout(Duration::from_millis(100), hub.shutting_down())
            .await
            .expect("resolves at once after shut_down");
    }
}
