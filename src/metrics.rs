//! Prometheus metrics: one registry and the handles that fill it. The request middleware and
//! the `GET /metrics` endpoint that read it live in `http::request_metrics`.
//!
//! The metrics live in a process-wide [`OnceLock`] rather than in `AppState`: the writer
//! thread, the store and the hub would otherwise each need a handle threaded through their
//! constructors, and a process serves one Parley anyway (as with Prometheus' own default
//! registry). Tests that start several apps in one process therefore compare before/after.
//!
//! Labels are bounded on purpose: routes are the matched *patterns* (`/api/v1/chats/{id}`),
//! never raw paths, and unusual methods collapse to `other`. Nothing here carries a token,
//! a secret or message text.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric Parley exports.
pub struct Metrics {
    registry: Registry,
    held_polls: IntGaugeVec,
    poll_wakeups: IntCounterVec,
    messages: IntCounterVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    db_write_seconds: Histogram,
    db_batch_size: Histogram,
    db_size_bytes: IntGauge,
    webhook_deliveries: IntCounterVec,
    mail: IntCounterVec,
    ratings: IntGaugeVec,
    rating_average: GaugeVec,
}

/// Request latency buckets, in seconds: long polls are held up to 25 s by default.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Write transaction buckets: a group commit is usually one fsync, well under 10 ms.
const WRITE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new_custom(Some("parley".into()), None)?;
        let held_polls = IntGaugeVec::new(
            Opts::new("held_polls", "Long polls waiting right now, by kind"),
            &["kind"],
        )?;
        let poll_wakeups = IntCounterVec::new(
            Opts::new(
                "poll_wakeups_total",
                "Held long polls that ended, by kind and what ended them",
            ),
            &["kind", "reason"],
        )?;
        let messages = IntCounterVec::new(
            Opts::new("messages_total", "Messages stored, by sender kind"),
            &["sender"],
        )?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer a request (long polls included), by route",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["route"],
        )?;
        let db_write_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "db_write_transaction_seconds",
                "Time of one writer transaction, BEGIN to COMMIT",
            )
            .buckets(WRITE_BUCKETS.to_vec()),
        )?;
        let db_batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "db_write_batch_size",
                "Write jobs committed together in one transaction",
            )
            .buckets(BATCH_BUCKETS.to_vec()),
        )?;
        let db_size_bytes = IntGauge::new(
            "db_size_bytes",
            "Size of the database file plus its write-ahead log",
        )?;
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook delivery attempts, by outcome (delivered, retry, failed)",
            ),
            &["outcome"],
        )?;
        let mail = IntCounterVec::new(
            Opts::new(
                "mail_total",
                "Email, by what happened (queued, sent, retry, failed, dropped)",
            ),
            &["outcome"],
        )?;
        // One series per agent: agents are a team's few dozen at most, so the set stays small.
        let ratings = IntGaugeVec::new(
            Opts::new(
                "chat_ratings",
                "Visitors' ratings of closed chats, by the agent the chat was assigned to",
            ),
            &["agent"],
        )?;
        let rating_average = GaugeVec::new(
            Opts::new(
                "chat_rating_average",
                "Average rating (1-5) of closed chats, by the agent the chat was assigned to",
            ),
            &["agent"],
        )?;
        registry.register(Box::new(ratings.clone()))?;
        registry.register(Box::new(rating_average.clone()))?;
        registry.register(Box::new(held_polls.clone()))?;
        registry.register(Box::new(poll_wakeups.clone()))?;
        registry.register(Box::new(messages.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(db_write_seconds.clone()))?;
        registry.register(Box::new(db_batch_size.clone()))?;
        registry.register(Box::new(db_size_bytes.clone()))?;
        registry.register(Box::new(webhook_deliveries.clone()))?;
        registry.register(Box::new(mail.clone()))?;
        Ok(Self {
            registry,
            held_polls,
            poll_wakeups,
            messages,
            http_requests,
            http_duration,
            db_write_seconds,
            db_batch_size,
            db_size_bytes,
            webhook_deliveries,
            mail,
            ratings,
            rating_average,
        })
    }
}

/// The process's metrics, created on first use.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    // Names and labels are constants above, so registration cannot fail at run time.
    METRICS.get_or_init(|| Metrics::new().expect("the metric definitions are valid"))
}

/// Counts a stored message (`visitor`, `agent` or `system`).
pub fn message_stored(sender: &str) {
    let sender = match sender {
        "visitor" | "agent" | "system" => sender,
        _ => "other",
    };
    get().messages.with_label_values(&[sender]).inc();
}

/// Records one writer transaction: how many jobs it held and how long it took.
pub fn write_batch(jobs: usize, took: Duration) {
    let metrics = get();
    metrics.db_batch_size.observe(jobs as f64);
    metrics.db_write_seconds.observe(took.as_secs_f64());
}

/// Counts one webhook delivery attempt's outcome.
pub fn webhook_delivery(outcome: &'static str) {
    get().webhook_deliveries.with_label_values(&[outcome]).inc();
}

/// Counts one email event: `queued`, `sent`, `retry` (an attempt failed, it goes again),
/// `failed` (given up) or `dropped` (not queued: the outbox is full).
pub fn mail(outcome: &'static str) {
    get().mail.with_label_values(&[outcome]).inc();
}

/// A long poll that is being held; counted in `parley_held_polls` until dropped.
pub struct HeldPoll {
    kind: &'static str,
}

impl HeldPoll {
    /// `kind` is `message` (a chat's poll) or `inbox`.
    pub fn start(kind: &'static str) -> Self {
        get().held_polls.with_label_values(&[kind]).inc();
        Self { kind }
    }

    /// Ends the hold, counting what ended it: `change`, `timeout` or `shutdown`.
    pub fn woken(self, reason: &'static str) {
        get()
            .poll_wakeups
            .with_label_values(&[self.kind, reason])
            .inc();
    }
}

impl Drop for HeldPoll {
    fn drop(&mut self) {
        get().held_polls.with_label_values(&[self.kind]).dec();
    }
}

/// Counts one answered request under its route pattern, method and status, with its time.
pub fn http_request(route: &str, method: &str, status: &str, elapsed: Duration) {
    let metrics = get();
    metrics
        .http_requests
        .with_label_values(&[route, method, status])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[route])
        .observe(elapsed.as_secs_f64());
}

/// One agent's ratings as the metrics show them: the agent's email (`unassigned` for chats
/// rated without an assignee), how many, and their average.
pub struct AgentRatings<'a> {
    pub agent: &'a str,
    pub count: i64,
    pub average: f64,
}

/// Every metric in the Prometheus text format, with the database's size on disk and the
/// ratings per agent now.
pub fn render(db_size_bytes: i64, ratings: &[AgentRatings]) -> prometheus::Result<String> {
    let metrics = get();
    metrics.db_size_bytes.set(db_size_bytes);
    // Read afresh at each scrape (other instances record ratings too).
    metrics.ratings.reset();
    metrics.rating_average.reset();
    for agent in ratings {
        metrics
            .ratings
            .with_label_values(&[agent.agent])
            .set(agent.count);
        metrics
            .rating_average
            .with_label_values(&[agent.agent])
            .set(agent.average);
    }
    TextEncoder::new().encode_to_string(&metrics.registry.gather())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_poll_is_counted_until_it_ends() {
        let gauge = get().held_polls.with_label_values(&["unit-test"]);
        let held = HeldPoll::start("unit-test");
        assert_eq!(gauge.get(), 1);
        held.woken("change");
        assert_eq!(gauge.get(), 0);
        let woken = get()
            .poll_wakeups
            .with_label_values(&["unit-test", "change"]);
        assert_eq!(woken.get(), 1);
    }

    #[test]
    fn the_text_format_names_every_family() {
        message_stored("visitor");
        write_batch(3, Duration::from_millis(2));
        let text = TextEncoder::new()
            .encode_to_string(&get().registry.gather())
            .unwrap();
        assert!(text.contains("parley_messages_total{sender=\"visitor\"}"));
        assert!(text.contains("parley_db_write_batch_size_bucket"));
    }
}
