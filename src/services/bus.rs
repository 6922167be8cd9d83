//! Keeps several instances on one PostgreSQL database in step: what one instance changes,
//! the pollers held by the others learn of at once.
//!
//! New messages are announced with `NOTIFY` inside the writing transaction (so the news goes
//! out only if it commits); typing, state versions and revocations are sent by one task, in
//! the order they happened. Each instance hears the others on its own `LISTEN` connection
//! and wakes its pollers, who read the database again. `NOTIFY` is lost while a listener is
//! reconnecting, so every reconnect wakes every local poller, and a sweep every few
//! seconds re-announces chats whose last seq moved without a word.
//!
//! On SQLite the one server is the only instance, and all of this does nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::domain::DomainError;
use crate::poll::signal::MAX_REVOKED_PER_SIGNAL;
use crate::poll::{Hub, Signal};
use crate::store::{chats, Backend, Db, Store};

/// Signals waiting to be sent; beyond this they are dropped (the sweep and the session
/// epoch still carry the news, seconds later).
const OUTBOX: usize = 10_000;

/// Most signals sent in one round trip.
const BATCH: usize = 256;

/// How often chats are checked for messages whose `NOTIFY` was lost.
const SWEEP_EVERY: Duration = Duration::from_secs(3);

/// What a remote revocation must reach beyond the hub: the session cache.
pub type OnRevoked = Arc<dyn Fn(&[[u8; 32]]) + Send + Sync>;

/// This instance's end of the bus. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// Distinguishes this instance's own notifications, which it has already applied.
    origin: u64,
    outbox: mpsc::Sender<Signal>,
}

impl Bus {
    /// A bus for `store`; on PostgreSQL, starts the task that sends this instance's signals.
    pub fn new(store: &Store) -> Self {
        if store.backend() == Backend::Sqlite {
            return Self { inner: None };
        }
        let (outbox, queue) = mpsc::channel(OUTBOX);
        let origin = rand::random::<u64>();
        tokio::spawn(send_signals(store.clone(), origin, queue));
        Self {
            inner: Some(Arc::new(Inner { origin, outbox })),
        }
    }

    /// Announces a message to the other instances when `db`'s transaction commits.
    pub fn message_committed(&self, db: &Db, chat_id: &str, seq: i64) -> Result<(), DomainError> {
        if let Some(inner) = &self.inner {
            let signal = Signal::Message {
                chat_id: chat_id.to_string(),
                seq,
            };
            db.notify(&signal.encode(inner.origin))?;
        }
        Ok(())
    }

    /// Sends a signal to the other instances, after the ones sent before it.
    pub fn publish(&self, signal: Signal) {
        if let Some(inner) = &self.inner {
            if inner.outbox.try_send(signal).is_err() {
                log::warn!("bus outbox full: a signal to other instances was dropped");
            }
        }
    }

    /// Tells the other instances that these tokens were revoked.
    pub fn revoked(&self, tokens: &[[u8; 32]]) {
        for chunk in tokens.chunks(MAX_REVOKED_PER_SIGNAL) {
            self.publish(Signal::Revoked {
                tokens: chunk.to_vec(),
            });
        }
    }

    /// Connects `hub` to the other instances: their signals wake its pollers, its own typing
    /// and state changes go to them. Runs until `shutdown`.
    pub fn start(
        &self,
        store: &Store,
        hub: &Hub,
        on_revoked: OnRevoked,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let bus = self.clone();
        hub.set_relay(Arc::new(move |signal| bus.publish(signal)));
        let (origin, listening_hub) = (inner.origin, hub.clone());
        store.listen(
            move |payload| match payload {
                None => listening_hub.resync(),
                Some(text) => match Signal::decode(text) {
                    Some((from, _)) if from == origin => {}
                    Some((_, signal)) => {
                        if let Signal::Revoked { tokens } = &signal {
                            on_revoked(tokens);
                        }
                        listening_hub.apply_remote(&signal);
                    }
                    None => log::debug!("ignored a notification that is not Parley's"),
                },
            },
            shutdown.clone(),
        )?;
        tokio::spawn(sweep(store.clone(), hub.clone(), shutdown));
        Ok(())
    }
}

/// Tells every running instance, when `db`'s transaction commits, that these tokens were
/// revoked, from a process that has no bus of its own (the CLI): their held polls end at
/// once. (The session epoch, moved in the same transaction, empties the session caches.)
pub fn revoked_in(db: &Db, tokens: &[[u8; 32]]) -> Result<(), DomainError> {
    let origin = rand::random::<u64>();
    for chunk in tokens.chunks(MAX_REVOKED_PER_SIGNAL) {
        let signal = Signal::Revoked {
            tokens: chunk.to_vec(),
        };
        db.notify(&signal.encode(origin))?;
    }
    Ok(())
}

/// Sends queued signals in order, many per round trip.
async fn send_signals(store: Store, origin: u64, mut queue: mpsc::Receiver<Signal>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let payloads = batch.drain(..).map(|s| s.encode(origin)).collect();
        if let Err(e) = store.notify(payloads).await {
            log::warn!("could not signal other instances: {e}");
        }
    }
}

/// The safety net under lost notifications: every few seconds, the chats whose last seq
/// passed the highest one seen are announced to this instance's pollers.
async fn sweep(store: Store, hub: Hub, shutdown: CancellationToken) {
    let mut seen = None;
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let since = seen;
        let changed = store
            .read(move |db| Ok(chats::moved_since(db, since.unwrap_or(i64::MAX))?))
            .await;
        match changed {
            Ok((highest, chats)) => {
                for (chat_id, seq) in chats {
                    hub.apply_remote(&Signal::Message { chat_id, seq });
                }
                seen = Some(seen.map_or(highest, |s: i64| s.max(highest)));
            }
            Err(e) => log::warn!("bus sweep failed: {e}"),
        }
    }
}
