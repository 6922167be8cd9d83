//! `GET /metrics`: every counter of the server in the Prometheus text format.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::config::Config;
use crate::http::error::ApiError;
use crate::metrics::{self, AgentRatings};
use crate::store::{ratings, Store};

/// Every counter of the server, in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "server",
    responses((status = 200, description = "The Prometheus text format (version 0.0.4).",
        content_type = "text/plain", body = String))
)]
pub async fn scrape(
    config: web::Data<Config>,
    store: web::Data<Store>,
) -> Result<HttpResponse, ApiError> {
    // One small grouped read: a row per rated agent.
    let rated = store.read(|db| Ok(ratings::by_agent(db)?)).await?;
    let per_agent: Vec<AgentRatings> = rated
        .iter()
        .map(|r| AgentRatings {
            agent: r.agent_email.as_deref().unwrap_or("unassigned"),
            count: r.count,
            average: r.average,
        })
        .collect();
    let text = metrics::render(database_size(&config.db), &per_agent)
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, prometheus::TEXT_FORMAT))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(text))
}

/// The database file plus its `-wal` file: what the data takes on disk right now. Read from
/// file metadata, so a scrape costs no database connection.
fn database_size(db: &std::path::Path) -> i64 {
    let size = |path: &std::path::Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let total = size(db) + size(std::path::Path::new(&wal));
    i64::try_from(total).unwrap_or(i64::MAX)
}
