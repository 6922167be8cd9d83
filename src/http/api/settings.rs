//! `GET /api/v1/config`: the limits a client needs to know before it sends anything.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::config::Config;
use crate::domain::MAX_BODY_CHARS;

/// Public: nothing here is secret, and the visitor page needs it before it has a token.
pub async fn client_config(config: web::Data<Config>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "max_upload": config.max_upload,
        "max_body_chars": MAX_BODY_CHARS,
        "poll_timeout": config.poll_timeout,
    }))
}
