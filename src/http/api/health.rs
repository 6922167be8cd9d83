//! `/healthz`: answers `200` only when the database answers.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::http::error::ApiError;
use crate::store::Store;

pub async fn healthz(store: web::Data<Store>) -> Result<HttpResponse, ApiError> {
    store
        .read(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ok"})))
}
