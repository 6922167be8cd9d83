//! `/api/v1/chats/{id}/messages`, `/typing` and `/read`: sending, and the long poll.

use std::future::Future;

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::{ready, Either};
use serde::Deserialize;
use serde_json::json;

use crate::config::Config;
use crate::domain::{Caller, ClientId, MessageBody};
use crate::http::error::ApiError;
use crate::http::extract::{client_ip, token_hash};
use crate::http::params::{cursor_after, page_limit, poll_wait};
use crate::poll::Hub;
use crate::services::messages::{Cursor, MessageService, PollRequest};

#[derive(Debug, Deserialize)]
pub struct SendMessage {
    body: String,
    client_id: Option<String>,
}

/// `POST /api/v1/chats/{id}/messages` → `201 {message}` once committed, or `200 {message}`
/// with the original when this author already sent this `client_id` in this chat.
pub async fn send_message(
    messages: web::Data<MessageService>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    messages.check_send(client_ip(&req), &caller)?;
    let SendMessage { body, client_id } = body.into_inner();
    let body = MessageBody::parse(body)?;
    let client_id = client_id.map(ClientId::parse).transpose()?;
    let (message, created) = messages
        .append(caller, path.into_inner(), body, client_id, None)
        .await?;
    Ok(created_or_ok(created).json(json!({ "message": message })))
}

/// `201` for something new, `200` for what existed (an idempotent repeat).
pub fn created_or_ok(created: bool) -> actix_web::HttpResponseBuilder {
    if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
}

#[derive(Debug, Deserialize)]
pub struct PollQuery {
    after: Option<i64>,
    /// The `state` of the previous answer: a newer typing/read state answers at once.
    state: Option<u64>,
    before: Option<i64>,
    wait: Option<f64>,
    limit: Option<i64>,
}

/// `GET /api/v1/chats/{id}/messages?after=SEQ&wait=SECONDS&limit=N` — the long poll.
/// With `before=SEQ` instead, a page of older history (never held).
///
/// A plain `fn` that reads the query before it returns an `async move` block: the block
/// keeps only what the wait needs, where an `async fn` would keep every argument (twice) for
/// the whole wait of a parked poll (see the size test in `http::api`).
#[allow(clippy::manual_async_fn, reason = "an async fn copies its arguments")]
pub fn list_messages(
    messages: web::Data<MessageService>,
    hub: web::Data<Hub>,
    config: web::Data<Config>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PollQuery>,
) -> impl Future<Output = Result<HttpResponse, ApiError>> {
    let prepared = poll_request(&query, &config).and_then(|request| {
        let slot = match request.cursor {
            Cursor::After(_) if !request.wait.is_zero() => Some(hub.claim_slot(token_hash(&req)?)),
            _ => None,
        };
        Ok((request, slot))
    });
    let (request, slot) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return Either::Left(ready(Err(error))),
    };
    Either::Right(async move {
        let answer = messages
            .poll(&caller, &path, &request, slot.as_ref())
            .await?;
        Ok(HttpResponse::Ok().json(answer))
    })
}

fn poll_request(query: &PollQuery, config: &Config) -> Result<PollRequest, ApiError> {
    let limit = page_limit(query.limit)?;
    let after = cursor_after(query.after)?;
    let wait = poll_wait(query.wait, config.max_wait())?;
    Ok(PollRequest {
        cursor: query.before.map_or(Cursor::After(after), Cursor::Before),
        limit,
        wait,
        known_state: query.state,
    })
}

#[derive(Debug, Deserialize)]
pub struct TypingUpdate {
    typing: bool,
}

/// `POST /api/v1/chats/{id}/typing` body `{typing}` → `204`.
pub async fn set_typing(
    messages: web::Data<MessageService>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<TypingUpdate>,
) -> Result<HttpResponse, ApiError> {
    messages
        .set_typing(caller, path.into_inner(), body.typing)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
pub struct ReadUpdate {
    seq: i64,
}

/// `POST /api/v1/chats/{id}/read` body `{seq}` → `204`; the marker only moves forward.
pub async fn mark_read(
    messages: web::Data<MessageService>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<ReadUpdate>,
) -> Result<HttpResponse, ApiError> {
    messages
        .mark_read(caller, path.into_inner(), body.seq)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
