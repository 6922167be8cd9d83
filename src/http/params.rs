//! How the API reads what clients send: JSON bodies and their errors, query parameters,
//! the poll's `wait`, `after` and `limit`.

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

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

/// The id in a resource's path (`/chats/{id}`). One with a NUL in it names nothing (and
/// PostgreSQL cannot even compare such text): it is a `404`, like any unknown id.
#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct ResourceId(pub String);

impl TryFrom<String> for ResourceId {
    type Error = &'static str;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        if id.contains('\0') {
            return Err("an id has no NUL");
        }
        Ok(Self(id))
    }
}

pub fn path_error(_error: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::from(crate::domain::DomainError::NotFound).into()
}

pub fn query_error(error: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(format!("invalid query parameters: {error}")).into()
}

/// A JSON request body that must be an object, read with [`json_config`]'s limit and errors.
///
/// `web::Json` alone would also take an array of the fields in order (`[null, null]` for
/// `{status, assignee_id}`: serde reads a struct from either); the API documents objects,
/// and an array is a `400`.
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let value = json.await?.into_inner();
            from_object(value).map(JsonObject).map_err(Into::into)
        })
    }
}

/// `T` from a JSON value that is an object, else `400`.
fn from_object<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// Parses an optional JSON body: an empty body means `T::default()`; otherwise it must be
/// a JSON object (see [`JsonObject`]).
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
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    from_object(value)
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
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Change {
        #[allow(dead_code, reason = "read by the deserializer only")]
        status: Option<String>,
    }

    #[test]
    fn a_body_must_be_an_object_not_an_array_of_its_fields() {
        assert!(from_object::<Change>(serde_json::json!({"status": "open"})).is_ok());
        for value in [
            serde_json::json!(["open"]),
            serde_json::json!(null),
            serde_json::json!("open"),
        ] {
            let error = from_object::<Change>(value).unwrap_err();
            assert_eq!(error.code(), "bad_request");
        }
    }
}
