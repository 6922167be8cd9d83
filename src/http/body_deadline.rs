//! Deadlines for reading request bodies (slow-body "slowloris" defence).
//!
//! actix-web times out request *heads* but not bodies: a POST that declares
//! `Content-Length: 1000` and sends one byte holds a connection, a task and a buffer until
//! the client gives up, and one byte every 15 s keeps it open for ever. [`Enforce`] wraps the
//! request payload in a stream that fails with [`PayloadError::Io`] of kind
//! [`io::ErrorKind::TimedOut`] when
//!
//! * no data arrives for [`BodyDeadline::idle`] while the handler waits for it,
//! * the body is still unfinished [`BodyDeadline::total`] after the handler began reading, or
//! * after [`BodyDeadline::grace`] the average rate is below
//!   [`BodyDeadline::min_bytes_per_sec`].
//!
//! When that happens the response becomes `408 Request Timeout` with `Connection: close`,
//! whatever the handler made of the error, and the connection is closed: the unread body is
//! kept alive until the response head is written so that actix closes the connection rather
//! than draining a chunked body that may never end.
//!
//! Wire it as `App::new().app_data(BodyDeadline { .. }).wrap(Enforce)`;
//! without `app_data` the defaults apply. Time spent by the handler before it reads the body,
//! or between reads while data is already buffered, is not held against the client.

use std::cell::{Cell, RefCell};
use std::future::{ready, Future, Ready};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, HttpResponse};
use futures_util::future::{Either, LocalBoxFuture, MapOk, TryFutureExt};
use futures_util::Stream;
use tokio::time::{sleep_until, Instant, Sleep};

/// Limits on how slowly a request body may arrive. Register with `App::app_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyDeadline {
    /// Longest wait for the next chunk.
    pub idle: Duration,
    /// Longest time from the first read to the end of the body.
    pub total: Duration,
    /// Lowest average rate accepted once `grace` has passed; 0 turns the check off.
    pub min_bytes_per_sec: u64,
    /// Time before the rate check starts, so small bodies on slow links are not judged
    /// by their first packet.
    pub grace: Duration,
}

impl Default for BodyDeadline {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(10),
            total: Duration::from_secs(60),
            min_bytes_per_sec: 16 * 1024,
            grace: Duration::from_secs(10),
        }
    }
}

/// True when a payload error comes from these deadlines, for extractor error handlers that
/// want to answer `408` themselves.
pub fn is_timeout(err: &PayloadError) -> bool {
    matches!(err, PayloadError::Io(io_err) if io_err.kind() == io::ErrorKind::TimedOut)
}

const TIMEOUT_BODY: &str =
    r#"{"error":{"code":"request_timeout","message":"the request body did not arrive in time"}}"#;

/// The middleware. Requests without a body pass untouched, through no box: a `Transform`,
/// not `from_fn`, which boxes the inner future of every request (memory every parked poll
/// would hold).
#[derive(Clone, Copy, Default)]
pub struct Enforce;

impl<S, B> Transform<S, ServiceRequest> for Enforce
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, TimedOut>>;
    type Error = Error;
    type Transform = EnforceService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(EnforceService {
            service: Rc::new(service),
        }))
    }
}

pub struct EnforceService<S> {
    service: Rc<S>,
}

/// The answer to a request without a body, its body marked as the inner one's.
type Passed<F, B> = MapOk<F, fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B, TimedOut>>>;

impl<S, B> Service<ServiceRequest> for EnforceService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, TimedOut>>;
    type Error = Error;
    type Future =
        Either<Passed<S::Future, B>, LocalBoxFuture<'static, Result<Self::Response, Error>>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let payload = req.take_payload();
        if matches!(payload, Payload::None) {
            req.set_payload(payload);
            let into_left: fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B, TimedOut>> =
                ServiceResponse::map_into_left_body;
            return Either::Left(self.service.call(req).map_ok(into_left));
        }
        let service = Rc::clone(&self.service);
        Either::Right(Box::pin(with_deadline(req, payload, service)))
    }
}

/// Runs a request whose body is read under the deadlines, answering `408` if they trip.
async fn with_deadline<S, B>(
    mut req: ServiceRequest,
    payload: Payload,
    service: Rc<S>,
) -> Result<ServiceResponse<EitherBody<B, TimedOut>>, Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let limits = req.app_data::<BodyDeadline>().copied().unwrap_or_default();
    let shared = Rc::new(Shared::default());
    let stream = DeadlineStream::new(payload, limits, Rc::clone(&shared));
    req.set_payload(Payload::Stream {
        payload: Box::pin(stream),
    });
    let result = service.call(req).await;
    if !shared.tripped.get() {
        return result.map(ServiceResponse::map_into_left_body);
    }
    // Handlers' and extractors' errors arrive here as responses. Only an inner
    // middleware's `Err` has no request to answer with: it is passed on as it is.
    let (http_req, _handler_response) = result?.into_parts();
    log::debug!(
        "request body from {:?} timed out ({}) on {} {}",
        http_req.peer_addr(),
        shared.reason.get().map_or("?", Reason::as_str),
        http_req.method(),
        http_req.path(),
    );
    let body = TimedOut {
        body: Some(Bytes::from_static(TIMEOUT_BODY.as_bytes())),
        _unread: shared.held.borrow_mut().take(),
    };
    let response = HttpResponse::RequestTimeout()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .force_close()
        .message_body(body)?;
    Ok(ServiceResponse::new(http_req, response).map_into_right_body())
}

/// The `408` body. It owns the unread request payload until the response is written: while
/// the payload is alive, actix closes the connection after the response instead of
/// draining (reading and discarding) the rest of a chunked body at the client's pace.
pub struct TimedOut {
    body: Option<Bytes>,
    _unread: Option<Payload>,
}

impl MessageBody for TimedOut {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.body.as_ref().map_or(0, |b| b.len() as u64))
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(self.body.take().map(Ok))
    }
}

#[derive(Debug, Clone, Copy)]
enum Reason {
    Idle,
    Total,
    Rate,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Total => "total",
            Self::Rate => "rate",
        }
    }
}

/// What the stream tells the middleware once the handler has dropped it.
#[derive(Default)]
struct Shared {
    tripped: Cell<bool>,
    reason: Cell<Option<Reason>>,
    held: RefCell<Option<Payload>>,
}

struct DeadlineStream {
    inner: Payload,
    limits: BodyDeadline,
    shared: Rc<Shared>,
    /// Set at the first poll: the handler's work before reading is not the client's fault.
    started: Option<Instant>,
    /// Set when a poll finds no data; cleared by each chunk.
    waiting_since: Option<Instant>,
    received: u64,
    timer: Option<Pin<Box<Sleep>>>,
    finished: bool,
}

impl DeadlineStream {
    fn new(inner: Payload, limits: BodyDeadline, shared: Rc<Shared>) -> Self {
        Self {
            inner,
            limits,
            shared,
            started: None,
            waiting_since: None,
            received: 0,
            timer: None,
            finished: false,
        }
    }

    /// The earliest moment one of the limits is broken, if the client sends nothing more.
    fn deadline(&self, started: Instant, waiting_since: Instant) -> Option<(Instant, Reason)> {
        let mut earliest: Option<(Instant, Reason)> = None;
        let mut consider = |at: Option<Instant>, reason: Reason| {
            if let Some(at) = at {
                if earliest.is_none_or(|(current, _)| at < current) {
                    earliest = Some((at, reason));
                }
            }
        };
        consider(waiting_since.checked_add(self.limits.idle), Reason::Idle);
        consider(started.checked_add(self.limits.total), Reason::Total);
        if self.limits.min_bytes_per_sec > 0 {
            // The average drops below the minimum once elapsed > received / rate.
            let earned = duration_for(self.received, self.limits.min_bytes_per_sec);
            consider(
                started.checked_add(earned.max(self.limits.grace)),
                Reason::Rate,
            );
        }
        earliest
    }

    fn trip(&mut self, reason: Reason) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.finished = true;
        self.timer = None;
        self.shared.tripped.set(true);
        self.shared.reason.set(Some(reason));
        // Hand the unread payload to the middleware; see `TimedOut`.
        let unread = std::mem::replace(&mut self.inner, Payload::None);
        *self.shared.held.borrow_mut() = Some(unread);
        Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("request body timed out ({})", reason.as_str()),
        )))))
    }
}

/// `bytes / rate` seconds, exactly enough not to overflow.
fn duration_for(bytes: u64, rate: u64) -> Duration {
    let secs = bytes / rate;
    let nanos = u128::from(bytes % rate) * 1_000_000_000 / u128::from(rate);
    // nanos < 1e9 because (bytes % rate) < rate.
    Duration::new(secs, u32::try_from(nanos).unwrap_or(999_999_999))
}

impl Stream for DeadlineStream {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        let now = Instant::now();
        let started = *this.started.get_or_insert(now);
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received = this.received.saturating_add(chunk.len() as u64);
                this.waiting_since = None;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(err))) => {
                this.finished = true;
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.finished = true;
                this.timer = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let waiting_since = *this.waiting_since.get_or_insert(now);
                let Some((deadline, reason)) = this.deadline(started, waiting_since) else {
                    return Poll::Pending;
                };
                if now >= deadline {
                    return this.trip(reason);
                }
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => this.trip(reason),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::{web, App, HttpServer};
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const SLACK: Duration = Duration::from_millis(1500);

    async fn json_echo(body: web::Json<HashMap<String, String>>) -> HttpResponse {
        HttpResponse::Ok().json(body.into_inner())
    }

    async fn bytes_len(body: web::Bytes) -> HttpResponse {
        HttpResponse::Ok().body(body.len().to_string())
    }

    fn app_config(limits: BodyDeadline) -> impl Fn(&mut web::ServiceConfig) + Clone {
        move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(limits)
                .route("/json", web::post().to(json_echo))
                .route("/bytes", web::post().to(bytes_len))
                .route("/get", web::get().to(|| async { "hello" }));
        }
    }

    async fn start(limits: BodyDeadline) -> (SocketAddr, actix_web::dev::ServerHandle) {
        let server =
            HttpServer::new(move || App::new().wrap(Enforce).configure(app_config(limits)))
                .workers(1)
                .bind(("127.0.0.1", 0))
                .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        (addr, handle)
    }

    /// Reads until the end of the response head; `None` when the server closed first.
    async fn read_head(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<String> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(String::from_utf8_lossy(&buf[..end]).into_owned());
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// True when the server closes the connection (EOF or reset) within `within`.
    /// Sends `piece` every 100 ms, `times` times, or until the server closes.
    fn trickle(
        mut writer: tokio::net::tcp::OwnedWriteHalf,
        piece: &'static [u8],
        times: usize,
    ) -> actix_web::rt::task::JoinHandle<()> {
        actix_web::rt::spawn(async move {
            for _ in 0..times {
                if writer.write_all(piece).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
        let mut chunk = [0u8; 1024];
        tokio::time::timeout(within, async {
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    fn short(idle_ms: u64, total_ms: u64, rate: u64, grace_ms: u64) -> BodyDeadline {
        BodyDeadline {
            idle: Duration::from_millis(idle_ms),
            total: Duration::from_millis(total_ms),
            min_bytes_per_sec: rate,
            grace: Duration::from_millis(grace_ms),
        }
    }

    #[test]
    fn is_timeout_tells_our_error() {
        assert!(is_timeout(&PayloadError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "x"
        ))));
        assert!(!is_timeout(&PayloadError::Incomplete(None)));
        assert!(!is_timeout(&PayloadError::Io(io::Error::other("x"))));
    }

    #[test]
    fn duration_for_is_exact() {
        assert_eq!(duration_for(0, 16), Duration::ZERO);
        assert_eq!(duration_for(32, 16), Duration::from_secs(2));
        assert_eq!(duration_for(24, 16), Duration::from_millis(1500));
        assert_eq!(duration_for(u64::MAX, 1), Duration::from_secs(u64::MAX));
    }

    #[actix_web::test]
    async fn requests_pass_through_in_process() {
        let app = actix_web::test::init_service(
            App::new()
                .wrap(Enforce)
                .configure(app_config(short(300, 2000, 0, 0))),
        )
        .await;
        let res = actix_web::test::call_service(
            &app,
            actix_web::test::TestRequest::get().uri("/get").to_request(),
        )
        .await;
        assert_eq!(res.status(), 200);
        assert_eq!(actix_web::test::read_body(res).await, "hello");
        let req = actix_web::test::TestRequest::post()
            .uri("/json")
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(r#"{"a":"b"}"#)
            .to_request();
        let res = actix_web::test::call_service(&app, req).await;
        assert_eq!(res.status(), 200);
        assert_eq!(actix_web::test::read_body(res).await, r#"{"a":"b"}"#);
    }

    #[actix_web::test]
    async fn stalled_body_gets_408_within_idle() {
        let limits = short(300, 10_000, 0, 10_000);
        let (addr, server) = start(limits).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let sent = std::time::Instant::now();
        stream
            .write_all(
                b"POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
            )
            .await
            .unwrap();
        let head = tokio::time::timeout(limits.idle + SLACK, read_head(&mut stream))
            .await
            .expect("the server must answer within idle + slack");
        let elapsed = sent.elapsed();
        let head = head.expect("a 408 response, not a bare close");
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
        assert!(
            elapsed >= limits.idle - Duration::from_millis(50),
            "{elapsed:?}"
        );
        assert!(closed_within(&mut stream, SLACK).await);
        server.stop(false).await;
    }

    #[actix_web::test]
    async fn trickle_below_min_rate_gets_408_after_grace() {
        // Never idle (a byte every 100 ms < 400 ms), but 10 B/s is far below 1000 B/s.
        let limits = short(400, 10_000, 1000, 600);
        let (addr, server) = start(limits).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let sent = std::time::Instant::now();
        stream
            .write_all(b"POST /bytes HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
            .await
            .unwrap();
        let (mut reader, writer) = stream.into_split();
        let trickle = trickle(writer, b"x", 40);
        let head = tokio::time::timeout(limits.grace + SLACK, read_head(&mut reader))
            .await
            .expect("no answer after grace + slack")
            .expect("an answer, not a bare close");
        let elapsed = sent.elapsed();
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
        assert!(
            elapsed >= limits.grace - Duration::from_millis(50),
            "{elapsed:?}"
        );
        trickle.abort();
        server.stop(false).await;
    }

    #[actix_web::test]
    async fn total_deadline_ends_a_steady_trickle() {
        // Rate check off; a byte every 100 ms is never idle, but total is 1 s.
        let limits = short(400, 1000, 0, 0);
        let (addr, server) = start(limits).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let sent = std::time::Instant::now();
        stream
            .write_all(b"POST /bytes HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
            .await
            .unwrap();
        let (mut reader, writer) = stream.into_split();
        let trickle = trickle(writer, b"x", 40);
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(limits.total + SLACK, reader.read(&mut buf))
            .await
            .expect("no answer after total + slack")
            .unwrap_or(0);
        let elapsed = sent.elapsed();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
        assert!(
            elapsed >= limits.total - Duration::from_millis(50),
            "{elapsed:?}"
        );
        trickle.abort();
        server.stop(false).await;
    }

    #[actix_web::test]
    async fn slow_chunked_body_is_not_drained_after_408() {
        let limits = short(400, 10_000, 1000, 500);
        let (addr, server) = start(limits).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /bytes HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        let (mut reader, writer) = stream.into_split();
        // Keeps dripping well past the deadline; the server must hang up regardless.
        let trickle = trickle(writer, b"1\r\nx\r\n", 60);
        let mut received = Vec::new();
        let mut buf = [0u8; 512];
        let closed = tokio::time::timeout(limits.grace + SLACK + SLACK, async {
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "connection kept open while the client drips"
        );
        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        trickle.abort();
        server.stop(false).await;
    }

    #[actix_web::test]
    async fn normal_and_paused_posts_still_work() {
        let limits = short(300, 5000, 16 * 1024, 2000);
        let (addr, server) = start(limits).await;
        let body = r#"{"hello":"world"}"#;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        // A pause shorter than `idle`, inside the grace period, is fine.
        stream.write_all(&body.as_bytes()[..5]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        stream.write_all(&body.as_bytes()[5..]).await.unwrap();
        let head = tokio::time::timeout(SLACK, read_head(&mut stream))
            .await
            .unwrap()
            .unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");

        // A GET on the same keep-alive connection is not wrapped.
        stream
            .write_all(b"GET /get HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        // Skip the previous body, then find the next head.
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        tokio::time::timeout(SLACK, async {
            while !String::from_utf8_lossy(&seen).contains("hello") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0);
                seen.extend_from_slice(&buf[..n]);
            }
        })
        .await
        .unwrap();
        assert!(String::from_utf8_lossy(&seen).contains("HTTP/1.1 200"));
        server.stop(false).await;
    }
}
