//! `/api/v1/canned`: the team's canned responses; agents read them, admins write them.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::canned::CannedResponse;
use crate::domain::Caller;
use crate::http::error::ApiError;
use crate::http::params::{JsonObject, ResourceId};
use crate::http::schemas::ErrorBody;
use crate::services::canned::{self, CannedChange, NewCanned};
use crate::store::Store;

#[derive(Debug, Serialize, ToSchema)]
pub struct CannedList {
    /// By shortcut, in byte order.
    pub canned: Vec<CannedResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CannedAnswer {
    pub canned: CannedResponse,
}

/// A new canned response.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"shortcut": "refund", "body": "Hi {{visitor.name}}, your refund is on its way."}))]
pub struct CreateCanned {
    /// 1–32 of `a-z`, `0-9`, `_` and `-`, not taken by another response.
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    shortcut: String,
    /// Under the rules of a message body: not blank, at most 4000 characters. May hold
    /// `{{visitor.name}}`, `{{visitor.email}}` and `{{agent.name}}`, stored as written.
    body: String,
}

/// A change to a canned response; a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CannedUpdate {
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    shortcut: Option<String>,
    body: Option<String>,
}

/// Every canned response, by shortcut (agents).
#[utoipa::path(
    get,
    path = "/api/v1/canned",
    tag = "canned",
    responses((status = 200, description = "Every canned response, by shortcut.", body = CannedList))
)]
pub async fn list_canned(
    store: web::Data<Store>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let all = canned::list(&store, &caller).await?;
    Ok(HttpResponse::Ok().json(CannedList { canned: all }))
}

/// Adds a canned response (admins).
///
/// A team keeps at most 500: past that, and for a shortcut already taken, the answer is
/// `409`.
#[utoipa::path(
    post,
    path = "/api/v1/canned",
    tag = "canned",
    request_body = CreateCanned,
    responses(
        (status = 201, description = "The new canned response.", body = CannedAnswer),
        (status = 409, description = "`conflict`: the shortcut is taken, or 500 canned responses exist.", body = ErrorBody),
        (status = 422, description = "`invalid`: a bad shortcut or body.", body = ErrorBody),
    )
)]
pub async fn create_canned(
    store: web::Data<Store>,
    caller: Caller,
    body: JsonObject<CreateCanned>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let CreateCanned { shortcut, body } = body.into_inner();
    let new = NewCanned::parse(&shortcut, body)?;
    let created = canned::create(&store, &caller, new).await?;
    Ok(HttpResponse::Created().json(CannedAnswer { canned: created }))
}

/// Changes a canned response's shortcut or body (admins).
#[utoipa::path(
    patch,
    path = "/api/v1/canned/{id}",
    tag = "canned",
    params(("id" = String, Path, description = "The canned response's id.")),
    request_body = CannedUpdate,
    responses(
        (status = 200, description = "The canned response as changed.", body = CannedAnswer),
        (status = 404, description = "`not_found`: no such canned response.", body = ErrorBody),
        (status = 409, description = "`conflict`: another response has this shortcut.", body = ErrorBody),
        (status = 422, description = "`invalid`: a bad shortcut or body.", body = ErrorBody),
    )
)]
pub async fn update_canned(
    store: web::Data<Store>,
    caller: Caller,
    path: web::Path<ResourceId>,
    body: JsonObject<CannedUpdate>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let CannedUpdate { shortcut, body } = body.into_inner();
    let change = CannedChange::parse(shortcut.as_deref(), body)?;
    let changed = canned::change(&store, &caller, path.into_inner().0, change).await?;
    Ok(HttpResponse::Ok().json(CannedAnswer { canned: changed }))
}

/// Deletes a canned response (admins).
#[utoipa::path(
    delete,
    path = "/api/v1/canned/{id}",
    tag = "canned",
    params(("id" = String, Path, description = "The canned response's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`not_found`: no such canned response.", body = ErrorBody),
    )
)]
pub async fn delete_canned(
    store: web::Data<Store>,
    caller: Caller,
    path: web::Path<ResourceId>,
) -> Result<HttpResponse, ApiError> {
    canned::remove(&store, &caller, path.into_inner().0).await?;
    Ok(HttpResponse::NoContent().finish())
}
