//! `/api/v1/webhooks` (admins only): register, list and delete outgoing webhooks.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::config::Config;
use crate::domain::Caller;
use crate::http::error::ApiError;
use crate::services::webhooks::{self, NewWebhook, Webhooks};
use crate::store::Store;

#[derive(Debug, Deserialize)]
pub struct CreateWebhook {
    url: String,
    events: Vec<String>,
    secret: Option<String>,
}

/// `POST /api/v1/webhooks` (admin) body `{url, events, secret?}` →
/// `201 {webhook, secret}`; the secret (generated when absent) is shown only here.
pub async fn create_webhook(
    config: web::Data<Config>,
    store: web::Data<Store>,
    hooks: web::Data<Webhooks>,
    caller: Caller,
    body: web::Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let CreateWebhook {
        url,
        events,
        secret,
    } = body.into_inner();
    let new = NewWebhook::parse(url, events, secret, config.webhook_allow_private)?;
    let (webhook, secret) = webhooks::register(&store, &hooks, &caller, new).await?;
    Ok(HttpResponse::Created().json(json!({ "webhook": webhook, "secret": secret })))
}

/// `GET /api/v1/webhooks` (admin) → `200 {webhooks}`, without their secrets.
pub async fn list_webhooks(
    store: web::Data<Store>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let all = webhooks::list(&store, &caller).await?;
    Ok(HttpResponse::Ok().json(json!({ "webhooks": all })))
}

/// `DELETE /api/v1/webhooks/{id}` (admin) → `204`; its undelivered events are dropped.
pub async fn delete_webhook(
    store: web::Data<Store>,
    hooks: web::Data<Webhooks>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    webhooks::remove(&store, &hooks, &caller, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
