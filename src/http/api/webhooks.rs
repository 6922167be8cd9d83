//! `/api/v1/webhooks` (admins only): register, list and delete outgoing webhooks.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::Config;
use crate::domain::Caller;
use crate::http::error::ApiError;
use crate::http::params::{JsonObject, ResourceId};
use crate::http::schemas::{ErrorBody, WebhookEvent, WebhookSchema};
use crate::services::webhooks::{self, NewWebhook, Webhooks};
use crate::store::webhooks::Webhook;
use crate::store::Store;

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"url": "https://hooks.example.invalid/parley", "events": ["chat.closed"]}))]
pub struct CreateWebhook {
    /// An absolute http(s) URL of at most 2048 bytes, not into the local network (unless
    /// the server allows it).
    url: String,
    /// The events to send (repeats count once).
    #[schema(min_items = 1, inline, value_type = Vec<WebhookEvent>)]
    events: Vec<String>,
    /// The signing key, 1–256 bytes; generated when left out.
    #[schema(min_length = 1, max_length = 256)]
    secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewWebhookAnswer {
    #[schema(value_type = WebhookSchema)]
    pub webhook: Webhook,
    /// The signing key of `X-Parley-Signature`, shown only here.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    #[schema(value_type = Vec<WebhookSchema>)]
    pub webhooks: Vec<Webhook>,
}

/// Registers an outgoing webhook (admins).
///
/// The secret (generated when absent) is shown only here.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The webhook and its secret.", body = NewWebhookAnswer),
        (status = 422, description = "`invalid`: a bad URL, event or secret.", body = ErrorBody),
    )
)]
pub async fn create_webhook(
    config: web::Data<Config>,
    store: web::Data<Store>,
    hooks: web::Data<Webhooks>,
    caller: Caller,
    body: JsonObject<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let CreateWebhook {
        url,
        events,
        secret,
    } = body.into_inner();
    let new = NewWebhook::parse(url, events, secret, config.webhook_allow_private)?;
    let (webhook, secret) = webhooks::register(&store, &hooks, &caller, new).await?;
    Ok(HttpResponse::Created().json(NewWebhookAnswer { webhook, secret }))
}

/// Every webhook, without its secret (admins).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    responses((status = 200, description = "Every webhook.", body = WebhookList))
)]
pub async fn list_webhooks(
    store: web::Data<Store>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let all = webhooks::list(&store, &caller).await?;
    Ok(HttpResponse::Ok().json(WebhookList { webhooks: all }))
}

/// Deletes a webhook (admins); its undelivered events are dropped.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`not_found`: no such webhook.", body = ErrorBody),
    )
)]
pub async fn delete_webhook(
    store: web::Data<Store>,
    hooks: web::Data<Webhooks>,
    caller: Caller,
    path: web::Path<ResourceId>,
) -> Result<HttpResponse, ApiError> {
    webhooks::remove(&store, &hooks, &caller, path.into_inner().0).await?;
    Ok(HttpResponse::NoContent().finish())
}
