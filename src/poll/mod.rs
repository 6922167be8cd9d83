//! Where a long poll waits, and everything that wakes it.
//!
//! [`Hub::park`] is the one place a poll waits. Its protocol makes polling race-free:
//! 1. it registers the poller and `enable()`s its `Notified` future **before** it reads;
//! 2. a writer commits **before** it announces the change ([`Hub::message_added`],
//!    [`Hub::state_changed`]).
//!
//! `notify_waiters` wakes every `Notified` enabled before the call. So a commit is either
//! visible to the poller's read, or its announcement comes after the poller enabled its
//! future and wakes it: no change can fall between the read and the wait.
//!
//! The parts: [`wakeups`] (who waits on which chat, the message hand-over), [`typing`],
//! [`versions`] (typing/read state versions), [`slots`] (the polls each token holds).

pub mod signal;
pub mod slots;
pub mod typing;
pub mod versions;
pub mod wakeups;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::domain::Typing;
use crate::metrics;
pub use signal::{Signal, TypingChange};
pub use slots::{PollSlot, SlotEnd};
pub use wakeups::Published;

/// How often quiet state versions are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What a poll waits for.
#[derive(Debug, Clone, Copy)]
pub enum Watch<'a> {
    /// New messages of one chat after a cursor, or a change of its typing/read state.
    Chat { chat_id: &'a str, after: i64 },
    /// Any chat's new message (the agents' inbox).
    Inbox,
}

/// Why a parked poll stopped waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    Change,
    Timeout,
    Shutdown,
    /// A newer poll of the same token took its place.
    Evicted,
    /// Its token was revoked: the poll must answer `401`.
    Revoked,
}

impl Woken {
    fn label(self) -> &'static str {
        match self {
            Woken::Change => "change",
            Woken::Timeout => "timeout",
            Woken::Shutdown => "shutdown",
            Woken::Evicted => "evicted",
            Woken::Revoked => "revoked",
        }
    }
}

/// What [`Hub::park`] ended with.
pub enum Parked<T> {
    /// The first read already had an answer.
    Ready(T),
    /// Woken by the one message that follows the cursor, handed over by its writer: the
    /// answer needs no read.
    HandedOver(Arc<Published>),
    /// Nothing was there; the poll waited until this.
    Woken(Woken),
}

/// Passes this instance's typing and state changes on to the other instances.
pub type Relay = Arc<dyn Fn(Signal) + Send + Sync>;

/// A typing state heard from another instance lasts this long unless renewed or ended: that
/// instance ends it at [`typing::TYPING_TTL`] and says so; this covers its going away.
const REMOTE_TYPING_TTL: Duration = Duration::from_secs(2 * typing::TYPING_TTL.as_secs());

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct Hub {
    relay: Arc<OnceLock<Relay>>,
    wakeups: wakeups::Wakeups,
    typing: Arc<typing::TypingBoard>,
    versions: Arc<versions::StateVersions>,
    slots: slots::PollSlots,
    /// Most polls one token may hold at once; a newer one ends the oldest.
    max_polls_per_token: usize,
    shutdown: CancellationToken,
}

impl Hub {
    /// A hub whose polls answer when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken, max_polls_per_token: usize) -> Self {
        Self {
            relay: Default::default(),
            wakeups: Default::default(),
            typing: Default::default(),
            versions: Default::default(),
            slots: Default::default(),
            max_polls_per_token,
            shutdown,
        }
    }

    /// Starts the hub's one background loop (typing expiry, pruning) on the current runtime;
    /// it ends with the shutdown token.
    pub fn start(&self) {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut last_prune = Instant::now();
            loop {
                let now = Instant::now();
                let (lapsed, next) = hub.typing.expire(now);
                for chat_id in lapsed {
                    hub.state_changed_by(&chat_id, Some(TypingChange::Lapsed));
                }
                if last_prune.elapsed() >= PRUNE_EVERY {
                    hub.versions.prune();
                    hub.wakeups.prune();
                    last_prune = now;
                }
                let wake_at = next.map_or(now + PRUNE_EVERY, |at| at.min(now + PRUNE_EVERY));
                tokio::select! {
                    _ = tokio::time::sleep_until(wake_at) => {}
                    _ = hub.typing.deadline_added() => {}
                    _ = hub.shutdown.cancelled() => break,
                }
            }
        });
    }

    /// Takes a place for a held poll of `token` (see [`slots::PollSlots::claim`]).
    pub fn claim_slot(&self, token: [u8; 32]) -> PollSlot {
        self.slots.claim(token, self.max_polls_per_token)
    }

    /// Answers the held polls of revoked tokens with [`Woken::Revoked`].
    pub fn revoke(&self, tokens: &[[u8; 32]]) {
        self.slots.revoke(tokens);
    }

    /// Registers for `watch`, then runs `read`; if it has no answer (`None`), waits up to
    /// `wait` for a change, a shutdown, or the end of `slot`, and says which came.
    ///
    /// `read` is called only after the registration, which is what makes this race-free.
    ///
    /// A plain `fn` returning an `async move` block, not an `async fn`: an `async fn` keeps a
    /// second copy of its arguments in its future, which a parked poll would carry for its
    /// whole wait (see the size test in `http::api`).
    #[allow(clippy::manual_async_fn, reason = "an async fn copies its arguments")]
    pub fn park<'a, T, E, F, Fut>(
        &'a self,
        watch: Watch<'a>,
        slot: &'a PollSlot,
        wait: Duration,
        read: F,
    ) -> impl Future<Output = Result<Parked<T>, E>> + 'a
    where
        F: FnOnce() -> Fut + 'a,
        Fut: Future<Output = Result<Option<T>, E>> + 'a,
        T: 'a,
        E: 'a,
    {
        async move {
            let subscription = match watch {
                Watch::Chat { chat_id, after } => Some(self.wakeups.subscribe(chat_id, after)),
                Watch::Inbox => None,
            };
            let notify = subscription
                .as_ref()
                .map_or(self.wakeups.inbox(), wakeups::Subscription::notify);
            let changed = notify.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();

            if let Some(answer) = read().await? {
                return Ok(Parked::Ready(answer));
            }
            if wait.is_zero() {
                return Ok(Parked::Woken(Woken::Timeout));
            }
            let held = metrics::HeldPoll::start(match watch {
                Watch::Chat { .. } => "message",
                Watch::Inbox => "inbox",
            });
            let woken = tokio::select! {
                _ = &mut changed => Woken::Change,
                _ = tokio::time::sleep(wait) => Woken::Timeout,
                _ = self.shutdown.cancelled() => Woken::Shutdown,
                end = slot.ended() => match end {
                    SlotEnd::Evicted => Woken::Evicted,
                    SlotEnd::Revoked => Woken::Revoked,
                },
            };
            held.woken(woken.label());
            // Taken while still subscribed: the copy is kept only while the chat has pollers.
            if let (Woken::Change, Watch::Chat { chat_id, after }) = (woken, watch) {
                if let Some(published) = self.handed_over(chat_id, after) {
                    return Ok(Parked::HandedOver(published));
                }
            }
            Ok(Parked::Woken(woken))
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Number of chats with at least one poller (for metrics and tests).
    pub fn watched_chats(&self) -> usize {
        self.wakeups.watched_chats()
    }

    /// The chat's typing/read state version; a poll quoting an older one answers at once.
    pub fn state_version(&self, chat_id: &str) -> u64 {
        self.versions.get(chat_id)
    }

    /// Records that typing or a read marker changed (after the change is applied or
    /// committed), then wakes the chat's pollers and tells the other instances.
    pub fn state_changed(&self, chat_id: &str) {
        self.state_changed_by(chat_id, None);
    }

    fn state_changed_by(&self, chat_id: &str, typing: Option<TypingChange>) {
        let version = self.versions.bump(chat_id);
        self.wakeups.wake_chat(chat_id);
        self.relay(Signal::State {
            chat_id: chat_id.to_string(),
            version,
            typing,
        });
    }

    /// Sends this instance's changes to the others through `relay` (from now on).
    pub fn set_relay(&self, relay: Relay) {
        let _ = self.relay.set(relay);
    }

    fn relay(&self, signal: Signal) {
        if let Some(relay) = self.relay.get() {
            relay(signal);
        }
    }

    /// Applies a change another instance made: wakes the pollers it concerns, who read the
    /// database again. Token revocations are applied by [`Hub::revoke`].
    pub fn apply_remote(&self, signal: &Signal) {
        match signal {
            Signal::Message { chat_id, seq } => self.wakeups.message_added(chat_id, *seq, None),
            Signal::State {
                chat_id,
                version,
                typing,
            } => {
                let now = Instant::now();
                let typing_changed = match typing {
                    None => false,
                    Some(TypingChange::Lapsed) => self.typing.clear(chat_id, now),
                    Some(TypingChange::Side { agent_side, typing }) => {
                        self.typing
                            .set(chat_id, *agent_side, *typing, now, REMOTE_TYPING_TTL)
                    }
                };
                // A renewal carries the version its sender already had: nothing moved. A
                // change whose version this instance has passed (its own typing lapsed
                // meanwhile) still needs a new version here, or pollers would miss it.
                let raised = self.versions.raise(chat_id, *version);
                if typing_changed && !raised {
                    self.versions.bump(chat_id);
                }
                if raised || typing_changed {
                    self.wakeups.wake_chat(chat_id);
                }
            }
            Signal::Revoked { tokens } => self.revoke(tokens),
        }
    }

    /// After news from other instances may have been lost (the listener reconnected):
    /// forgets every chat head this instance learned, and wakes every poller to read again.
    pub fn resync(&self) {
        self.wakeups.forget_heads();
        self.wakeups.wake_all();
    }

    /// Announces a committed message (`seq`) to the chat's pollers and the inbox pollers,
    /// with the message itself when the writer could hand it over. Call after the commit.
    pub fn message_added(&self, chat_id: &str, seq: i64, published: Option<Published>) {
        self.wakeups.message_added(chat_id, seq, published);
    }

    /// Records a chat's last seq and visitor as a read found them (see [`Hub::at_head`]).
    pub fn note_head(&self, chat_id: &str, last_seq: i64, visitor_id: &str) {
        self.wakeups.note_head(chat_id, last_seq, visitor_id);
    }

    /// Whether a registered poller at `after`, which knows state version `known_state`, has
    /// nothing to read and may see the chat (`visitor`: `None` for agents): then it can park
    /// without a database read. Known only for chats polled recently.
    pub fn at_head(
        &self,
        chat_id: &str,
        after: i64,
        known_state: Option<u64>,
        visitor: Option<&str>,
    ) -> bool {
        known_state.is_none_or(|known| known == self.state_version(chat_id))
            && self.wakeups.nothing_after(chat_id, after, visitor)
    }

    /// Whether any poller waits on this chat now.
    pub fn is_watched(&self, chat_id: &str) -> bool {
        self.wakeups.is_watched(chat_id)
    }

    /// Whether a poller of this chat waits with cursor `seq`: only then is handing over the
    /// next message worth the writer's time (pollers that lag behind read the database).
    pub fn has_poller_at(&self, chat_id: &str, seq: i64) -> bool {
        self.wakeups.has_poller_at(chat_id, seq)
    }

    /// The handed-over message that is everything a poller at `after` lacks, if the chat's
    /// typing/read state has not moved since the writer took its copy of the chat.
    fn handed_over(&self, chat_id: &str, after: i64) -> Option<Arc<Published>> {
        let version = self.state_version(chat_id);
        self.wakeups
            .published_after(chat_id, after)
            .filter(|p| p.state_version == version)
    }

    /// Records one side's typing state and wakes the chat's pollers if it changed; a `true`
    /// lapses by itself after [`typing::TYPING_TTL`].
    pub fn set_typing(&self, chat_id: &str, agent_side: bool, typing: bool) {
        let now = Instant::now();
        let change = Some(TypingChange::Side { agent_side, typing });
        if self
            .typing
            .set(chat_id, agent_side, typing, now, typing::TYPING_TTL)
        {
            self.state_changed_by(chat_id, change);
        } else if typing {
            // A renewal: other instances must push their deadline on too.
            self.relay(Signal::State {
                chat_id: chat_id.to_string(),
                version: self.versions.get(chat_id),
                typing: change,
            });
        }
    }

    pub fn typing(&self, chat_id: &str) -> Typing {
        self.typing.get(chat_id, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Chat, ChatStatus, Message, Sender, Visitor};

    fn hub() -> Hub {
        Hub::new(CancellationToken::new(), 6)
    }

    fn published(prev_seq: i64, seq: i64) -> Published {
        let visitor = Visitor {
            id: "v".into(),
            name: None,
            email: None,
            page_url: None,
            created_at: String::new(),
            context: None,
            external_id: None,
        };
        let message = Message {
            id: format!("m{seq}"),
            seq,
            chat_id: "c1".into(),
            sender: Sender::Visitor,
            author: None,
            body: "hi".into(),
            client_id: None,
            event: None,
            attachment: None,
            private: false,
            created_at: String::new(),
        };
        let chat = Chat {
            id: "c1".into(),
            status: ChatStatus::Open,
            visitor,
            assignee: None,
            created_at: String::new(),
            last_seq: seq,
            last_message_at: None,
            last_message: Some(message.clone()),
            unread: 1,
            unread_by_visitor: 0,
            labels: Vec::new(),
            mentioned: false,
            rating: None,
            read: Default::default(),
        };
        Published {
            prev_seq,
            message,
            chat,
            state_version: 0,
        }
    }

    /// Parks a chat poll whose first read finds nothing, on a task of its own.
    fn park_empty(hub: &Hub, wait: Duration) -> tokio::task::JoinHandle<Woken> {
        let hub = hub.clone();
        tokio::spawn(async move {
            let slot = hub.claim_slot([9; 32]);
            let watch = Watch::Chat {
                chat_id: "c1",
                after: 0,
            };
            let read = || async { Ok::<Option<()>, ()>(None) };
            match hub.park(watch, &slot, wait, read).await {
                Ok(Parked::Woken(woken)) => woken,
                _ => panic!("the read found nothing, so the poll waits"),
            }
        })
    }

    #[tokio::test]
    async fn a_change_committed_during_the_read_still_wakes_the_poll() {
        let hub = hub();
        let slot = hub.claim_slot([1; 32]);
        let watch = Watch::Chat {
            chat_id: "c1",
            after: 0,
        };
        // The "commit" lands while the poller reads, i.e. after its registration.
        let read = || async {
            hub.message_added("c1", 1, None);
            Ok::<Option<()>, ()>(None)
        };
        let parked = hub.park(watch, &slot, Duration::from_secs(5), read).await;
        assert!(matches!(parked, Ok(Parked::Woken(Woken::Change))));
    }

    #[tokio::test]
    async fn a_poll_reports_timeout_shutdown_and_revocation() {
        let shutdown = CancellationToken::new();
        let hub = Hub::new(shutdown.clone(), 6);
        let timed_out = park_empty(&hub, Duration::from_millis(20)).await.unwrap();
        assert_eq!(timed_out, Woken::Timeout);

        let waiting = park_empty(&hub, Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
        hub.revoke(&[[9; 32]]);
        assert_eq!(waiting.await.unwrap(), Woken::Revoked);

        let waiting = park_empty(&hub, Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
        shutdown.cancel();
        assert_eq!(waiting.await.unwrap(), Woken::Shutdown);
    }

    #[tokio::test]
    async fn a_handed_over_message_answers_only_the_poller_right_before_it() {
        let hub = hub();
        let _poller = hub.wakeups.subscribe("c1", 4);
        assert!(hub.has_poller_at("c1", 4) && !hub.has_poller_at("c1", 3));
        hub.message_added("c1", 7, Some(published(4, 7)));
        assert!(hub.handed_over("c1", 4).is_some());
        assert!(hub.handed_over("c1", 3).is_none(), "it would miss seq 4");
        assert!(hub.handed_over("c1", 7).is_none());
        // A late announcement of an older message changes nothing.
        hub.message_added("c1", 6, Some(published(4, 6)));
        assert_eq!(hub.handed_over("c1", 4).map(|p| p.message.seq), Some(7));
        // A typing change since the copy was taken makes the copy's markers suspect.
        hub.state_changed("c1");
        assert!(hub.handed_over("c1", 4).is_none());
    }

    #[tokio::test]
    async fn a_poller_at_the_head_parks_without_a_read_only_when_nothing_is_new() {
        let hub = hub();
        let poller = hub.wakeups.subscribe("c1", 5);
        assert!(!hub.at_head("c1", 5, None, None), "unknown until a read");
        hub.note_head("c1", 5, "v1");
        assert!(hub.at_head("c1", 5, None, Some("v1")));
        assert!(hub.at_head("c1", 5, None, None), "agents see every chat");
        assert!(!hub.at_head("c1", 4, None, None), "seq 5 is new to it");
        assert!(
            !hub.at_head("c1", 5, None, Some("v2")),
            "not this visitor's chat"
        );
        hub.state_changed("c1");
        assert!(
            !hub.at_head("c1", 5, Some(0), None),
            "its typing state is old"
        );
        // An older read never moves the head back.
        hub.note_head("c1", 3, "v1");
        assert!(!hub.at_head("c1", 4, None, None));
        drop(poller);
        assert_eq!(hub.watched_chats(), 0);
        // The head outlives its pollers, and follows commits announced meanwhile.
        assert!(hub.at_head("c1", 5, None, None));
        hub.message_added("c1", 6, None);
        assert!(!hub.at_head("c1", 5, None, None));
        assert!(hub.at_head("c1", 6, None, None));
    }

    #[tokio::test]
    async fn a_parked_poller_gets_the_message_its_writer_handed_over() {
        let hub = hub();
        let parked = {
            let hub = hub.clone();
            tokio::spawn(async move {
                let slot = hub.claim_slot([3; 32]);
                let watch = Watch::Chat {
                    chat_id: "c1",
                    after: 4,
                };
                let read = || async { Ok::<Option<()>, ()>(None) };
                match hub.park(watch, &slot, Duration::from_secs(5), read).await {
                    Ok(Parked::HandedOver(published)) => published.message.seq,
                    Ok(Parked::Woken(woken)) => panic!("woken by {woken:?} without the copy"),
                    _ => panic!("the read found nothing"),
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(hub.has_poller_at("c1", 4));
        hub.message_added("c1", 7, Some(published(4, 7)));
        assert_eq!(parked.await.unwrap(), 7);
    }

    #[tokio::test]
    async fn nothing_is_kept_for_chats_without_pollers() {
        let hub = hub();
        hub.message_added("c1", 7, Some(published(4, 7)));
        assert!(!hub.has_poller_at("c1", 4));
        assert!(hub.handed_over("c1", 4).is_none());
    }

    #[tokio::test]
    async fn entries_are_removed_when_the_last_poller_leaves() {
        let hub = hub();
        let a = hub.wakeups.subscribe("c1", 0);
        let b = hub.wakeups.subscribe("c1", 3);
        assert_eq!(hub.watched_chats(), 1);
        drop(a);
        assert_eq!(hub.watched_chats(), 1);
        drop(b);
        assert_eq!(hub.watched_chats(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_typing_state_lapses_by_itself_and_wakes_the_chat() {
        let hub = hub();
        hub.start();
        hub.set_typing("c1", false, true);
        let before = hub.state_version("c1");
        assert!(hub.typing("c1").visitor);
        tokio::time::sleep(typing::TYPING_TTL + Duration::from_millis(50)).await;
        assert!(!hub.typing("c1").visitor);
        assert!(
            hub.state_version("c1") > before,
            "pollers learn of the lapse"
        );
    }

    #[tokio::test]
    async fn state_versions_grow_with_each_change() {
        let hub = hub();
        assert_eq!(hub.state_version("c1"), 0);
        hub.set_typing("c1", true, true);
        let first = hub.state_version("c1");
        hub.state_changed("c1");
        assert!(hub.state_version("c1") > first);
    }
}
