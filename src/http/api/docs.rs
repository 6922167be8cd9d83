//! `GET /api/v1/openapi.json`: the machine-readable description of this API (see
//! `http::openapi`). People read it at `GET /api/docs` (`http::assets::docs_page`).

use actix_web::http::header;
use actix_web::HttpResponse;

use crate::http::openapi;

/// This document: the OpenAPI 3.1 description of every operation of the API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "server",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object))
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        // Built once per process; a new version of the server may describe more.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(openapi::json())
}
