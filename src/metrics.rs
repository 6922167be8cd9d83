//! Prometheus metrics: one registry, the handles that fill it, the request middleware and
//! the `GET /metrics` scrape endpoint.
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
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::error::ApiError;
use crate::state::AppState;

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
        registry.register(Box::new(held_polls.clone()))?;
        registry.register(Box::new(poll_wakeups.clone()))?;
        registry.register(Box::new(messages.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(db_write_seconds.clone()))?;
        registry.register(Box::new(db_batch_size.clone()))?;
        registry.register(Box::new(db_size_bytes.clone()))?;
        registry.register(Box::new(webhook_deliveries.clone()))?;
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

/// The route pattern of a path, from a fixed set, so a client cannot mint new series.
/// Matched by hand: `match_pattern()` would run the router's regexes a second time on
/// every request, which showed in the send path's profile.
fn route_label(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => "/",
        ["agent"] => "/agent",
        ["widget.js"] => "/widget.js",
        ["healthz"] => "/healthz",
        ["metrics"] => "/metrics",
        ["static", ..] => "/static/{path}",
        ["api", "v1", rest @ ..] => match rest {
            ["config"] => "/api/v1/config",
            ["visitors"] => "/api/v1/visitors",
            ["visitors", "me"] => "/api/v1/visitors/me",
            ["visitors", "me", "token"] => "/api/v1/visitors/me/token",
            ["chats"] => "/api/v1/chats",
            ["chats", "mine"] => "/api/v1/chats/mine",
            ["chats", _] => "/api/v1/chats/{id}",
            ["chats", _, "messages"] => "/api/v1/chats/{id}/messages",
            ["chats", _, "typing"] => "/api/v1/chats/{id}/typing",
            ["chats", _, "read"] => "/api/v1/chats/{id}/read",
            ["chats", _, "attachments"] => "/api/v1/chats/{id}/attachments",
            ["attachments", _] => "/api/v1/attachments/{id}",
            ["agents"] => "/api/v1/agents",
            ["agents", "login"] => "/api/v1/agents/login",
            ["agents", "logout"] => "/api/v1/agents/logout",
            ["agents", "me"] => "/api/v1/agents/me",
            ["agents", "me", "password"] => "/api/v1/agents/me/password",
            ["agents", _] => "/api/v1/agents/{id}",
            ["inbox"] => "/api/v1/inbox",
            ["webhooks"] => "/api/v1/webhooks",
            ["webhooks", _] => "/api/v1/webhooks/{id}",
            _ => "unmatched",
        },
        _ => "unmatched",
    }
}

/// Methods become labels only from this fixed set, so a client cannot mint new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts every request by route pattern, method and status, times it, and
/// writes the request log (target `parley::requests`, level info): client address, method,
/// path (never the query or a body), status, body size and time.
///
/// The log is written here rather than by actix's `Logger`, which keeps a copy of its format
/// and of the connection info with every request: about 900 bytes that each of 10,000 parked
/// polls would hold for its whole wait. This holds an `Instant` and two `&'static str`s.
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // The pattern, not the path: one series per route however many chats there are.
    let route = route_label(req.path());
    let method = method_label(req.method());
    let response = next.call(req).await;
    let elapsed = started.elapsed();
    let status = match &response {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    let metrics = get();
    metrics
        .http_requests
        .with_label_values(&[route, method, status.as_str()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[route])
        .observe(elapsed.as_secs_f64());
    if log::log_enabled!(target: REQUEST_LOG, log::Level::Info) {
        let millis = elapsed.as_secs_f64() * 1000.0;
        match &response {
            Ok(response) => {
                let request = response.request();
                let trust_proxy = request
                    .app_data::<web::Data<AppState>>()
                    .is_some_and(|state| state.config.trust_proxy);
                let size = match response.response().body().size() {
                    BodySize::Sized(bytes) => bytes.to_string(),
                    BodySize::None => "0".to_string(),
                    BodySize::Stream => "-".to_string(),
                };
                log::info!(
                    target: REQUEST_LOG,
                    "{} \"{} {}\" {} {size} {millis:.3}ms",
                    crate::api::client_ip(request, trust_proxy),
                    request.method(),
                    request.path(),
                    status.as_u16(),
                );
            }
            // The request went with the error: its route pattern stands in for the path.
            Err(_) => log::info!(
                target: REQUEST_LOG,
                "- \"{method} {route}\" {} - {millis:.3}ms",
                status.as_u16()
            ),
        }
    }
    response
}

/// The `log` target of the request log, so it can be filtered on its own
/// (`RUST_LOG=info,parley::requests=warn` silences it).
const REQUEST_LOG: &str = "parley::requests";

/// `GET /metrics` (unauthenticated): the Prometheus text format.
pub async fn scrape(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let metrics = get();
    metrics.db_size_bytes.set(database_size(&state.config.db));
    let text = TextEncoder::new()
        .encode_to_string(&metrics.registry.gather())
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, prometheus::TEXT_FORMAT))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(text))
}

/// The database file plus its `-wal` file: what the data takes on disk right now. Read from
/// file metadata, so a scrape costs no database connection.
fn database_size(db: &std::path::Path) -> i64 {
    let size = |path: &std::path::Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let total = size(db) + size(std::path::Path::new(&wal));
    i64::try_from(total).unwrap_or(i64::MAX)
}

/// Mounts `GET /metrics`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(scrape));
}

#[cfg(test)]
mod route_label_tests {
    use super::route_label;

    #[test]
    fn paths_map_to_their_route_patterns_and_nothing_else() {
        assert_eq!(
            route_label("/api/v1/chats/abc/messages"),
            "/api/v1/chats/{id}/messages"
        );
        assert_eq!(route_label("/api/v1/chats/mine"), "/api/v1/chats/mine");
        assert_eq!(route_label("/static/js/app.js"), "/static/{path}");
        assert_eq!(route_label("/"), "/");
        assert_eq!(route_label("/api/v1/chats/a/b/c/d"), "unmatched");
        assert_eq!(route_label("/wp-admin.php"), "unmatched");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let custom = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&custom), "other");
    }

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
