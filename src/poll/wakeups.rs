//! Who waits on what: one `Notify` per chat that has pollers, one for the agents' inbox, the
//! message a writer hands to the poller waiting right behind it, and each watched chat's
//! head (its last seq and whose it is), so a re-poll at the head parks without a read.
//!
//! `notify_waiters` wakes every `Notified` that was enabled before the call; the ordering
//! rules that make this race-free are kept by [`crate::poll::Hub::park`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::domain::{Chat, Message};

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
    /// The chat's last seq as far as this process knows (never ahead of the database: it
    /// only grows, from reads and from announcements made after commits) and its visitor.
    head: Option<Head>,
    /// When the last subscriber left: an entry with a head outlives its pollers briefly,
    /// since a poll that was just answered comes back within milliseconds.
    idle_since: Option<Instant>,
}

/// What a poller needs to park without reading: is there anything after its cursor, and
/// may it see this chat.
struct Head {
    last_seq: i64,
    visitor_id: Arc<str>,
}

/// How long a chat's head is kept once nobody polls it.
const HEAD_MEMORY: Duration = Duration::from_secs(60);

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

/// The wake-up registry. Cheap to clone.
#[derive(Clone, Default)]
pub struct Wakeups {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Keyed by the same `Arc<str>` its subscriptions hold: one copy of each id.
    chats: Mutex<HashMap<Arc<str>, ChatEntry>>,
    inbox: Notify,
}

/// A poller's registration on one chat; dropping it unregisters.
pub struct Subscription {
    wakeups: Wakeups,
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
        let mut chats = self.wakeups.lock();
        if let Some(entry) = chats.get_mut(&self.chat_id) {
            entry.subscribers -= 1;
            if let Some(i) = entry.cursor_index(self.after) {
                entry.cursors[i].1 -= 1;
                if entry.cursors[i].1 == 0 {
                    entry.cursors.swap_remove(i);
                }
            }
            if entry.subscribers == 0 {
                if entry.head.is_some() {
                    // Kept for the re-poll; the copy was for pollers at its cursor only.
                    entry.published = None;
                    entry.idle_since = Some(Instant::now());
                } else {
                    chats.remove(&self.chat_id);
                }
            }
        }
    }
}

impl Wakeups {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, ChatEntry>> {
        self.inner.chats.lock().expect("hub lock is never poisoned")
    }

    /// Registers a poller whose cursor is `after` on a chat.
    pub fn subscribe(&self, chat_id: &str, after: i64) -> Subscription {
        let mut chats = self.lock();
        let chat_id: Arc<str> = chats
            .get_key_value(chat_id)
            .map_or_else(|| Arc::from(chat_id), |(key, _)| key.clone());
        let entry = chats.entry(chat_id.clone()).or_default();
        entry.subscribers += 1;
        entry.idle_since = None;
        match entry.cursor_index(after) {
            Some(i) => entry.cursors[i].1 += 1,
            None => entry.cursors.push((after, 1)),
        }
        Subscription {
            wakeups: self.clone(),
            chat_id,
            after,
            notify: entry.notify.clone(),
        }
    }

    pub fn inbox(&self) -> &Notify {
        &self.inner.inbox
    }

    /// Number of chats with at least one poller.
    pub fn watched_chats(&self) -> usize {
        self.lock().values().filter(|e| e.subscribers > 0).count()
    }

    /// Forgets the heads of chats nobody has polled for a while.
    pub fn prune(&self) {
        self.lock().retain(|_, entry| {
            entry
                .idle_since
                .is_none_or(|since| since.elapsed() < HEAD_MEMORY)
        });
    }

    /// Records what a read found: the chat's last seq and its visitor. Only moves forward,
    /// and never below a seq already announced: a read that began before a commit can
    /// report after that commit's announcement.
    pub fn note_head(&self, chat_id: &str, last_seq: i64, visitor_id: &str) {
        if let Some(entry) = self.lock().get_mut(chat_id) {
            let last_seq = last_seq.max(entry.latest_seq);
            match &mut entry.head {
                Some(head) => head.last_seq = head.last_seq.max(last_seq),
                None => {
                    entry.head = Some(Head {
                        last_seq,
                        visitor_id: Arc::from(visitor_id),
                    })
                }
            }
        }
    }

    /// Whether a poller at cursor `after` has nothing to read in this chat, and may see it
    /// (`visitor`: the polling visitor's id; `None` for an agent). `false` when unknown.
    pub fn nothing_after(&self, chat_id: &str, after: i64, visitor: Option<&str>) -> bool {
        self.lock()
            .get(chat_id)
            .and_then(|entry| entry.head.as_ref())
            .is_some_and(|head| {
                head.last_seq <= after && visitor.is_none_or(|v| *head.visitor_id == *v)
            })
    }

    /// Wakes the chat's pollers.
    pub fn wake_chat(&self, chat_id: &str) {
        let notify = self.lock().get(chat_id).map(|entry| entry.notify.clone());
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }

    /// Forgets every chat's head: the next poll of each reads the database.
    pub fn forget_heads(&self) {
        for entry in self.lock().values_mut() {
            entry.head = None;
        }
    }

    /// Wakes every poller, of every chat and of the inbox.
    pub fn wake_all(&self) {
        self.inner.inbox.notify_waiters();
        let notifies: Vec<_> = self.lock().values().map(|e| e.notify.clone()).collect();
        for notify in notifies {
            notify.notify_waiters();
        }
    }

    /// Records a committed message (and its copy, if handed over), then wakes the chat's and
    /// the inbox's pollers. Announcements can arrive out of commit order (they come from
    /// different threads); an older one never replaces a newer one.
    pub fn message_added(&self, chat_id: &str, seq: i64, published: Option<Published>) {
        let notify = self.lock().get_mut(chat_id).map(|entry| {
            if let Some(head) = &mut entry.head {
                head.last_seq = head.last_seq.max(seq);
            }
            if seq >= entry.latest_seq {
                entry.latest_seq = seq;
                // Only pollers waiting now can use the copy (a re-poll is past it).
                entry.published = published.filter(|_| entry.subscribers > 0).map(Arc::new);
            }
            entry.notify.clone()
        });
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
        self.inner.inbox.notify_waiters();
    }

    /// Whether any poller waits on this chat now.
    pub fn is_watched(&self, chat_id: &str) -> bool {
        self.lock()
            .get(chat_id)
            .is_some_and(|entry| entry.subscribers > 0)
    }

    /// Whether a poller of this chat waits with cursor `seq`.
    pub fn has_poller_at(&self, chat_id: &str, seq: i64) -> bool {
        self.lock()
            .get(chat_id)
            .is_some_and(|entry| entry.cursor_index(seq).is_some())
    }

    /// The handed-over message that is everything after `after`: it must be the newest
    /// message announced and directly follow `after`.
    pub fn published_after(&self, chat_id: &str, after: i64) -> Option<Arc<Published>> {
        let chats = self.lock();
        let entry = chats.get(chat_id)?;
        entry
            .published
            .as_ref()
            .filter(|p| p.prev_seq == after && p.message.seq == entry.latest_seq)
            .cloned()
    }
}
