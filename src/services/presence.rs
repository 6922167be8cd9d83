//! Agent presence: an agent is present while it is `online` and has made a request within
//! the presence window. Each request is noted in memory; the database hears of it at most
//! every [`Presence::write_every`] per agent, so every instance on one database agrees and
//! a busy agent costs a write every few seconds, not one per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::domain;
use crate::store::{agents, Store};

/// The longest time between two writes of one agent's latest request. With the 60 s window
/// an agent that stops making requests counts as away 45–60 s later.
const MAX_WRITE_EVERY: Duration = Duration::from_secs(15);

/// Notes agents' requests and answers whether any agent is present. Cheap to clone.
#[derive(Clone)]
pub struct Presence {
    store: Store,
    window: Duration,
    written: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Presence {
    pub fn new(store: Store, window: Duration) -> Self {
        Self {
            store,
            window: window.max(Duration::from_secs(1)),
            written: Arc::default(),
        }
    }

    /// A quarter of the window, at most 15 s: the database is never more than that behind.
    fn write_every(&self) -> Duration {
        (self.window / 4).min(MAX_WRITE_EVERY)
    }

    /// Notes a request of the agent; writes it down when the last write is old enough.
    pub fn seen(&self, agent_id: &str) {
        let now = Instant::now();
        {
            let mut written = self
                .written
                .lock()
                .expect("presence lock is never poisoned");
            if written
                .get(agent_id)
                .is_some_and(|at| now.duration_since(*at) < self.write_every())
            {
                return;
            }
            written.insert(agent_id.to_string(), now);
        }
        let (store, id, presence) = (self.store.clone(), agent_id.to_string(), self.clone());
        tokio::spawn(async move {
            let at = domain::now();
            let agent = id.clone();
            let done = store
                .write(move |db| Ok(agents::touch_seen(db, &agent, &at)?))
                .await;
            if let Err(e) = done {
                log::warn!("could not record agent {id}'s latest request: {e}");
                // The next request tries again.
                presence.forget(&id);
            }
        });
    }

    /// Forgets the agent's last write, so its next request writes (after a failure).
    fn forget(&self, agent_id: &str) {
        self.written
            .lock()
            .expect("presence lock is never poisoned")
            .remove(agent_id);
    }

    /// The earliest `last_seen_at` that still counts as present.
    pub fn present_since(&self) -> String {
        domain::timestamp(OffsetDateTime::now_utc() - self.window)
    }
}
