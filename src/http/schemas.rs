//! The shapes the handlers' OpenAPI annotations name that no domain type has: the error
//! body, the poll answer, the webhook, and schemas for a string enum and a poll's `state`.
//! Kept apart from `http::openapi`, which assembles the document from the handlers, so the
//! handlers depend on these and the document on the handlers, never both ways.

use utoipa::ToSchema;

use crate::domain::{Chat, Message, ReadMarkers, Typing};

/// The error shape of every non-2xx answer.
#[derive(ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "not found"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people; may change between versions.
    pub message: String,
}

/// The machine-readable error codes (see `http::error::ApiError::code`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    Invalid,
    RateLimited,
    RequestTimeout,
    InsufficientStorage,
    Unavailable,
    Internal,
}

/// What a message poll (or a page of history) answers. Mirrors
/// `services::messages::PollAnswer`; a unit test holds the two to the same keys.
#[derive(ToSchema)]
#[schema(as = PollAnswer)]
pub struct PollAnswerSchema {
    /// Ascending by `seq`; empty on a timeout or a typing/read-only change.
    pub messages: Vec<Message>,
    /// The last returned `seq`, or `after` when none: pass it as the next `after`.
    #[schema(minimum = 0)]
    pub next: i64,
    /// More messages are waiting (or, with `before`, older ones exist).
    pub has_more: bool,
    pub chat: Chat,
    pub typing: Typing,
    pub read: ReadMarkers,
    #[schema(schema_with = poll_state)]
    pub state: u64,
}

/// An outgoing webhook, without its secret. Mirrors `store::webhooks::Webhook`; a unit test
/// holds the two to the same keys.
#[derive(ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookSchema {
    #[schema(format = "uuid")]
    pub id: String,
    pub url: String,
    #[schema(value_type = Vec<WebhookEvent>)]
    pub events: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub disabled: bool,
}

/// The events a webhook can subscribe to (`services::webhooks::EVENTS`; a unit test holds
/// the two to the same names).
#[derive(ToSchema)]
pub enum WebhookEvent {
    #[schema(rename = "message.created")]
    MessageCreated,
    #[schema(rename = "chat.created")]
    ChatCreated,
    #[schema(rename = "chat.closed")]
    ChatClosed,
    /// An erasure: `{visitor_id, chat_ids}`, nothing personal.
    #[schema(rename = "visitor.deleted")]
    VisitorDeleted,
}

/// The schema of a string that takes one of `values`, for `#[param(schema_with = …)]`
/// (which drops the field's doc comment: hence `description`).
pub fn string_enum(
    values: &[&str],
    default: Option<&str>,
    description: &str,
) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .default(default.map(Into::into))
        .description(Some(description))
        .build()
}

/// The schema of a poll's `state`, a `u64` (utoipa's own `int64` would stop at `i64::MAX`),
/// for the answer's field and the query parameter alike.
pub fn poll_state() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .minimum(Some(0))
        .maximum(Some(usize::try_from(u64::MAX).unwrap_or(usize::MAX)))
        .description(Some(
            "A version of the chat's `typing` and `read`. Passed back as `state`, it makes the \
             next poll answer at once if either changed in between.",
        ))
        .build()
}
