//! `GET /api/v1/config`: the limits a client needs to know before it sends anything.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::Config;
use crate::domain::MAX_BODY_CHARS;

/// The limits a client needs before it sends anything.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientConfig {
    /// Largest upload, in bytes.
    pub max_upload: usize,
    /// Longest message body, in characters.
    pub max_body_chars: usize,
    /// Longest `wait` of a poll, in seconds.
    pub poll_timeout: u64,
}

/// The limits a client needs before it sends anything.
///
/// Public: nothing here is secret, and the visitor page needs it before it has a token.
#[utoipa::path(
    get,
    path = "/api/v1/config",
    tag = "server",
    responses((status = 200, description = "The server's limits.", body = ClientConfig))
)]
pub async fn client_config(config: web::Data<Config>) -> HttpResponse {
    HttpResponse::Ok().json(ClientConfig {
        max_upload: config.max_upload,
        max_body_chars: MAX_BODY_CHARS,
        poll_timeout: config.poll_timeout,
    })
}
