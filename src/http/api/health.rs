//! `/healthz`: answers `200` only when the database answers.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::schemas::ErrorBody;
use crate::store::Store;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Health check: `200` after a round trip to the database.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "server",
    responses(
        (status = 200, description = "The server and its database answer.", body = Health),
        (status = 503, description = "`unavailable`: the server is shutting down.", body = ErrorBody),
    )
)]
pub async fn healthz(store: web::Data<Store>) -> Result<HttpResponse, ApiError> {
    store
        // A literal is INTEGER on PostgreSQL (read as i32); SQLite reads any integer so.
        .read(|db| Ok(db.query_row("SELECT 1", &[], |r| r.get::<i32>(0))?))
        .await?;
    Ok(HttpResponse::Ok().json(Health { status: "ok" }))
}
