//! `/api/v1/chats`: a visitor's conversation, and the agents' view of all of them.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::context::ContextInput;
use crate::domain::{parse_label, Caller, Chat, ChatStatus, Labels, MessageBody};
use crate::http::api::messages::created_or_ok;
use crate::http::error::ApiError;
use crate::http::extract::user_agent;
use crate::http::params::{double_option, json_or_default, page_limit, JsonObject, ResourceId};
use crate::http::schemas::{string_enum, ErrorBody};
use crate::services::chats::{AssigneeFilter, ChatChange, ChatService, ListFilter};

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatAnswer {
    pub chat: Chat,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatList {
    pub chats: Vec<Chat>,
}

/// What a visitor may send when opening a chat; the body may be empty.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NewChat {
    /// Where the visitor is (bad values: `422`); the server adds the browser and OS from
    /// the `User-Agent`.
    context: Option<ContextInput>,
}

/// Opens a chat for the calling visitor, or answers its open one.
///
/// A visitor has at most one open chat: while it has one, this answers it with `200`.
/// Either way the visitor's context is updated: the fields of `context` given, and the
/// browser from the request's `User-Agent`.
#[utoipa::path(
    post,
    path = "/api/v1/chats",
    tag = "chats",
    request_body(
        content = ref("#/components/schemas/NewChat"),
        content_type = "application/json",
        description = "Optional: an empty body opens a chat without context.",
    ),
    responses(
        (status = 201, description = "A new chat.", body = ChatAnswer),
        (status = 200, description = "The visitor's open chat.", body = ChatAnswer),
        (status = 422, description = "`invalid`: a bad context, or the visitor has too many chats (50).", body = ErrorBody),
    )
)]
pub async fn create_chat(
    chats: web::Data<ChatService>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let given: NewChat = json_or_default(&req, &body)?;
    let context = given.context.map(ContextInput::validate).transpose()?;
    let (chat, created) = chats
        .open_for_visitor(&caller, context, user_agent(&req))
        .await?;
    Ok(created_or_ok(created).json(ChatAnswer { chat }))
}

/// The calling visitor's chat: the open one, else the most recent one.
#[utoipa::path(
    get,
    path = "/api/v1/chats/mine",
    tag = "chats",
    responses(
        (status = 200, description = "The visitor's chat.", body = ChatAnswer),
        (status = 404, description = "`not_found`: the visitor has no chat yet.", body = ErrorBody),
    )
)]
pub async fn my_chat(
    chats: web::Data<ChatService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let chat = chats.current_for_visitor(&caller).await?;
    Ok(HttpResponse::Ok().json(ChatAnswer { chat }))
}

fn list_status() -> utoipa::openapi::Object {
    string_enum(
        &["open", "closed", "all"],
        None,
        "Which chats: `open`, `closed` or `all`. The default is `open`, or `all` with \
         `visitor_id`.",
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Which chats: `open`, `closed` or `all`. The default is `open`, or `all` with
    /// `visitor_id`.
    #[param(schema_with = list_status)]
    status: Option<String>,
    /// `me`, `none` or an agent id.
    assignee: Option<String>,
    /// Only chats with this label (1–32 characters after trimming, no control characters;
    /// else `400`).
    #[param(max_length = 32)]
    label: Option<String>,
    /// Only this visitor's chats: a returning visitor's history (every status unless
    /// `status` says otherwise). Not a UUID: `400`.
    #[param(format = "uuid")]
    visitor_id: Option<String>,
    /// At most this many chats: default 100, larger values count as 500.
    #[param(minimum = 1, default = 100)]
    limit: Option<i64>,
}

/// Chats, by most recent activity (agents).
///
/// Filters combine: `?visitor_id=…` lists one visitor's chats (all statuses by default),
/// `?label=…` the chats with that label.
#[utoipa::path(
    get,
    path = "/api/v1/chats",
    tag = "chats",
    params(ListQuery),
    responses((status = 200, description = "The chats, most recent activity first.", body = ChatList))
)]
pub async fn list_chats(
    chats: web::Data<ChatService>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_agent()?;
    let default_status = if query.visitor_id.is_some() {
        "all"
    } else {
        "open"
    };
    let status = match query.status.as_deref().unwrap_or(default_status) {
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
    let label = query
        .label
        .as_deref()
        .map(parse_label)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Visitor ids are UUIDs: anything else names no visitor, and is a mistake worth saying.
    if query
        .visitor_id
        .as_deref()
        .is_some_and(|id| uuid::Uuid::parse_str(id).is_err())
    {
        return Err(ApiError::bad_request(
            "visitor_id must be a visitor's id (a UUID)",
        ));
    }
    let filter = ListFilter {
        status,
        assignee,
        label,
        visitor_id: query.visitor_id.clone(),
        limit: page_limit(query.limit)?,
    };
    let found = chats.list(&caller, filter).await?;
    Ok(HttpResponse::Ok().json(ChatList { chats: found }))
}

/// One chat (agents, or the chat's visitor).
#[utoipa::path(
    get,
    path = "/api/v1/chats/{id}",
    tag = "chats",
    params(("id" = String, Path, description = "The chat's id.")),
    responses(
        (status = 200, description = "The chat.", body = ChatAnswer),
        (status = 404, description = "`not_found`: no such chat, or not the caller's.", body = ErrorBody),
    )
)]
pub async fn get_chat(
    chats: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<ResourceId>,
) -> Result<HttpResponse, ApiError> {
    let chat = chats.get(caller, path.into_inner().0).await?;
    Ok(HttpResponse::Ok().json(ChatAnswer { chat }))
}

/// A change to a chat; a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatUpdate {
    /// `open` or `closed` (else `422`).
    #[schema(value_type = Option<ChatStatus>)]
    status: Option<String>,
    /// An active agent's id, or `null` to unassign (an unknown or disabled agent is `422`).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    assignee_id: Option<Option<String>>,
    /// Replaces the chat's labels: each 1–32 characters after trimming, no control
    /// characters, at most 20 (else `400`); duplicates count once. `[]` removes them all.
    #[schema(max_items = 20)]
    labels: Option<Vec<String>>,
    /// With `assignee_id`: a private note to the new assignee (the rules of a message
    /// body, else `422`), stored right after the `assigned` system message when the
    /// assignee changes.
    #[schema(min_length = 1, max_length = 4000)]
    note: Option<String>,
}

/// Closes, reopens, assigns or unassigns a chat, or sets its labels (agents).
///
/// Each effective change of status or assignee appends a system message (`closed`,
/// `reopened`, `assigned`); a transfer's `note` follows it as a private note by the acting
/// agent. Labels change without a message.
#[utoipa::path(
    patch,
    path = "/api/v1/chats/{id}",
    tag = "chats",
    params(("id" = String, Path, description = "The chat's id.")),
    request_body = ChatUpdate,
    responses(
        (status = 200, description = "The chat as changed.", body = ChatAnswer),
        (status = 404, description = "`not_found`: no such chat.", body = ErrorBody),
        (status = 400, description = "`bad_request`: a label that is empty, longer than 32 characters or has control characters, or more than 20 labels.", body = ErrorBody),
        (status = 422, description = "`invalid`: a bad status, an assignee that is not an active agent, a note without `assignee_id` or with a blank or too long body.", body = ErrorBody),
    )
)]
pub async fn update_chat(
    chats: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<ResourceId>,
    body: JsonObject<ChatUpdate>,
) -> Result<HttpResponse, ApiError> {
    caller.require_agent()?;
    let ChatUpdate {
        status,
        assignee_id,
        labels,
        note,
    } = body.into_inner();
    let labels = labels
        .map(Labels::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let note = note.map(MessageBody::parse).transpose()?;
    let status = status
        .map(|s| {
            ChatStatus::parse(&s).ok_or_else(|| ApiError::invalid("status must be open or closed"))
        })
        .transpose()?;
    let change = ChatChange {
        status,
        assignee_id,
        labels,
        note,
    };
    let chat = chats.change(&caller, path.into_inner().0, change).await?;
    Ok(HttpResponse::Ok().json(ChatAnswer { chat }))
}
