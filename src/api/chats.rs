//! `/api/v1/chats`: a visitor's conversation, and the agents' view of all of them.

use actix_web::{web, HttpResponse};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::json;

use crate::api::{double_option, page_limit};
use crate::auth::Caller;
use crate::domain;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::chats::{self, Access, Filter};
use crate::store::{agents, messages};

/// Most chats one visitor may open over its lifetime; a brake on scripted abuse.
pub const MAX_CHATS_PER_VISITOR: i64 = 50;

/// The chat if `caller` may see it (see [`ensure_visible`]).
pub fn visible_chat(conn: &Connection, chat_id: &str, caller: &Caller) -> Result<Access, ApiError> {
    let access = chats::access(conn, chat_id)?.ok_or(ApiError::NotFound)?;
    ensure_visible(caller, &access.visitor_id)?;
    Ok(access)
}

/// Agents see every chat, a visitor only its own. A visitor asking for another's chat gets
/// the same `404` as for a chat that does not exist, so existence is not leaked.
pub fn ensure_visible(caller: &Caller, chat_visitor_id: &str) -> Result<(), ApiError> {
    match caller {
        Caller::Agent { .. } => Ok(()),
        Caller::Visitor { id } if id == chat_visitor_id => Ok(()),
        Caller::Visitor { .. } => Err(ApiError::NotFound),
    }
}

/// `POST /api/v1/chats` (visitor) → `201 {chat}` new, or `200 {chat}` the open one.
pub async fn create_chat(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let visitor_id = caller.require_visitor()?.to_string();
    let hooks = state.webhooks.clone();
    let (chat, created) = state
        .store
        .write(move |conn| {
            if let Some(open) = chats::open_id_for_visitor(conn, &visitor_id)? {
                return Ok((chats::find(conn, &open)?.ok_or(ApiError::NotFound)?, false));
            }
            if chats::count_for_visitor(conn, &visitor_id)? >= MAX_CHATS_PER_VISITOR {
                return Err(ApiError::invalid("this visitor has opened too many chats"));
            }
            let id = domain::new_id();
            chats::insert(conn, &id, &visitor_id, &domain::now())?;
            let chat = chats::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            hooks.chat_created(conn, &chat)?;
            Ok((chat, true))
        })
        .await?;
    if created {
        state.webhooks.wake();
    }
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(json!({ "chat": chat })))
}

/// `GET /api/v1/chats/mine` (visitor) → the open chat, else the most recent one, else `404`.
pub async fn my_chat(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let visitor_id = caller.require_visitor()?.to_string();
    let chat = state
        .store
        .read(move |conn| chats::current_for_visitor(conn, &visitor_id)?.ok_or(ApiError::NotFound))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "chat": chat })))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    /// `me`, `none` or an agent id.
    assignee: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/chats?status=open|closed|all&assignee=me|none|ID&limit=N` (agent).
pub async fn list_chats(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = caller.require_agent()?.to_string();
    let status = match query.status.as_deref().unwrap_or("open") {
        "all" => None,
        s @ ("open" | "closed") => Some(s.to_string()),
        _ => return Err(ApiError::bad_request("status must be open, closed or all")),
    };
    let assignee = match query.assignee.as_deref() {
        None => None,
        Some("me") => Some(agent_id),
        Some("none") => Some(String::new()),
        Some(id) => Some(id.to_string()),
    };
    let limit = page_limit(query.limit)?;
    let chats = state
        .store
        .read(move |conn| {
            let filter = Filter {
                status: status.as_deref(),
                assignee: assignee.as_deref(),
                limit,
            };
            Ok(chats::list(conn, &filter)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "chats": chats })))
}

/// `GET /api/v1/chats/{id}` (agent, or the chat's visitor).
pub async fn get_chat(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let chat_id = path.into_inner();
    let chat = state
        .store
        .read(move |conn| {
            visible_chat(conn, &chat_id, &caller)?;
            chats::find(conn, &chat_id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "chat": chat })))
}

#[derive(Debug, Deserialize)]
pub struct ChatUpdate {
    status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    assignee_id: Option<Option<String>>,
}

/// `PATCH /api/v1/chats/{id}` (agent) body `{status?, assignee_id?}`; each effective change
/// appends a system message, so pollers learn of it through the same cursor.
pub async fn update_chat(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<ChatUpdate>,
) -> Result<HttpResponse, ApiError> {
    let actor_id = caller.require_agent()?.to_string();
    let chat_id = path.into_inner();
    let ChatUpdate {
        status,
        assignee_id,
    } = body.into_inner();
    if let Some(s) = status.as_deref() {
        if s != "open" && s != "closed" {
            return Err(ApiError::invalid("status must be open or closed"));
        }
    }
    let id = chat_id.clone();
    let hooks = state.webhooks.clone();
    let (chat, changed) = state
        .store
        .write(move |conn| {
            let access = chats::access(conn, &id)?.ok_or(ApiError::NotFound)?;
            let actor = messages::author(conn, &actor_id)?;
            let actor_name = actor.name.clone().unwrap_or_else(|| "an agent".into());
            let mut changed = false;
            if let Some(status) = status.filter(|s| *s != access.status) {
                chats::set_status(conn, &id, &status, &domain::now())?;
                let (event, body) = if status == "closed" {
                    ("closed", format!("Chat closed by {actor_name}"))
                } else {
                    ("reopened", format!("Chat reopened by {actor_name}"))
                };
                let message = messages::insert_event(conn, &id, event, body, Some(actor.clone()))?;
                if event == "closed" {
                    hooks.chat_closed(conn, &message)?;
                }
                changed = true;
            }
            if let Some(assignee_id) = assignee_id {
                let current = chats::find(conn, &id)?
                    .ok_or(ApiError::NotFound)?
                    .assignee
                    .map(|a| a.id);
                if current != assignee_id {
                    let body = match assignee_id.as_deref() {
                        Some(new_id) => {
                            let assignee = agents::find(conn, new_id)?
                                .filter(|a| !a.disabled)
                                .ok_or_else(|| {
                                    ApiError::invalid("assignee_id is not an active agent")
                                })?;
                            format!("Assigned to {} by {actor_name}", assignee.name)
                        }
                        None => format!("Unassigned by {actor_name}"),
                    };
                    chats::set_assignee(conn, &id, assignee_id.as_deref())?;
                    messages::insert_event(conn, &id, "assigned", body, Some(actor))?;
                    changed = true;
                }
            }
            Ok((chats::find(conn, &id)?.ok_or(ApiError::NotFound)?, changed))
        })
        .await?;
    if changed {
        state.hub.message_added(&chat_id, chat.last_seq, None);
        state.webhooks.wake();
    }
    Ok(HttpResponse::Ok().json(json!({ "chat": chat })))
}
