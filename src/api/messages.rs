//! `/api/v1/chats/{id}/messages`, `/typing` and `/read`: sending, and the long poll.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::chats::visible_chat;
use crate::api::{cursor_after, page_limit, poll_wait};
use crate::auth::Caller;
use crate::domain::{self, ClientId, MessageBody};
use crate::error::ApiError;
use crate::metrics;
use crate::model::{Chat, Message, ReadMarkers, Typing};
use crate::state::AppState;
use crate::store::chats;
use crate::store::messages::{self, NewMessage};

#[derive(Debug, Deserialize)]
pub struct SendMessage {
    body: String,
    client_id: Option<String>,
}

/// `POST /api/v1/chats/{id}/messages` → `201 {message}` once committed, or `200 {message}`
/// with the original when this author already sent this `client_id` in this chat.
pub async fn send_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    let SendMessage { body, client_id } = body.into_inner();
    let body = MessageBody::parse(body)?;
    let client_id = client_id.map(ClientId::parse).transpose()?;
    let chat_id = path.into_inner();
    let (message, created) = append(&state, caller, chat_id, body, client_id).await?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(json!({ "message": message })))
}

/// Commits a visitor's or agent's message (reopening a closed chat a visitor writes to),
/// then wakes the chat's and the inbox's pollers. Returns whether it is new.
pub async fn append(
    state: &AppState,
    caller: Caller,
    chat_id: String,
    body: MessageBody,
    client_id: Option<ClientId>,
) -> Result<(Message, bool), ApiError> {
    let id = chat_id.clone();
    let hooks = state.webhooks.clone();
    let outcome = state
        .store
        .write(move |conn| {
            let access = visible_chat(conn, &id, &caller)?;
            if let Some(client_id) = &client_id {
                if let Some(original) =
                    messages::find_by_client_id(conn, &id, caller.id(), client_id.as_str())?
                {
                    return Ok((original, false));
                }
            }
            let author = messages::author(conn, caller.id())?;
            if access.status == "closed" && !caller.is_agent() {
                chats::set_status(conn, &id, "open", &domain::now())?;
                messages::insert_event(
                    conn,
                    &id,
                    "reopened",
                    "Chat reopened by the visitor".into(),
                    Some(author.clone()),
                )?;
            }
            let message = messages::insert(
                conn,
                NewMessage {
                    id: domain::new_id(),
                    chat_id: &id,
                    sender: if caller.is_agent() {
                        "agent"
                    } else {
                        "visitor"
                    },
                    author: Some(author),
                    body: body.into_inner(),
                    client_id: client_id.map(|c| c.as_str().to_string()),
                    event: None,
                    created_at: domain::now(),
                },
            )?;
            hooks.message_created(conn, &message)?;
            Ok((message, true))
        })
        .await?;
    if outcome.1 {
        state.hub.message_added(&chat_id);
        state.webhooks.wake();
    }
    Ok(outcome)
}

#[derive(Debug, Deserialize)]
pub struct PollQuery {
    after: Option<i64>,
    before: Option<i64>,
    wait: Option<f64>,
    limit: Option<i64>,
}

/// What a message poll answers.
#[derive(Debug, Serialize)]
pub struct PollResponse {
    messages: Vec<Message>,
    next: i64,
    has_more: bool,
    chat: Chat,
    typing: Typing,
    read: ReadMarkers,
}

/// `GET /api/v1/chats/{id}/messages?after=SEQ&wait=SECONDS&limit=N` — the long poll.
/// With `before=SEQ` instead, a page of older history (never held).
pub async fn list_messages(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<PollQuery>,
) -> Result<HttpResponse, ApiError> {
    let chat_id = path.into_inner();
    let limit = page_limit(query.limit)?;
    let after = cursor_after(query.after)?;
    let wait = poll_wait(query.wait, state.config.max_wait())?;
    if let Some(before) = query.before {
        let page = read_page(&state, &caller, &chat_id, Cursor::Before(before), limit).await?;
        return Ok(HttpResponse::Ok().json(page));
    }
    if wait.is_zero() || state.hub.is_shutting_down() {
        let page = read_page(&state, &caller, &chat_id, Cursor::After(after), limit).await?;
        return Ok(HttpResponse::Ok().json(page));
    }

    // Register before reading (see `hub`): a commit after the read still wakes us.
    let subscription = state.hub.subscribe(&chat_id);
    let changed = subscription.notify().notified();
    tokio::pin!(changed);
    changed.as_mut().enable();

    let page = read_page(&state, &caller, &chat_id, Cursor::After(after), limit).await?;
    if !page.messages.is_empty() {
        return Ok(HttpResponse::Ok().json(page));
    }
    let held = metrics::HeldPoll::start("message");
    held.woken(tokio::select! {
        _ = &mut changed => "change",
        _ = tokio::time::sleep(wait) => "timeout",
        _ = state.hub.shutting_down() => "shutdown",
    });
    let page = read_page(&state, &caller, &chat_id, Cursor::After(after), limit).await?;
    Ok(HttpResponse::Ok().json(page))
}

enum Cursor {
    After(i64),
    Before(i64),
}

async fn read_page(
    state: &AppState,
    caller: &Caller,
    chat_id: &str,
    cursor: Cursor,
    limit: usize,
) -> Result<PollResponse, ApiError> {
    let caller = caller.clone();
    let id = chat_id.to_string();
    let typing = state.hub.typing(chat_id);
    state
        .store
        .read(move |conn| {
            let access = visible_chat(conn, &id, &caller)?;
            let (page, next) = match cursor {
                Cursor::After(after) => {
                    let page = messages::after(conn, &id, after, limit)?;
                    let next = page.messages.last().map_or(after, |m| m.seq);
                    (page, next)
                }
                Cursor::Before(before) => {
                    let page = messages::before(conn, &id, before, limit)?;
                    let next = page.messages.last().map_or(before.max(1) - 1, |m| m.seq);
                    (page, next)
                }
            };
            let chat = chats::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok(PollResponse {
                messages: page.messages,
                next,
                has_more: page.has_more,
                chat,
                typing,
                read: access.read,
            })
        })
        .await
}

#[derive(Debug, Deserialize)]
pub struct TypingUpdate {
    typing: bool,
}

/// `POST /api/v1/chats/{id}/typing` body `{typing}` → `204`.
pub async fn set_typing(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<TypingUpdate>,
) -> Result<HttpResponse, ApiError> {
    let chat_id = path.into_inner();
    let id = chat_id.clone();
    let agent_side = caller.is_agent();
    state
        .store
        .read(move |conn| visible_chat(conn, &id, &caller).map(|_| ()))
        .await?;
    state.hub.set_typing(&chat_id, agent_side, body.typing);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
pub struct ReadUpdate {
    seq: i64,
}

/// `POST /api/v1/chats/{id}/read` body `{seq}` → `204`; the marker only moves forward.
pub async fn mark_read(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<ReadUpdate>,
) -> Result<HttpResponse, ApiError> {
    let seq = body.seq;
    if seq < 0 {
        return Err(ApiError::invalid("seq must not be negative"));
    }
    let chat_id = path.into_inner();
    let id = chat_id.clone();
    let moved = state
        .store
        .write(move |conn| {
            visible_chat(conn, &id, &caller)?;
            Ok(chats::mark_read(conn, &id, caller.is_agent(), seq)?)
        })
        .await?;
    if moved {
        state.hub.chat_changed(&chat_id);
    }
    Ok(HttpResponse::NoContent().finish())
}
