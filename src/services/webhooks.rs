//! Outgoing webhooks: validated settings, enqueueing inside write transactions, HMAC
//! signing, and the delivery worker.
//!
//! Guarantees, and what gives them:
//! - an event is queued **iff** its change committed: [`Webhooks::enqueue`] runs inside the
//!   same writer job as the change, so both commit or roll back together;
//! - each (webhook, chat) pair's events arrive **in order**: the worker only ever sends the
//!   head of that queue (see `store::webhooks::heads`) and the next one only once the head
//!   is delivered or given up;
//! - nothing is lost over downtime on either side: the queue is in the database; a receiver
//!   that fails is retried with capped exponential backoff for [`GIVE_UP_AFTER`];
//! - on PostgreSQL every instance runs a worker: a worker first claims the heads it sends
//!   (see `store::webhooks::claim_heads`), so no two send the same head at once;
//! - delivery is **at least once**: a send cut off by a shutdown is sent again after the
//!   restart, with the same `X-Parley-Delivery` id for the receiver to drop duplicates.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::{json, Map, Value};
use sha2::Sha256;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use tokio_util::sync::CancellationToken;

use crate::domain::{self, Caller, Chat, DomainError, Message};
use crate::metrics;
use crate::services::outbound_guard;
use crate::services::retry::{describe_failure, millis, now_ms, retry_at, until};
use crate::store::webhooks::{self as queue, Head, NewDelivery, Webhook};
use crate::store::{Backend, Db, Store};

/// The events a webhook can subscribe to.
pub const EVENTS: [&str; 4] = [
    "message.created",
    "chat.created",
    "chat.closed",
    "visitor.deleted",
];
/// Longest accepted webhook URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest accepted caller-chosen secret, in bytes.
pub const MAX_SECRET_BYTES: usize = 256;
/// A receiver that has not answered by then counts as failed (and is retried).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// A delivery still failing this long after it was enqueued is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(3 * 24 * 60 * 60);
/// Sends in flight at once (each to a different queue).
const MAX_IN_FLIGHT: usize = 16;
/// With nothing due, the worker still looks again this often (a safety net, not the trigger).
const IDLE_RECHECK: Duration = Duration::from_secs(60);
/// Finished deliveries are kept this long (for support), then pruned.
const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);
/// How long a PostgreSQL worker's claim on a head lasts: well past a send ([`SEND_TIMEOUT`])
/// and the write of its outcome. A worker that dies mid-send delays the head this long.
const CLAIM_LEASE: Duration = Duration::from_secs(120);

/// A webhook's settings as an admin asked for them, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
}

impl NewWebhook {
    /// `url`: http(s) with a host, at most [`MAX_URL_BYTES`]; `events`: non-empty, each one of
    /// [`EVENTS`] (duplicates dropped); `secret`: 1–256 bytes, generated when absent.
    /// Unless `allow_private`, a URL naming a loopback, link-local or private address (in
    /// any spelling) is refused; names are checked again, resolved, at each delivery.
    pub fn parse(
        url: String,
        events: Vec<String>,
        secret: Option<String>,
        allow_private: bool,
    ) -> Result<Self, DomainError> {
        if url.len() > MAX_URL_BYTES {
            return Err(DomainError::invalid(format!(
                "url must be at most {MAX_URL_BYTES} bytes"
            )));
        }
        let parsed = reqwest::Url::parse(&url)
            .map_err(|_| DomainError::invalid("url must be an absolute http or https URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(DomainError::invalid(
                "url must be an absolute http or https URL",
            ));
        }
        outbound_guard::check_parsed(&parsed, allow_private)
            .map_err(|e| DomainError::invalid(format!("url is not allowed: {e}")))?;
        if events.is_empty() {
            return Err(DomainError::invalid("events must name at least one event"));
        }
        let mut unique: Vec<String> = Vec::with_capacity(events.len());
        for event in events {
            if !EVENTS.contains(&event.as_str()) {
                return Err(DomainError::invalid(format!(
                    "unknown event; known events are {}",
                    EVENTS.join(", ")
                )));
            }
            if !unique.contains(&event) {
                unique.push(event);
            }
        }
        let secret = match secret {
            None => new_secret(),
            Some(s) if s.is_empty() || s.len() > MAX_SECRET_BYTES => {
                return Err(DomainError::invalid(format!(
                    "secret must be 1-{MAX_SECRET_BYTES} bytes"
                )))
            }
            Some(s) => s,
        };
        Ok(Self {
            // Kept as the admin wrote it: it parsed, so it is what reqwest will call.
            url,
            events: unique,
            secret,
        })
    }
}

/// 32 random bytes, hex-encoded.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`, the `X-Parley-Signature` header. The key is
/// the secret's UTF-8 bytes, exactly as it was shown at creation.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Shared handle: enqueues events and wakes the worker. Cheap to clone.
#[derive(Clone, Default)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// False only when no active webhook exists: then enqueueing costs not even a query,
    /// which keeps the benchmarked send path as it was for servers without webhooks.
    active: AtomicBool,
    /// The database is shared with other instances (PostgreSQL), which may register a
    /// webhook this one never hears of: then every enqueue looks, whatever `active` says.
    shared: AtomicBool,
    /// `notify_one` keeps a permit, so a wake given while the worker is busy is not lost.
    wake: Notify,
}

impl Webhooks {
    /// The handle for a database, knowing whether it has any active webhook.
    pub async fn load(store: &Store) -> Result<Self, DomainError> {
        let count = store.read(|db| Ok(queue::count_active(db)?)).await?;
        let webhooks = Self::default();
        webhooks.set_active(count > 0);
        webhooks
            .inner
            .shared
            .store(store.backend() == Backend::Postgres, Ordering::SeqCst);
        Ok(webhooks)
    }

    /// A handle that looks for subscribers at every enqueue, for a process that does not
    /// track them (the CLI). Running servers' workers send what it queues.
    pub fn always_looking() -> Self {
        let webhooks = Self::default();
        webhooks.inner.shared.store(true, Ordering::SeqCst);
        webhooks
    }

    /// Whether an enqueue must look for subscribers.
    fn may_have_subscribers(&self) -> bool {
        self.inner.active.load(Ordering::SeqCst) || self.inner.shared.load(Ordering::SeqCst)
    }

    /// Call from inside the writer job that creates or deletes a webhook: the writer runs
    /// jobs one by one, so every later job sees the new value.
    pub fn set_active(&self, active: bool) {
        self.inner.active.store(active, Ordering::SeqCst);
    }

    /// Queues `event` for every active webhook subscribed to it; call inside the write job
    /// of the change, then [`Webhooks::wake`] after it committed. The payload is
    /// `{event, id, created_at, ...fields}`, stored exactly as it will be sent and signed.
    pub fn enqueue(
        &self,
        db: &Db,
        event: &str,
        chat_id: &str,
        fields: impl FnOnce() -> Map<String, Value>,
    ) -> Result<usize, DomainError> {
        let subscribers = self.subscribers(db, event)?;
        self.enqueue_to(db, &subscribers, event, chat_id, fields)
    }

    /// The ids of the active webhooks subscribed to `event` (none, without a query, when no
    /// webhook is active), for [`Webhooks::enqueue_to`] in the same job.
    pub fn subscribers(&self, db: &Db, event: &str) -> Result<Subscribers, DomainError> {
        if !self.may_have_subscribers() {
            return Ok(Subscribers(Vec::new()));
        }
        Ok(Subscribers(queue::subscribers(db, event)?))
    }

    /// [`Webhooks::enqueue`] to subscribers looked up earlier in the same job.
    pub fn enqueue_to(
        &self,
        db: &Db,
        subscribers: &Subscribers,
        event: &str,
        chat_id: &str,
        fields: impl FnOnce() -> Map<String, Value>,
    ) -> Result<usize, DomainError> {
        let subscribers = &subscribers.0;
        if subscribers.is_empty() {
            return Ok(0);
        }
        let fields = fields();
        let created_at = domain::now();
        let enqueued_at = now_ms();
        for webhook_id in subscribers {
            let id = domain::new_id();
            let mut body = Map::with_capacity(fields.len() + 3);
            body.insert("event".into(), json!(event));
            body.insert("id".into(), json!(id));
            body.insert("created_at".into(), json!(created_at));
            body.extend(fields.clone());
            let payload = serde_json::to_string(&body)?;
            queue::insert_delivery(
                db,
                &NewDelivery {
                    id: &id,
                    webhook_id,
                    event,
                    chat_id,
                    payload: &payload,
                    enqueued_at,
                },
            )?;
        }
        Ok(subscribers.len())
    }

    /// `message.created` for a visitor's or agent's message: `{…, chat_id, message}`.
    pub fn message_created(&self, db: &Db, message: &Message) -> Result<(), DomainError> {
        let subscribers = self.subscribers(db, "message.created")?;
        self.message_created_to(db, &subscribers, message)
    }

    /// [`Webhooks::message_created`] to subscribers of `message.created` looked up earlier.
    pub fn message_created_to(
        &self,
        db: &Db,
        subscribers: &Subscribers,
        message: &Message,
    ) -> Result<(), DomainError> {
        self.enqueue_to(db, subscribers, "message.created", &message.chat_id, || {
            fields([
                ("chat_id", json!(message.chat_id)),
                ("message", json!(message)),
            ])
        })
        .map(drop)
    }

    /// `chat.created`: `{…, chat_id, chat}`.
    pub fn chat_created(&self, db: &Db, chat: &Chat) -> Result<(), DomainError> {
        self.enqueue(db, "chat.created", &chat.id, || {
            fields([("chat_id", json!(chat.id)), ("chat", json!(chat))])
        })
        .map(drop)
    }

    /// `chat.closed`, with the system message that records it: `{…, chat_id, message}`.
    pub fn chat_closed(&self, db: &Db, message: &Message) -> Result<(), DomainError> {
        self.enqueue(db, "chat.closed", &message.chat_id, || {
            fields([
                ("chat_id", json!(message.chat_id)),
                ("message", json!(message)),
            ])
        })
        .map(drop)
    }

    /// `visitor.deleted`, after an erasure: `{…, visitor_id, chat_ids}` and nothing personal.
    /// Its queue is keyed by the visitor's id (it concerns no single chat).
    pub fn visitor_deleted(
        &self,
        db: &Db,
        visitor_id: &str,
        chat_ids: &[String],
    ) -> Result<(), DomainError> {
        self.enqueue(db, "visitor.deleted", visitor_id, || {
            fields([
                ("visitor_id", json!(visitor_id)),
                ("chat_ids", json!(chat_ids)),
            ])
        })
        .map(drop)
    }

    /// Tells the worker that deliveries may be waiting. Call after the commit, never before:
    /// the worker must be able to read what woke it.
    pub fn wake(&self) {
        if self.may_have_subscribers() {
            self.inner.wake.notify_one();
        }
    }
}

/// The webhooks an event goes to, from [`Webhooks::subscribers`].
pub struct Subscribers(Vec<String>);

/// Registers a webhook (admins only); returns it with its secret, which is shown only now.
pub async fn register(
    store: &Store,
    webhooks: &Webhooks,
    caller: &Caller,
    new: NewWebhook,
) -> Result<(Webhook, String), DomainError> {
    caller.require_admin()?;
    let webhook = Webhook {
        id: domain::new_id(),
        url: new.url,
        events: new.events,
        created_at: domain::now(),
        disabled: false,
    };
    let secret = new.secret;
    let hooks = webhooks.clone();
    store
        .write(move |db| {
            queue::insert(db, &webhook, &secret)?;
            // In the writer, so every change committed after this one is reported.
            hooks.set_active(true);
            Ok((webhook, secret))
        })
        .await
}

/// Every webhook, without secrets (admins only).
pub async fn list(store: &Store, caller: &Caller) -> Result<Vec<Webhook>, DomainError> {
    caller.require_admin()?;
    store.read(|db| Ok(queue::list(db)?)).await
}

/// Deletes a webhook and its undelivered events (admins only).
pub async fn remove(
    store: &Store,
    webhooks: &Webhooks,
    caller: &Caller,
    id: String,
) -> Result<(), DomainError> {
    caller.require_admin()?;
    let hooks = webhooks.clone();
    store
        .write(move |db| {
            if !queue::delete(db, &id)? {
                return Err(DomainError::NotFound);
            }
            hooks.set_active(queue::count_active(db)? > 0);
            Ok(())
        })
        .await
}

fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Starts the delivery worker on the current runtime; it stops with `shutdown`.
pub fn start_worker(
    store: Store,
    webhooks: Webhooks,
    shutdown: CancellationToken,
    retry_base: Duration,
    allow_private: bool,
) -> Result<tokio::task::JoinHandle<()>, Box<dyn std::error::Error>> {
    // Resolved addresses are checked at each connection (DNS may change after registration)
    // and redirects are not followed: a receiver that redirects is misconfigured, and
    // following could re-post inside the network.
    let client = outbound_guard::client_builder(allow_private)
        .timeout(SEND_TIMEOUT)
        .connect_timeout(SEND_TIMEOUT)
        .user_agent(concat!("Parley-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let worker = Arc::new(Worker {
        store,
        shutdown,
        webhooks,
        client,
        retry_base: retry_base.max(Duration::from_millis(1)),
        allow_private,
    });
    Ok(tokio::spawn(worker.run()))
}

struct Worker {
    store: Store,
    shutdown: CancellationToken,
    webhooks: Webhooks,
    client: reqwest::Client,
    retry_base: Duration,
    allow_private: bool,
}

impl Worker {
    /// The loop: hand out due queue heads (never holding a connection across an await),
    /// then sleep until woken by an enqueue, a finished send, the next retry, or shutdown.
    async fn run(self: Arc<Self>) {
        let mut sends = JoinSet::new();
        // Task id → queue-head seq, so a finished (or panicked) send frees its queue.
        let mut in_flight: HashMap<tokio::task::Id, i64> = HashMap::new();
        let mut last_prune: Option<std::time::Instant> = None;
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(std::time::Instant::now());
                self.prune().await;
            }
            let busy: HashSet<i64> = in_flight.values().copied().collect();
            let free = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
            let (due, sleep) = match self.store.backend() {
                Backend::Sqlite => self.due_heads(&busy, free).await,
                Backend::Postgres => self.claim_due_heads(free).await,
            };
            for head in due {
                let seq = head.seq;
                let task = sends.spawn(self.clone().deliver(head));
                in_flight.insert(task.id(), seq);
            }
            tokio::select! {
                _ = self.webhooks.inner.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                Some(done) = sends.join_next_with_id(), if !sends.is_empty() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(e) => {
                            log::error!("a webhook send task failed: {e}");
                            e.id()
                        }
                    };
                    in_flight.remove(&id);
                }
                _ = self.shutdown.cancelled() => break,
            }
        }
        // Sends cut off here stay pending and go out again after the restart.
        sends.shutdown().await;
        log::debug!("webhook worker stopped");
    }

    /// SQLite: the due queue heads not already in flight, at most `free`, and how long to
    /// sleep when nothing else wakes the worker. This worker is the database's only one.
    async fn due_heads(&self, busy: &HashSet<i64>, free: usize) -> (Vec<Head>, Duration) {
        let limit = MAX_IN_FLIGHT + busy.len();
        let heads = match self
            .store
            .read(move |db| Ok(queue::heads(db, limit)?))
            .await
        {
            Ok(heads) => heads,
            Err(e) => {
                log::error!("webhook worker could not read its queue: {e}");
                Vec::new()
            }
        };
        let now = now_ms();
        let mut sleep = IDLE_RECHECK;
        let mut due = Vec::new();
        for head in heads {
            if busy.contains(&head.seq) {
                continue;
            }
            if head.next_attempt_at > now {
                // Heads come soonest first: this is the next retry to wake up for.
                sleep = sleep.min(until(head.next_attempt_at, now));
                break;
            }
            if due.len() >= free {
                break;
            }
            due.push(head);
        }
        (due, sleep)
    }

    /// PostgreSQL: claims up to `free` due queue heads (other instances' workers share the
    /// queue, see `queue::claim_heads`), and how long to sleep when nothing else wakes the
    /// worker. Heads in flight here are leased, so they are not claimed again.
    async fn claim_due_heads(&self, free: usize) -> (Vec<Head>, Duration) {
        if free == 0 {
            // A finished send wakes the worker.
            return (Vec::new(), IDLE_RECHECK);
        }
        let now = now_ms();
        let lease_until = now.saturating_add(millis(CLAIM_LEASE));
        let claimed = self
            .store
            .write(move |db| {
                let heads = queue::claim_heads(db, now, lease_until, free)?;
                Ok((heads, queue::next_attempt_after(db, now)?))
            })
            .await;
        match claimed {
            Ok((heads, next)) => {
                let sleep = next.map_or(IDLE_RECHECK, |at| IDLE_RECHECK.min(until(at, now)));
                (heads, sleep)
            }
            Err(e) => {
                log::error!("webhook worker could not claim from its queue: {e}");
                (Vec::new(), IDLE_RECHECK)
            }
        }
    }

    /// Sends one delivery and records the outcome.
    async fn deliver(self: Arc<Self>, head: Head) {
        let signature = sign(&head.secret, head.payload.as_bytes());
        // The client's resolver never sees an IP literal: check the URL itself each time.
        if let Err(refused) = outbound_guard::check_url(&head.url, self.allow_private) {
            self.record(&head, Err(format!("target refused: {refused}")))
                .await;
            return;
        }
        let sent = self
            .client
            .post(&head.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Parley-Event", &head.event)
            .header("X-Parley-Delivery", &head.id)
            .header("X-Parley-Signature", signature)
            .body(head.payload.clone())
            .send()
            .await;
        let outcome = match sent {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("HTTP {}", response.status().as_u16())),
            Err(e) => Err(describe_failure(&e.without_url())),
        };
        self.record(&head, outcome).await;
    }

    /// Records a send's outcome: delivered, retried with back-off, or given up.
    async fn record(&self, head: &Head, outcome: Result<(), String>) {
        let attempts = head.attempts + 1;
        let now = now_ms();
        let seq = head.seq;
        let recorded = match outcome {
            Ok(()) => {
                metrics::webhook_delivery("delivered");
                self.store
                    .write(move |db| Ok(queue::mark_delivered(db, seq, attempts, now)?))
                    .await
            }
            Err(error) if now.saturating_sub(head.enqueued_at) >= millis(GIVE_UP_AFTER) => {
                metrics::webhook_delivery("failed");
                log::warn!(
                    "webhook {} delivery {} given up after {attempts} attempts: {error}",
                    head.webhook_id,
                    head.id
                );
                self.store
                    .write(move |db| Ok(queue::mark_failed(db, seq, attempts, now, &error)?))
                    .await
            }
            Err(error) => {
                metrics::webhook_delivery("retry");
                let next = retry_at(self.retry_base, attempts, now);
                log::debug!(
                    "webhook {} delivery {} attempt {attempts} failed: {error}",
                    head.webhook_id,
                    head.id
                );
                self.store
                    .write(move |db| Ok(queue::mark_retry(db, seq, attempts, next, &error)?))
                    .await
            }
        };
        if let Err(e) = recorded {
            // It stays pending as it was, so it is sent again: at least once, never lost.
            log::error!("could not record webhook delivery {}: {e}", head.id);
        }
    }

    /// Drops finished deliveries older than [`KEEP_FINISHED`], a bounded chunk at a time.
    async fn prune(&self) {
        let before = now_ms() - millis(KEEP_FINISHED);
        match self
            .store
            .write(move |db| Ok(queue::prune(db, before, 10_000)?))
            .await
        {
            Ok(0) => {}
            Ok(n) => log::info!("pruned {n} finished webhook deliveries"),
            Err(e) => log::warn!("could not prune webhook deliveries: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::retry::MAX_BACKOFF;

    fn events(names: &[&str]) -> Vec<String> {
        names.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn a_webhook_needs_an_http_url_and_known_events() {
        let ok = NewWebhook::parse(
            "https://example.com/hook?x=1".into(),
            events(&["chat.created", "chat.created", "message.created"]),
            Some("s3cret".into()),
            false,
        )
        .unwrap();
        assert_eq!(ok.events, ["chat.created", "message.created"]);
        assert_eq!(ok.secret, "s3cret");
        let bad = [
            ("ftp://example.com/", events(&["chat.created"])),
            ("not a url", events(&["chat.created"])),
            ("/relative", events(&["chat.created"])),
            ("https://example.com/", events(&[])),
            ("https://example.com/", events(&["chat.deleted"])),
        ];
        for (url, events) in bad {
            let error = NewWebhook::parse(url.into(), events, None, false).unwrap_err();
            assert!(matches!(error, DomainError::Invalid(_)), "{url}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(NewWebhook::parse(long, vec!["chat.created".into()], None, false).is_err());
        let empty_secret = NewWebhook::parse(
            "http://127.0.0.1:1/".into(),
            vec!["chat.created".into()],
            Some(String::new()),
            true,
        );
        assert!(empty_secret.is_err());
    }

    #[test]
    fn webhooks_into_the_local_network_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://127.1/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.5/",
            "http://localhost/",
        ] {
            let refused = NewWebhook::parse(url.into(), events(&["chat.created"]), None, false);
            assert!(matches!(refused, Err(DomainError::Invalid(_))), "{url}");
        }
        let allowed = NewWebhook::parse(
            "http://127.0.0.1:8080/hook".into(),
            events(&["chat.created"]),
            None,
            true,
        );
        assert!(allowed.is_ok());
    }

    #[test]
    fn a_generated_secret_is_32_random_bytes_in_hex() {
        let a = new_secret();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_secret());
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let signature = sign("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            signature,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn three_days_of_capped_retries_is_hundreds_of_attempts() {
        // The give-up window is long enough for a receiver down over a weekend.
        let attempts = GIVE_UP_AFTER.as_secs() / MAX_BACKOFF.as_secs();
        assert!(attempts >= 400);
    }
}
