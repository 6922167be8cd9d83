//! The request middleware that counts, times and logs every request.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::Method;

use crate::http::extract::client_ip;
use crate::http::routes;
use crate::metrics;

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

/// The `log` target of the request log, so it can be filtered on its own
/// (`RUST_LOG=info,parley::requests=warn` silences it).
const REQUEST_LOG: &str = "parley::requests";

/// Middleware: counts every request by route pattern, method and status, times it, and
/// writes the request log (target `parley::requests`, level info): client address, method,
/// path (never the query or a body), status, body size and time.
///
/// The log is written here rather than by actix's `Logger`, which keeps a copy of its format
/// and of the connection info with every request: about 900 bytes that each of 10,000 parked
/// polls would hold for its whole wait. This holds an `Instant` and two `&'static str`s.
/// A `Transform`, not `from_fn`, which boxes the inner future of every request.
#[derive(Clone, Copy, Default)]
pub struct TrackRequests;

impl<S, B> Transform<S, ServiceRequest> for TrackRequests
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = TrackRequestsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(TrackRequestsService { service }))
    }
}

pub struct TrackRequestsService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for TrackRequestsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Tracked<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        // The pattern, not the path: one series per route however many chats there are.
        let route = routes::pattern_of(req.path()).unwrap_or("unmatched");
        let method = method_label(req.method());
        Tracked {
            answer: self.service.call(req),
            started,
            route,
            method,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's answer on its way, and what its count and log line need.
    pub struct Tracked<F> {
        #[pin]
        answer: F,
        started: Instant,
        route: &'static str,
        method: &'static str,
    }
}

impl<F, B> Future for Tracked<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    B: MessageBody,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.answer.poll(cx));
        record(&response, *this.started, this.route, this.method);
        Poll::Ready(response)
    }
}

/// Counts and logs a request that has its answer.
fn record<B: MessageBody>(
    response: &Result<ServiceResponse<B>, actix_web::Error>,
    started: Instant,
    route: &'static str,
    method: &'static str,
) {
    let elapsed = started.elapsed();
    let status = match response {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    metrics::http_request(route, method, status.as_str(), elapsed);
    if log::log_enabled!(target: REQUEST_LOG, log::Level::Info) {
        let millis = elapsed.as_secs_f64() * 1000.0;
        match response {
            Ok(response) => {
                let request = response.request();
                let size = match response.response().body().size() {
                    BodySize::Sized(bytes) => bytes.to_string(),
                    BodySize::None => "0".to_string(),
                    BodySize::Stream => "-".to_string(),
                };
                // Escaped: a `"` or a control character in the path cannot forge a field
                // or a log line.
                log::info!(
                    target: REQUEST_LOG,
                    "{} \"{} {}\" {} {size} {millis:.3}ms",
                    client_ip(request),
                    request.method(),
                    request.path().escape_debug(),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let custom = Method::from_bytes(b"BREW").expect("a valid token");
        assert_eq!(method_label(&custom), "other");
    }
}
