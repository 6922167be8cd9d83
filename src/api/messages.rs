//! `/api/v1/chats/{id}/messages`, `/typing` and `/read`: sending, and the long poll.

use std::future::Future;

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::attachments::Upload;
use crate::api::chats::{ensure_visible, visible_chat};
use crate::api::{client_ip, cursor_after, page_limit, poll_wait};
use crate::auth;
use crate::auth::Caller;
use crate::domain::{self, ClientId, MessageBody};
use crate::error::ApiError;
use crate::hub::{PollSlot, Published};
use crate::metrics;
use crate::model::{Chat, Message, ReadMarkers, Typing};
use crate::state::AppState;
use crate::store::messages::{self, NewMessage};
use crate::store::{attachments, chats};

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
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    state
        .limits
        .check_send(client_ip(&req, state.config.trust_proxy), &caller)?;
    let SendMessage { body, client_id } = body.into_inner();
    let body = MessageBody::parse(body)?;
    let client_id = client_id.map(ClientId::parse).transpose()?;
    let chat_id = path.into_inner();
    let (message, created) = append(&state, caller, chat_id, body, client_id, None).await?;
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
    upload: Option<Upload>,
) -> Result<(Message, bool), ApiError> {
    let id = chat_id.clone();
    let hooks = state.webhooks.clone();
    let hub = state.hub.clone();
    let (message, created, published) = state
        .store
        .write(move |conn| {
            // Read before the chat snapshot below, so the snapshot is never newer than it.
            let state_version = hub.state_version(&id);
            let access = visible_chat(conn, &id, &caller)?;
            if let Some(client_id) = &client_id {
                if let Some(original) =
                    messages::find_by_client_id(conn, &id, caller.id(), client_id.as_str())?
                {
                    return Ok((original, false, None));
                }
            }
            let author = messages::author(conn, caller.id())?;
            let attachment = match upload {
                Some(Upload { attachment, data }) => {
                    attachments::insert(conn, &id, &attachment, &data, &domain::now())?;
                    Some(attachment)
                }
                None => None,
            };
            let reopens = access.status == "closed" && !caller.is_agent();
            if reopens {
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
                    attachment,
                },
            )?;
            hooks.message_created(conn, &message)?;
            // Hand the message and its chat to waiting pollers, so they answer without a read.
            // (Not when a reopen came first: then the pollers need two messages.)
            let published = if reopens || !hub.has_poller_at(&id, access.last_seq) {
                None
            } else {
                let mut chat = chats::find_bare(conn, &id)?.ok_or(ApiError::NotFound)?;
                chat.last_message = Some(message.clone());
                Some(Published {
                    prev_seq: access.last_seq,
                    message: message.clone(),
                    chat,
                    state_version,
                })
            };
            Ok((message, true, published))
        })
        .await?;
    if created {
        state.hub.message_added(&chat_id, message.seq, published);
        state.webhooks.wake();
    }
    Ok((message, created))
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

/// What a message poll answers.
#[derive(Debug, Serialize)]
pub struct PollResponse {
    messages: Vec<Message>,
    next: i64,
    has_more: bool,
    chat: Chat,
    typing: Typing,
    read: ReadMarkers,
    /// Version of `typing` and `read`; pass it back as `state` in the next poll.
    state: u64,
}

/// `GET /api/v1/chats/{id}/messages?after=SEQ&wait=SECONDS&limit=N` — the long poll.
/// With `before=SEQ` instead, a page of older history (never held).
///
/// A plain `fn` returning an `async move` block, not an `async fn`: an `async fn` keeps a
/// second copy of its arguments in its future, which a parked poll would carry for its whole
/// wait (see the size test in `api`).
#[allow(clippy::manual_async_fn, reason = "an async fn copies its arguments")]
pub fn list_messages(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PollQuery>,
) -> impl Future<Output = Result<HttpResponse, ApiError>> {
    async move {
        let chat_id: &str = &path;
        let limit = page_limit(query.limit)?;
        let after = cursor_after(query.after)?;
        let wait = poll_wait(query.wait, state.config.max_wait())?;
        if let Some(before) = query.before {
            let page = read_page(&state, &caller, chat_id, Cursor::Before(before), limit).await?;
            return Ok(HttpResponse::Ok().json(page));
        }
        if wait.is_zero() || state.hub.is_shutting_down() {
            let page = read_page(&state, &caller, chat_id, Cursor::After(after), limit).await?;
            return Ok(HttpResponse::Ok().json(page));
        }

        let slot = hold_slot(&state, &req);
        // Register before reading (see `hub`): a commit after the read still wakes us.
        let subscription = state.hub.subscribe(chat_id, after);
        let changed = subscription.notify().notified();
        tokio::pin!(changed);
        changed.as_mut().enable();

        // The page is only a temporary here: as a local it would stay in the parked future.
        if let Some(answer) = answer_now(
            read_page(&state, &caller, chat_id, Cursor::After(after), limit).await?,
            query.state,
        ) {
            return Ok(answer);
        }
        let held = metrics::HeldPoll::start("message");
        held.woken(tokio::select! {
            _ = &mut changed => "change",
            _ = tokio::time::sleep(wait) => "timeout",
            _ = state.hub.shutting_down() => "shutdown",
            _ = slot.evicted() => "evicted",
        });
        // Woken by the one message that follows our cursor? Then its writer's copy is the answer.
        let version = state.hub.state_version(chat_id);
        if let Some(published) = state
            .hub
            .published_after(chat_id, after)
            .filter(|p| p.state_version == version)
        {
            return Ok(HttpResponse::Ok().json(PollResponse {
                messages: vec![published.message.clone()],
                next: published.message.seq,
                has_more: false,
                chat: published.chat.clone(),
                typing: state.hub.typing(chat_id),
                read: published.chat.read,
                state: version,
            }));
        }
        let page = read_page(&state, &caller, chat_id, Cursor::After(after), limit).await?;
        Ok(HttpResponse::Ok().json(page))
    }
}

/// The answer to a poll that need not wait: new messages, or a typing/read state newer than
/// the `known` one.
fn answer_now(page: PollResponse, known: Option<u64>) -> Option<HttpResponse> {
    let stale_state = known.is_some_and(|known| known != page.state);
    (!page.messages.is_empty() || stale_state).then(|| HttpResponse::Ok().json(page))
}

/// This poll's place among its token's held polls (see [`crate::hub::Hub::claim_poll_slot`]).
pub fn hold_slot(state: &AppState, req: &HttpRequest) -> PollSlot {
    let token = auth::bearer(req).map(auth::hash_token).unwrap_or_default();
    state
        .hub
        .claim_poll_slot(token, state.config.max_polls_per_token)
}

enum Cursor {
    After(i64),
    Before(i64),
}

/// Boxed, so a parked poll's future holds only what it waits with: inline, a read's state
/// (its answer, the pool's and the blocking task's futures) would more than double the
/// memory each of 10,000 held polls costs.
fn read_page<'a>(
    state: &'a AppState,
    caller: &Caller,
    chat_id: &str,
    cursor: Cursor,
    limit: usize,
) -> LocalBoxFuture<'a, Result<PollResponse, ApiError>> {
    let caller = caller.clone();
    let id = chat_id.to_string();
    // The version is read before the state it describes, so it never claims too much.
    let version = state.hub.state_version(chat_id);
    let typing = state.hub.typing(chat_id);
    Box::pin(state.store.read(move |conn| {
        // One read of the chat serves the access check, the markers and the answer.
        let mut chat = chats::find_bare(conn, &id)?.ok_or(ApiError::NotFound)?;
        ensure_visible(&caller, &chat.visitor.id)?;
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
        chat.last_message = match page.messages.last() {
            Some(last) if last.seq == chat.last_seq => Some(last.clone()),
            _ if chat.last_seq > 0 => messages::find_by_seq(conn, chat.last_seq)?,
            _ => None,
        };
        Ok(PollResponse {
            messages: page.messages,
            next,
            has_more: page.has_more,
            read: chat.read,
            chat,
            typing,
            state: version,
        })
    }))
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
        state.hub.state_changed(&chat_id);
    }
    Ok(HttpResponse::NoContent().finish())
}
