//! The mail worker: turns due schedule rows into outbox mail, and sends the outbox over
//! SMTP with retries. One loop; never holds a database connection across an await.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Mail, MailSettings};
use crate::metrics;
use crate::services::retry::{describe_failure, millis, now_ms, retry_at, until};
use crate::store::mail::{self as outbox, Pending};
use crate::store::{Backend, Store};

/// An SMTP exchange that takes longer counts as failed (and is retried).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a claimed mail is leased to its sender: well past [`SEND_TIMEOUT`] and the
/// write of the outcome. A sender that dies mid-send delays the mail this long (on
/// PostgreSQL; on SQLite a restart releases every lease at once).
const CLAIM_LEASE: Duration = Duration::from_secs(120);
/// A mail still failing this long after it was queued is given up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(3 * 24 * 60 * 60);
/// Sent and failed mail is kept this long (for the admins' list), then pruned.
const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);
/// With nothing due, the worker still looks again this often (other instances may have
/// scheduled work it was not woken for).
const IDLE_RECHECK: Duration = Duration::from_secs(30);
const MAX_IN_FLIGHT: usize = 8;

/// Starts the worker on the current runtime if mail is on; it stops with `shutdown`.
pub fn start_worker(
    store: Store,
    mail: Mail,
    shutdown: CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, Box<dyn std::error::Error>> {
    let Some(settings) = mail.settings().cloned() else {
        return Ok(None);
    };
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url)?
        .timeout(Some(SEND_TIMEOUT))
        .build();
    let domain = settings.from.email.domain().to_string();
    let worker = Arc::new(Worker {
        store,
        mail,
        settings,
        transport,
        domain,
        shutdown,
    });
    Ok(Some(tokio::spawn(worker.run())))
}

struct Worker {
    store: Store,
    mail: Mail,
    settings: MailSettings,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Of the sender's address: the right side of each Message-ID.
    domain: String,
    shutdown: CancellationToken,
}

/// What one send came to.
enum Outcome {
    Sent,
    /// Worth trying again (the server is down, busy, or said 4xx).
    Retry(String),
    /// Never going to work (a bad address, a 5xx refusal).
    Refused(String),
}

impl Worker {
    async fn run(self: Arc<Self>) {
        if self.store.backend() == Backend::Sqlite {
            // The only instance: leases left by a crash are nobody's now.
            let now = now_ms();
            if let Err(e) = self
                .store
                .write(move |db| Ok(outbox::release_leases(db, now)?))
                .await
            {
                log::error!("mail worker could not release old leases: {e}");
            }
        }
        let mut sends = JoinSet::new();
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
            let next_due = self.settle_due().await;
            let free = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
            let (claimed, next_attempt) = self.claim(free).await;
            for mail in claimed {
                let seq = mail.seq;
                let task = sends.spawn(self.clone().deliver(mail));
                in_flight.insert(task.id(), seq);
            }
            let now = now_ms();
            let mut sleep = IDLE_RECHECK;
            for at in [next_due, next_attempt].into_iter().flatten() {
                sleep = sleep.min(until(at, now));
            }
            if free == 0 {
                // A finished send wakes the loop.
                sleep = IDLE_RECHECK;
            }
            tokio::select! {
                _ = self.mail.inner.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                Some(done) = sends.join_next_with_id(), if !sends.is_empty() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(e) => {
                            log::error!("a mail send task failed: {e}");
                            e.id()
                        }
                    };
                    in_flight.remove(&id);
                }
                _ = self.shutdown.cancelled() => break,
            }
        }
        // A send cut off here keeps its lease and goes out after the restart.
        sends.shutdown().await;
        log::debug!("mail worker stopped");
    }

    /// Turns due schedule rows into mail; returns when the next one is due.
    async fn settle_due(&self) -> Option<i64> {
        let mail = self.mail.clone();
        let now = now_ms();
        match self.store.write(move |db| mail.settle_due(db, now)).await {
            Ok((_, next)) => next,
            Err(e) => {
                log::error!("mail worker could not read its schedule: {e}");
                None
            }
        }
    }

    /// Claims up to `free` due mails; returns them and when the next one is due.
    async fn claim(&self, free: usize) -> (Vec<Pending>, Option<i64>) {
        let now = now_ms();
        let lease_until = now.saturating_add(millis(CLAIM_LEASE));
        let claimed = self
            .store
            .write(move |db| {
                let claimed = if free == 0 {
                    Vec::new()
                } else {
                    outbox::claim(db, now, lease_until, free)?
                };
                Ok((claimed, outbox::next_attempt(db)?))
            })
            .await;
        match claimed {
            Ok(claimed) => claimed,
            Err(e) => {
                log::error!("mail worker could not claim from the outbox: {e}");
                (Vec::new(), None)
            }
        }
    }

    fn build(&self, mail: &Pending) -> Result<Message, String> {
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|e| format!("bad recipient: {e}"))?;
        let mut builder = Message::builder()
            .message_id(Some(format!("<{}@{}>", mail.id, self.domain)))
            .from(self.settings.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ));
        if let Some(url) = &mail.unsubscribe_url {
            // RFC 8058: a mail client may unsubscribe with one POST to this URL.
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                mail.text_body.clone(),
                mail.html_body.clone(),
            ))
            .map_err(|e| format!("cannot build the mail: {e}"))
    }

    /// Sends one mail and records the outcome.
    async fn deliver(self: Arc<Self>, mail: Pending) {
        let outcome = match self.build(&mail) {
            Err(why) => Outcome::Refused(why),
            Ok(message) => match self.transport.send(message).await {
                Ok(_) => Outcome::Sent,
                Err(e) if e.is_permanent() => Outcome::Refused(describe_failure(&e)),
                Err(e) => Outcome::Retry(describe_failure(&e)),
            },
        };
        self.record(&mail, outcome).await;
    }

    /// Records a send's outcome: sent, retried with back-off, or given up.
    async fn record(&self, mail: &Pending, outcome: Outcome) {
        let attempts = mail.attempts + 1;
        let now = now_ms();
        let seq = mail.seq;
        let outcome = match outcome {
            Outcome::Retry(error)
                if now.saturating_sub(mail.enqueued_at) >= millis(GIVE_UP_AFTER) =>
            {
                Outcome::Refused(error)
            }
            other => other,
        };
        let recorded = match outcome {
            Outcome::Sent => {
                metrics::mail("sent");
                self.store
                    .write(move |db| Ok(outbox::mark_sent(db, seq, attempts, now)?))
                    .await
            }
            Outcome::Refused(error) => {
                metrics::mail("failed");
                log::warn!(
                    "mail {} given up after {attempts} attempts: {error}",
                    mail.id
                );
                self.store
                    .write(move |db| Ok(outbox::mark_failed(db, seq, attempts, now, &error)?))
                    .await
            }
            Outcome::Retry(error) => {
                metrics::mail("retry");
                let next = retry_at(self.settings.retry_base, attempts, now);
                log::debug!("mail {} attempt {attempts} failed: {error}", mail.id);
                self.store
                    .write(move |db| Ok(outbox::mark_retry(db, seq, attempts, next, &error)?))
                    .await
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and the mail goes again: at least once, never lost.
            log::error!("could not record mail {}: {e}", mail.id);
        }
    }

    /// Drops finished mail older than [`KEEP_FINISHED`], a bounded chunk at a time.
    async fn prune(&self) {
        let before = now_ms() - millis(KEEP_FINISHED);
        match self
            .store
            .write(move |db| Ok(outbox::prune(db, before, 10_000)?))
            .await
        {
            Ok(0) => {}
            Ok(n) => log::info!("pruned {n} finished mails"),
            Err(e) => log::warn!("could not prune the mail outbox: {e}"),
        }
    }
}
