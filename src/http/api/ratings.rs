//! `/api/v1/chats/{id}/rating`: the visitor's rating of its closed chat.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Caller, NewRating, Rating};
use crate::http::error::ApiError;
use crate::http::params::{JsonObject, ResourceId};
use crate::http::schemas::ErrorBody;
use crate::services::chats::ChatService;

/// A rating of a chat.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"rating": 5, "comment": "Quick and kind, thank you!"}))]
pub struct RateChat {
    /// 1 (poor) to 5 (excellent).
    #[schema(minimum = 1, maximum = 5)]
    rating: i64,
    /// At most 1000 characters; blank counts as none.
    #[schema(max_length = 1000)]
    comment: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RatingAnswer {
    pub rating: Rating,
}

/// Rates a closed chat (its visitor, once).
///
/// The rating then shows in the chat's `rating` and counts for the agent the chat was
/// assigned to at this moment.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/rating",
    tag = "chats",
    params(("id" = String, Path, description = "The chat's id.")),
    request_body = RateChat,
    responses(
        (status = 201, description = "The rating, recorded.", body = RatingAnswer),
        (status = 404, description = "`not_found`: no such chat, or another visitor's.", body = ErrorBody),
        (status = 409, description = "`conflict`: the chat is still open, or rated already.", body = ErrorBody),
        (status = 422, description = "`invalid`: a rating outside 1-5 or a comment over 1000 characters.", body = ErrorBody),
    )
)]
pub async fn rate_chat(
    chats: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<ResourceId>,
    body: JsonObject<RateChat>,
) -> Result<HttpResponse, ApiError> {
    caller.require_visitor()?;
    let RateChat { rating, comment } = body.into_inner();
    let rating = NewRating::parse(rating, comment)?;
    let rating = chats.rate(&caller, path.into_inner().0, rating).await?;
    Ok(HttpResponse::Created().json(RatingAnswer { rating }))
}
