//! `/api/v1/chats`: a visitor's conversation, and the agents' view of all of them.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{Caller, ChatStatus};
use crate::http::api::messages::created_or_ok;
use crate::http::error::ApiError;
use crate::http::params::{double_option, page_limit};
use crate::services::chats::{AssigneeFilter, ChatChange, ChatService};

/// `POST /api/v1/chats` (visitor) → `201 {chat}` new, or `200 {chat}` the open one.
pub async fn create_chat(
    chats: web::Data<ChatService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (chat, created) = chats.open_for_visitor(&caller).await?;
    Ok(created_or_ok(created).json(json!({ "chat": chat })))
}

/// `GET /api/v1/chats/mine` (visitor) → the open chat, else the most recent one, else `404`.
pub async fn my_chat(
    chats: web::Data<ChatService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let chat = chats.current_for_visitor(&caller).await?;
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
    chats: web::Data<ChatService>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_agent()?;
    let status = match query.status.as_deref().unwrap_or("open") {
        "all" => None,
        other => Some(
            ChatStatus::parse(other)
                .ok_or_else(|| ApiError::bad_request("status must be open, closed or all"))?,
        ),
    };
    let assignee = match query.assignee.as_deref() {
        None => AssigneeFilter::Anyone,
        Some("me") => AssigneeFilter::Me,
        Some("none") => AssigneeFilter::Unassigned,
        Some(id) => AssigneeFilter::Agent(id.to_string()),
    };
    let limit = page_limit(query.limit)?;
    let found = chats.list(&caller, status, assignee, limit).await?;
    Ok(HttpResponse::Ok().json(json!({ "chats": found })))
}

/// `GET /api/v1/chats/{id}` (agent, or the chat's visitor).
pub async fn get_chat(
    chats: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let chat = chats.get(caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "chat": chat })))
}

#[derive(Debug, Deserialize)]
pub struct ChatUpdate {
    status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    assignee_id: Option<Option<String>>,
}

/// `PATCH /api/v1/chats/{id}` (agent) body `{status?, assignee_id?}`.
pub async fn update_chat(
    chats: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<ChatUpdate>,
) -> Result<HttpResponse, ApiError> {
    caller.require_agent()?;
    let ChatUpdate {
        status,
        assignee_id,
    } = body.into_inner();
    let status = status
        .map(|s| {
            ChatStatus::parse(&s).ok_or_else(|| ApiError::invalid("status must be open or closed"))
        })
        .transpose()?;
    let change = ChatChange {
        status,
        assignee_id,
    };
    let chat = chats.change(&caller, path.into_inner(), change).await?;
    Ok(HttpResponse::Ok().json(json!({ "chat": chat })))
}
