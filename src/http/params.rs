//! How the API reads what clients send: JSON bodies and their errors, query parameters,
//! the poll's `wait`, `after` and `limit`.

use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::{web, HttpRequest};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::http::error::ApiError;

/// Largest JSON request body; a message of 4000 characters of 4-byte UTF-8 fits easily.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

pub fn json_config() -> web::JsonConfig {
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

pub fn query_error(error: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(format!("invalid query parameters: {error}")).into()
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
