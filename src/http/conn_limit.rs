//! Caps on open connections, per client address and in total, so that a few hundred slow
//! or idle clients cannot use up the process's file descriptors and `/healthz` keeps
//! answering.
//!
//! Two pieces, both needed:
//!
//! * [`ConnectionLimits::on_connect`] (for `HttpServer::on_connect`) counts every accepted
//!   TCP connection and puts a [`ConnectionSlot`] in the connection's data; the slot gives
//!   its count back when actix drops the connection, however it ends.
//! * [`Enforce`] (a middleware) answers every request on a connection that was
//!   over a limit when it opened with `429`, `Retry-After: 1` and `Connection: close`, so
//!   it is closed at once, except `GET /healthz` (see [`HEALTH_PATH`]), which is always
//!   served so that orchestrators do not restart a server that is merely busy.
//!
//! The per-address key is the TCP peer. Behind a reverse proxy every client shares the
//! proxy's address: there, raise `per_ip` to what the proxy may open, or set it to 0 (off)
//! and let the proxy limit clients. Connections that are not plain TCP (TLS streams, Unix
//! sockets) are not counted.
//!
//! Keep `total` well below the open-files limit (see [`raise_open_files_limit`]), leaving
//! room for the database, attachments and outgoing webhooks; actix's own per-worker
//! `HttpServer::max_connections` can stay above it as a last backstop.

use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use std::future::{ready, Ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{
    forward_ready, Extensions, Service, ServiceRequest, ServiceResponse, Transform,
};
use actix_web::http::header;
use actix_web::{Error, HttpResponse};
use futures_util::future::{Either, MapOk, TryFutureExt};

/// The path that is served even on an over-limit connection.
pub const HEALTH_PATH: &str = "/healthz";

const OVER_LIMIT_BODY: &str =
    r#"{"error":{"code":"rate_limited","message":"too many open connections, retry in 1 s"}}"#;

/// The limits and the live counts. Cheap to clone: clones share the counts.
#[derive(Clone)]
pub struct ConnectionLimits {
    inner: Arc<Inner>,
}

struct Inner {
    per_ip: usize,
    total: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl Inner {
    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked: every update is one step.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for ConnectionLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionLimits")
            .field("per_ip", &self.inner.per_ip)
            .field("total", &self.inner.total)
            .field("open", &self.open())
            .finish()
    }
}

impl ConnectionLimits {
    /// At most `per_ip` connections from one peer address and `total` in all; 0 turns
    /// either limit off.
    pub fn new(per_ip: usize, total: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                per_ip,
                total,
                counts: Mutex::new(Counts::default()),
            }),
        }
    }

    /// The hook for `HttpServer::on_connect`: counts a plain TCP connection and stores its
    /// [`ConnectionSlot`] in the connection's data.
    pub fn on_connect(&self, conn: &dyn Any, ext: &mut Extensions) {
        let Some(stream) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        let ip = stream
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| {
                addr.ip().to_canonical()
            });
        ext.insert(self.register(ip));
    }

    /// [`Self::on_connect`] as a closure that owns a clone, ready for
    /// `HttpServer::on_connect`.
    pub fn on_connect_fn(&self) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
        let limits = self.clone();
        move |conn, ext| limits.on_connect(conn, ext)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.counts().total
    }

    /// Connections open now from `ip`.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.inner
            .counts()
            .per_ip
            .get(&ip.to_canonical())
            .copied()
            .unwrap_or(0)
    }

    /// Counts one connection from `ip`. Over-limit connections are counted too: they hold
    /// a descriptor until they close.
    fn register(&self, ip: IpAddr) -> ConnectionSlot {
        let mut counts = self.inner.counts();
        counts.total += 1;
        let total = counts.total;
        let from_ip = counts.per_ip.entry(ip).or_insert(0);
        *from_ip += 1;
        let from_ip = *from_ip;
        drop(counts);
        let over_limit = (self.inner.per_ip > 0 && from_ip > self.inner.per_ip)
            || (self.inner.total > 0 && total > self.inner.total);
        if over_limit {
            log::debug!("connection from {ip} over limit ({from_ip} from it, {total} in all)");
        }
        ConnectionSlot {
            limits: Arc::clone(&self.inner),
            ip,
            over_limit,
        }
    }
}

/// One counted connection, kept in the connection's data; dropping it gives the count back.
pub struct ConnectionSlot {
    limits: Arc<Inner>,
    ip: IpAddr,
    over_limit: bool,
}

impl ConnectionSlot {
    /// Whether the connection was over a limit when it opened.
    pub fn is_over_limit(&self) -> bool {
        self.over_limit
    }

    /// The TCP peer's address.
    pub fn peer(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.limits.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(from_ip) = counts.per_ip.get_mut(&self.ip) {
            *from_ip = from_ip.saturating_sub(1);
            if *from_ip == 0 {
                // Keeps the map as small as the set of addresses connected right now.
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// The middleware: `429` and close for requests on an over-limit connection, except
/// [`HEALTH_PATH`]. A `Transform`, not `from_fn`, which boxes the inner future of every
/// request (memory every parked poll would hold).
#[derive(Clone, Copy, Default)]
pub struct Enforce;

impl<S, B> Transform<S, ServiceRequest> for Enforce
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = EnforceService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(EnforceService { service }))
    }
}

pub struct EnforceService<S> {
    service: S,
}

/// The inner answer, its body marked as the inner one's.
type Passed<F, B> = MapOk<F, fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B>>>;

impl<S, B> Service<ServiceRequest> for EnforceService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Either<Passed<S::Future, B>, Ready<Result<Self::Response, Error>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let over_limit = req
            .conn_data::<ConnectionSlot>()
            .is_some_and(ConnectionSlot::is_over_limit);
        if !over_limit || req.path() == HEALTH_PATH {
            let into_left: fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> =
                ServiceResponse::map_into_left_body;
            return Either::Left(self.service.call(req).map_ok(into_left));
        }
        let response = HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, "1"))
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .force_close()
            .body(OVER_LIMIT_BODY);
        Either::Right(ready(Ok(req.into_response(response).map_into_right_body())))
    }
}

/// Raises the soft limit on open files to the hard limit, returning the new soft limit.
/// Servers start with a soft limit of 1024 on many systems, far below what a chat server
/// with long polling needs. Call once at startup; failures are not fatal, so log them.
pub fn raise_open_files_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::{web, App, HttpServer};
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const WAIT: Duration = Duration::from_secs(3);

    #[test]
    fn slots_count_and_give_back() {
        let limits = ConnectionLimits::new(2, 3);
        let other: IpAddr = "192.0.2.7".parse().unwrap();
        let a = limits.register(LOCAL);
        let b = limits.register(LOCAL);
        assert!(!a.is_over_limit() && !b.is_over_limit());
        let c = limits.register(LOCAL);
        assert!(c.is_over_limit(), "third from one address");
        assert_eq!(limits.open_from(LOCAL), 3);
        let d = limits.register(other);
        assert!(d.is_over_limit(), "fourth in all");
        drop((a, b, c));
        assert_eq!(limits.open(), 1);
        assert_eq!(limits.open_from(LOCAL), 0);
        let e = limits.register(LOCAL);
        assert!(!e.is_over_limit());
        drop((d, e));
        assert_eq!(limits.open(), 0);
        assert!(limits.inner.counts().per_ip.is_empty());
    }

    #[test]
    fn zero_means_no_limit() {
        let limits = ConnectionLimits::new(0, 0);
        let slots: Vec<_> = (0..1000).map(|_| limits.register(LOCAL)).collect();
        assert!(slots.iter().all(|s| !s.is_over_limit()));
        assert_eq!(limits.open_from("::ffff:127.0.0.1".parse().unwrap()), 1000);
    }

    #[test]
    fn other_streams_are_not_counted() {
        let limits = ConnectionLimits::new(1, 1);
        let mut ext = Extensions::new();
        limits.on_connect(&(), &mut ext);
        assert!(ext.get::<ConnectionSlot>().is_none());
        assert_eq!(limits.open(), 0);
    }

    #[test]
    fn open_files_limit_is_raised_to_hard() {
        let raised = raise_open_files_limit().unwrap();
        let (soft, _hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(soft, raised);
    }

    async fn start(limits: ConnectionLimits) -> (SocketAddr, actix_web::dev::ServerHandle) {
        let server = HttpServer::new(|| {
            App::new()
                .wrap(Enforce)
                .route("/", web::get().to(|| async { "hello" }))
                .route(HEALTH_PATH, web::get().to(|| async { "ok" }))
        })
        .workers(1)
        .on_connect(limits.on_connect_fn())
        .bind(("127.0.0.1", 0))
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        (addr, handle)
    }

    /// Sends a GET and reads one whole response (head and `Content-Length` body).
    async fn get(stream: &mut TcpStream, path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        tokio::time::timeout(WAIT, async {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            loop {
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        return text;
                    }
                }
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed before a full response: {text}");
                buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .unwrap()
    }

    async fn wait_for(limits: &ConnectionLimits, open_from_local: usize) {
        tokio::time::timeout(WAIT, async {
            while limits.open_from(LOCAL) != open_from_local {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "expected {open_from_local} open, have {}",
                limits.open_from(LOCAL)
            )
        });
    }

    async fn closed_by_server(stream: &mut TcpStream) -> bool {
        let mut chunk = [0u8; 64];
        matches!(
            tokio::time::timeout(WAIT, stream.read(&mut chunk)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[actix_web::test]
    async fn per_ip_limit_with_real_server() {
        let limits = ConnectionLimits::new(2, 100);
        let (addr, server) = start(limits.clone()).await;

        let mut first = TcpStream::connect(addr).await.unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut first, "/").await.starts_with("HTTP/1.1 200"));
        assert!(get(&mut second, "/").await.starts_with("HTTP/1.1 200"));
        assert_eq!(limits.open_from(LOCAL), 2);

        let mut extra = TcpStream::connect(addr).await.unwrap();
        let answer = get(&mut extra, "/").await;
        assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
        let lower = answer.to_ascii_lowercase();
        assert!(lower.contains("retry-after: 1\r\n"), "{answer}");
        assert!(lower.contains("connection: close\r\n"), "{answer}");
        assert!(
            closed_by_server(&mut extra).await,
            "over-limit connection kept open"
        );

        // Still over the limit, but the health check is answered.
        let mut health = TcpStream::connect(addr).await.unwrap();
        let answer = get(&mut health, HEALTH_PATH).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // The connections that were under the limit keep working.
        assert!(get(&mut first, "/").await.starts_with("HTTP/1.1 200"));

        drop((first, second, extra, health));
        wait_for(&limits, 0).await;
        let mut again = TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut again, "/").await.starts_with("HTTP/1.1 200"));
        server.stop(false).await;
    }

    #[actix_web::test]
    async fn total_limit_with_real_server() {
        let limits = ConnectionLimits::new(0, 2);
        let (addr, server) = start(limits.clone()).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            assert!(get(&mut stream, "/").await.starts_with("HTTP/1.1 200"));
            held.push(stream);
        }
        let mut extra = TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut extra, "/").await.starts_with("HTTP/1.1 429"));
        let mut health = TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut health, HEALTH_PATH)
            .await
            .starts_with("HTTP/1.1 200"));
        drop((held, extra, health));
        wait_for(&limits, 0).await;
        assert_eq!(limits.open(), 0);
        server.stop(false).await;
    }
}
