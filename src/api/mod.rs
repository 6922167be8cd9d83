//! The HTTP API under `/api/v1`: one module per resource, wired together here.

pub mod agents;
pub mod attachments;
pub mod chats;
pub mod health;
pub mod inbox;
pub mod messages;
pub mod settings;
pub mod visitors;
pub mod webhooks;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::{web, HttpRequest};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;
use crate::held_request;

/// Largest JSON request body; a message of 4000 characters of 4-byte UTF-8 fits easily.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PayloadConfig::new(MAX_JSON_BYTES))
        .route("/healthz", web::get().to(health::healthz))
        .service(
            web::scope("/api/v1")
                .service(web::resource("/config").route(web::get().to(settings::client_config)))
                .service(web::resource("/visitors").route(web::post().to(visitors::create_visitor)))
                .service(
                    web::resource("/visitors/me")
                        .route(web::get().to(visitors::get_me))
                        .route(web::patch().to(visitors::update_me)),
                )
                .service(
                    web::resource("/visitors/me/token")
                        .route(web::post().to(visitors::rotate_token)),
                )
                .service(
                    web::resource("/chats")
                        .route(web::post().to(chats::create_chat))
                        .route(web::get().to(chats::list_chats)),
                )
                .service(web::resource("/chats/mine").route(web::get().to(chats::my_chat)))
                .service(
                    web::resource("/chats/{id}")
                        .route(web::get().to(chats::get_chat))
                        .route(web::patch().to(chats::update_chat)),
                )
                .service(
                    web::resource("/chats/{id}/messages")
                        // The long poll holds its requests (see `held_request`).
                        .wrap_fn(held_request::compact)
                        .route(web::post().to(messages::send_message))
                        .route(web::get().to(messages::list_messages)),
                )
                .service(
                    web::resource("/chats/{id}/typing").route(web::post().to(messages::set_typing)),
                )
                .service(
                    web::resource("/chats/{id}/read").route(web::post().to(messages::mark_read)),
                )
                .service(web::resource("/agents/login").route(web::post().to(agents::login)))
                .service(web::resource("/agents/logout").route(web::post().to(agents::logout)))
                .service(web::resource("/agents/me").route(web::get().to(agents::me)))
                .service(
                    web::resource("/agents/me/password")
                        .route(web::post().to(agents::change_password)),
                )
                .service(web::resource("/agents/{id}").route(web::patch().to(agents::update_agent)))
                .service(
                    web::resource("/agents")
                        .route(web::post().to(agents::create_agent))
                        .route(web::get().to(agents::list_agents)),
                )
                .service(
                    web::resource("/chats/{id}/attachments")
                        .route(web::post().to(attachments::upload_attachment)),
                )
                .service(
                    web::resource("/attachments/{id}")
                        .route(web::get().to(attachments::download_attachment)),
                )
                .service(
                    web::resource("/inbox")
                        .wrap_fn(held_request::compact)
                        .route(web::get().to(inbox::poll_inbox)),
                )
                .service(
                    web::resource("/webhooks")
                        .route(web::post().to(webhooks::create_webhook))
                        .route(web::get().to(webhooks::list_webhooks)),
                )
                .service(
                    web::resource("/webhooks/{id}")
                        .route(web::delete().to(webhooks::delete_webhook)),
                ),
        );
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_JSON_BYTES)
        // actix accepts `application/json` and `+json` types; anything else (or none) is a 415.
        .error_handler(|error, _req| json_error(error).into())
}

fn json_error(error: JsonPayloadError) -> ApiError {
    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge(format!(
                "request body is larger than {MAX_JSON_BYTES} bytes"
            ))
        }
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("request body must be application/json".into())
        }
        JsonPayloadError::Deserialize(e) => ApiError::bad_request(format!("invalid JSON: {e}")),
        other => ApiError::bad_request(format!("could not read the body: {other}")),
    }
}

fn query_error(error: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(format!("invalid query parameters: {error}")).into()
}

/// The client's address: the peer, or with `trust_proxy` what the proxy says it is.
pub fn client_ip(req: &HttpRequest, trust_proxy: bool) -> IpAddr {
    if trust_proxy {
        let forwarded = req.connection_info().realip_remote_addr().and_then(|addr| {
            addr.parse::<IpAddr>()
                .ok()
                .or_else(|| addr.parse::<SocketAddr>().ok().map(|a| a.ip()))
        });
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    req.peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip())
}

/// Parses an optional JSON body: an empty body means `T::default()`.
pub fn json_or_default<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(|t| t.starts_with("application/json")) {
        return Err(ApiError::UnsupportedMediaType(
            "request body must be application/json".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// Tells a field that is absent (`None`) from one that is `null` (`Some(None)`).
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `wait` as the contract reads it: seconds, default 0, clamped to the server's maximum.
pub fn poll_wait(
    wait: Option<f64>,
    max: std::time::Duration,
) -> Result<std::time::Duration, ApiError> {
    match wait {
        None => Ok(std::time::Duration::ZERO),
        Some(w) if w.is_finite() && w >= 0.0 => {
            Ok(std::time::Duration::from_secs_f64(w.min(max.as_secs_f64())))
        }
        Some(_) => Err(ApiError::bad_request(
            "wait must be a non-negative number of seconds",
        )),
    }
}

/// `after` as the contract reads it: a seq, default 0.
pub fn cursor_after(after: Option<i64>) -> Result<i64, ApiError> {
    match after.unwrap_or(0) {
        a if a < 0 => Err(ApiError::bad_request("after must not be negative")),
        a => Ok(a),
    }
}

/// `limit` as the contract reads it: default 100, at most 500, at least 1.
pub fn page_limit(limit: Option<i64>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if n < 1 => Err(ApiError::bad_request("limit must be at least 1")),
        Some(n) => Ok(n.min(500) as usize),
    }
}

#[cfg(test)]
mod tests {
    /// What one held poll's handler future occupies: actix boxes it for as long as the poll
    /// is parked, so with 10,000 polls every byte here costs 10 kB.
    fn future_size<Args, F: actix_web::Handler<Args>>(_: &F) -> usize {
        std::mem::size_of::<F::Future>()
    }

    #[test]
    fn held_poll_futures_stay_small() {
        let message_poll = future_size(&super::messages::list_messages);
        let inbox_poll = future_size(&super::inbox::poll_inbox);
        eprintln!("message poll {message_poll} B, inbox poll {inbox_poll} B");
        // Reads boxed and no argument copies (see `messages::list_messages`): it was 1,664.
        assert!(
            message_poll <= 768,
            "message poll future is {message_poll} bytes"
        );
        assert!(inbox_poll <= 768, "inbox poll future is {inbox_poll} bytes");
    }
}
