//! `GET /api/v1/openapi.json`: the machine-readable description of this API (see
//! `http::openapi`). People read it at `GET /api/docs` (`http::assets::docs_page`).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// The document to serve, handed in by the server (`http::openapi::json`). The document lists
/// this handler among the others, so the handler takes it from above instead of naming it.
#[derive(Clone, Copy)]
pub struct ApiDocument(pub fn() -> &'static str);

/// This document: the OpenAPI 3.1 description of every operation of the API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "server",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object))
)]
pub async fn openapi_json(document: web::Data<ApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        // Built once per process; a new version of the server may describe more.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body((document.0)())
}
