//! `/api/v1/chats/{id}/messages`, `/typing` and `/read`: sending, and the long poll.

use std::future::Future;

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::{ready, Either};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::config::Config;
use crate::domain::{Caller, ClientId, Message, MessageBody};
use crate::http::error::ApiError;
use crate::http::extract::{client_ip, token_hash};
use crate::http::params::{cursor_after, page_limit, poll_wait, JsonObject, ResourceId};
use crate::http::schemas::{ErrorBody, PollAnswerSchema};
use crate::poll::Hub;
use crate::services::messages::{Cursor, MessageService, PollRequest};

/// A new message.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendMessage {
    /// Not blank, at most 4000 characters, no NUL (else `422`); stored verbatim.
    #[schema(min_length = 1, max_length = 4000)]
    body: String,
    /// An idempotency key: 1–64 of `A-Z a-z 0-9 _ -` (else `422`). Best time-ordered, like
    /// the web UI's: the index that enforces it then grows at one end.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    client_id: Option<String>,
    /// `true`: a private note, for the agents only (agents; a visitor sending `true` gets
    /// `403`). Default `false`.
    #[serde(default)]
    private: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageAnswer {
    pub message: Message,
}

/// Sends a message into a chat (agents, or the chat's visitor).
///
/// `201` means the message is committed. Sending the same `client_id` again (same author,
/// same chat) creates nothing and answers `200` with the original. A visitor writing into a
/// closed chat reopens it. An agent's `private: true` message is a note for the agents: the
/// visitor never sees it (not in polls, pages, `last_message`, `last_seq` or unread
/// counts), and it neither reopens a chat nor counts as unread for anyone.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/messages",
    tag = "messages",
    params(("id" = String, Path, description = "The chat's id.")),
    request_body = SendMessage,
    responses(
        (status = 201, description = "The new message, committed.", body = MessageAnswer),
        (status = 200, description = "A repeated `client_id`: the original message.", body = MessageAnswer),
        (status = 403, description = "`forbidden`: a visitor sent `private: true`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such chat, or not the caller's.", body = ErrorBody),
        (status = 422, description = "`invalid`: a blank or too long body, or a bad `client_id`.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: sending too fast.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    )
)]
pub async fn send_message(
    messages: web::Data<MessageService>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<ResourceId>,
    body: JsonObject<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    messages.check_send(client_ip(&req), &caller)?;
    let SendMessage {
        body,
        client_id,
        private,
    } = body.into_inner();
    if private {
        // Before the body's checks: a visitor learns it may not, whatever it wrote.
        caller.require_agent()?;
    }
    let body = MessageBody::parse(body)?;
    let client_id = client_id.map(ClientId::parse).transpose()?;
    let (message, created) = messages
        .append(caller, path.into_inner().0, body, client_id, None, private)
        .await?;
    Ok(created_or_ok(created).json(MessageAnswer { message }))
}

/// `201` for something new, `200` for what existed (an idempotent repeat).
pub fn created_or_ok(created: bool) -> actix_web::HttpResponseBuilder {
    if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollQuery {
    /// Messages with a `seq` above this one: the previous answer's `next` (default 0).
    #[param(minimum = 0, default = 0)]
    after: Option<i64>,
    /// The `state` of the previous answer: a newer typing/read state answers at once.
    #[param(schema_with = crate::http::schemas::poll_state)]
    state: Option<u64>,
    /// Instead of `after`: the newest messages with a `seq` below this one, a page of
    /// history (never held).
    before: Option<i64>,
    /// Seconds to hold the request while nothing is newer (default 0). Larger values count
    /// as the server's `poll_timeout` (`GET /api/v1/config`; 25 by default).
    #[param(minimum = 0, default = 0)]
    wait: Option<f64>,
    /// At most this many messages: default 100, larger values count as 500.
    #[param(minimum = 1, default = 100)]
    limit: Option<i64>,
}

/// The messages of a chat after a cursor: the long poll (agents, or the chat's visitor).
///
/// Answers the messages with `seq > after`, ascending. When there are none and `wait > 0`,
/// the request is held until anything in the chat changes (a message, typing, a read
/// marker, its status) or `wait` passes. Chaining polls (`after` = the previous `next`)
/// sees every message exactly once, in order. With `before` instead, a page of history.
//
// A plain `fn` that reads the query before it returns an `async move` block: the block
// keeps only what the wait needs, where an `async fn` would keep every argument (twice) for
// the whole wait of a parked poll (see the size test in `http::api`).
#[utoipa::path(
    get,
    path = "/api/v1/chats/{id}/messages",
    tag = "messages",
    params(("id" = String, Path, description = "The chat's id."), PollQuery),
    responses(
        (status = 200, description = "The page, with the chat, typing and read markers.", body = PollAnswerSchema),
        (status = 404, description = "`not_found`: no such chat, or not the caller's.", body = ErrorBody),
    )
)]
#[allow(clippy::manual_async_fn, reason = "an async fn copies its arguments")]
pub fn list_messages(
    messages: web::Data<MessageService>,
    hub: web::Data<Hub>,
    config: web::Data<Config>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<ResourceId>,
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
            .poll(&caller, &path.0, &request, slot.as_ref())
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

#[derive(Debug, Deserialize, ToSchema)]
pub struct TypingUpdate {
    /// `true` lapses by itself 5 s after the last one.
    typing: bool,
}

/// Says whether the caller's side is typing in a chat.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/typing",
    tag = "messages",
    params(("id" = String, Path, description = "The chat's id.")),
    request_body = TypingUpdate,
    responses(
        (status = 204, description = "Noted; pollers of the chat are woken."),
        (status = 404, description = "`not_found`: no such chat, or not the caller's.", body = ErrorBody),
    )
)]
pub async fn set_typing(
    messages: web::Data<MessageService>,
    caller: Caller,
    path: web::Path<ResourceId>,
    body: JsonObject<TypingUpdate>,
) -> Result<HttpResponse, ApiError> {
    messages
        .set_typing(caller, path.into_inner().0, body.typing)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReadUpdate {
    /// The last `seq` the caller's side has read (negative is `422`).
    #[schema(minimum = 0)]
    seq: i64,
}

/// Moves the caller side's read marker forward.
///
/// Never back; clamped to the chat's `last_seq`.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/read",
    tag = "messages",
    params(("id" = String, Path, description = "The chat's id.")),
    request_body = ReadUpdate,
    responses(
        (status = 204, description = "Noted; pollers of the chat are woken."),
        (status = 404, description = "`not_found`: no such chat, or not the caller's.", body = ErrorBody),
        (status = 422, description = "`invalid`: a negative `seq`.", body = ErrorBody),
    )
)]
pub async fn mark_read(
    messages: web::Data<MessageService>,
    caller: Caller,
    path: web::Path<ResourceId>,
    body: JsonObject<ReadUpdate>,
) -> Result<HttpResponse, ApiError> {
    messages
        .mark_read(caller, path.into_inner().0, body.seq)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
