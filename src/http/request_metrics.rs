//! The request middleware that counts, times and logs every request.

use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

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
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // The pattern, not the path: one series per route however many chats there are.
    let route = routes::pattern_of(req.path()).unwrap_or("unmatched");
    let method = method_label(req.method());
    let response = next.call(req).await;
    let elapsed = started.elapsed();
    let status = match &response {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    metrics::http_request(route, method, status.as_str(), elapsed);
    if log::log_enabled!(target: REQUEST_LOG, log::Level::Info) {
        let millis = elapsed.as_secs_f64() * 1000.0;
        match &response {
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
    response
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
