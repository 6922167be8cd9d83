//! Who is typing in which chat. A `true` lasts [`TYPING_TTL`] unless renewed; the lapses are
//! found by one expiry loop (see `Hub::start`) that sleeps until the earliest deadline,
//! instead of a timer task per typing event.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::Notify;

use crate::domain::Typing;

/// A `true` typing state lasts this long after the last one.
pub const TYPING_TTL: Duration = Duration::from_secs(5);

#[derive(Default, Clone, Copy)]
struct TypingUntil {
    visitor: Option<Instant>,
    agent: Option<Instant>,
}

#[derive(Default)]
struct Board {
    by_chat: HashMap<String, TypingUntil>,
    /// Every deadline set, earliest first; stale ones (renewed or cleared) are skipped.
    deadlines: BinaryHeap<Reverse<(Instant, String)>>,
}

/// The typing state of every chat.
#[derive(Default)]
pub struct TypingBoard {
    board: Mutex<Board>,
    /// Tells the expiry loop that an earlier deadline may exist.
    deadline_added: Notify,
}

impl TypingBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().expect("typing lock is never poisoned")
    }

    /// Records one side's typing state, a `true` lasting `ttl`; returns whether what pollers
    /// see changed.
    pub fn set(
        &self,
        chat_id: &str,
        agent_side: bool,
        typing: bool,
        now: Instant,
        ttl: Duration,
    ) -> bool {
        let mut board = self.lock();
        let before = current(board.by_chat.get(chat_id).copied(), now);
        let entry = board.by_chat.entry(chat_id.to_string()).or_default();
        let until = typing.then(|| now + ttl);
        if agent_side {
            entry.agent = until;
        } else {
            entry.visitor = until;
        }
        let after = current(Some(*entry), now);
        if after == Typing::default() {
            board.by_chat.remove(chat_id);
        }
        if let Some(until) = until {
            board.deadlines.push(Reverse((until, chat_id.to_string())));
            drop(board);
            self.deadline_added.notify_one();
        }
        before != after
    }

    /// Ends both sides' typing; returns whether what pollers see changed.
    pub fn clear(&self, chat_id: &str, now: Instant) -> bool {
        let before = self.lock().by_chat.remove(chat_id);
        current(before, now) != Typing::default()
    }

    pub fn get(&self, chat_id: &str, now: Instant) -> Typing {
        current(self.lock().by_chat.get(chat_id).copied(), now)
    }

    /// Removes states that lapsed by `now`; returns the chats whose state changed, and the
    /// next deadline to look again at.
    pub fn expire(&self, now: Instant) -> (Vec<String>, Option<Instant>) {
        let mut board = self.lock();
        let mut lapsed = Vec::new();
        while let Some(Reverse((at, _))) = board.deadlines.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, chat_id))) = board.deadlines.pop() else {
                break;
            };
            let idle = board
                .by_chat
                .get(&chat_id)
                .is_some_and(|entry| current(Some(*entry), now) == Typing::default());
            if idle {
                board.by_chat.remove(&chat_id);
                lapsed.push(chat_id);
            }
        }
        let next = board.deadlines.peek().map(|Reverse((at, _))| *at);
        (lapsed, next)
    }

    /// Resolves when a new deadline was set (possibly earlier than the one slept towards).
    pub async fn deadline_added(&self) {
        self.deadline_added.notified().await
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

    #[test]
    fn typing_is_per_side_and_can_be_cleared() {
        let board = TypingBoard::default();
        let now = Instant::now();
        assert!(board.set("c1", false, true, now, TYPING_TTL));
        assert_eq!(
            board.get("c1", now),
            Typing {
                visitor: true,
                agent: false
            }
        );
        assert!(board.set("c1", false, false, now, TYPING_TTL));
        assert_eq!(board.get("c1", now), Typing::default());
        board.set("c1", true, true, now, TYPING_TTL);
        assert!(board.clear("c1", now));
        assert!(!board.clear("c1", now), "nothing left to clear");
        assert_eq!(board.get("c1", now), Typing::default());
    }

    #[test]
    fn a_lapsed_state_is_reported_once_and_a_renewed_one_not_at_all() {
        let board = TypingBoard::default();
        let start = Instant::now();
        board.set("c1", false, true, start, TYPING_TTL);
        board.set("c2", true, true, start, TYPING_TTL);
        // c2 is renewed just before its first deadline.
        board.set(
            "c2",
            true,
            true,
            start + TYPING_TTL - Duration::from_millis(1),
            TYPING_TTL,
        );
        let (lapsed, next) = board.expire(start + TYPING_TTL);
        assert_eq!(lapsed, vec!["c1".to_string()]);
        assert!(next.is_some(), "c2's renewed deadline is still ahead");
        let (lapsed, next) = board.expire(start + 2 * TYPING_TTL);
        assert_eq!(lapsed, vec!["c2".to_string()]);
        assert_eq!(next, None);
        assert_eq!(board.expire(start + 3 * TYPING_TTL).0, Vec::<String>::new());
    }
}
