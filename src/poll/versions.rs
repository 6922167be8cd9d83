//! Versions of the per-chat state that has no seq (typing, read markers): a poll that quotes
//! an older version than the current one answers at once with the new state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Versions untouched this long are forgotten; a poller quoting one gets one early answer.
const MEMORY: Duration = Duration::from_secs(10 * 60);

#[derive(Default)]
pub struct StateVersions {
    /// Per chat: its version and when it last changed.
    by_chat: Mutex<HashMap<String, (u64, Instant)>>,
    /// One counter for all chats, so versions never repeat across chats.
    next: AtomicU64,
}

impl StateVersions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        self.by_chat
            .lock()
            .expect("versions lock is never poisoned")
    }

    pub fn get(&self, chat_id: &str) -> u64 {
        self.lock().get(chat_id).map_or(0, |(version, _)| *version)
    }

    /// Moves the chat to a version newer than any this instance has seen, and returns it.
    pub fn bump(&self, chat_id: &str) -> u64 {
        let mut by_chat = self.lock();
        let current = by_chat.get(chat_id).map_or(0, |(version, _)| *version);
        let version = self.next.load(Ordering::SeqCst).max(current) + 1;
        self.next.fetch_max(version, Ordering::SeqCst);
        by_chat.insert(chat_id.to_string(), (version, Instant::now()));
        version
    }

    /// Takes another instance's version for the chat if it is newer; returns whether it was.
    /// Every instance then holds the same version of a chat, so a client whose polls a load
    /// balancer spreads over several instances is not answered at once by each.
    pub fn raise(&self, chat_id: &str, version: u64) -> bool {
        let mut by_chat = self.lock();
        let current = by_chat.get(chat_id).map_or(0, |(version, _)| *version);
        self.next.fetch_max(version, Ordering::SeqCst);
        if version <= current {
            return false;
        }
        by_chat.insert(chat_id.to_string(), (version, Instant::now()));
        true
    }

    /// Forgets versions of chats that have been quiet for a while.
    pub fn prune(&self) {
        self.lock().retain(|_, (_, at)| at.elapsed() < MEMORY);
    }
}
