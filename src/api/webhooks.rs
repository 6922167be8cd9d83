//! `/api/v1/webhooks` (admins only): register, list and delete outgoing webhooks.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Caller;
use crate::domain;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::webhooks::{self, Webhook};
use crate::webhooks::NewWebhook;

#[derive(Debug, Deserialize)]
pub struct CreateWebhook {
    url: String,
    events: Vec<String>,
    secret: Option<String>,
}

/// `POST /api/v1/webhooks` (admin) body `{url, events, secret?}` →
/// `201 {webhook, secret}`; the secret (generated when absent) is shown only here.
pub async fn create_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let CreateWebhook {
        url,
        events,
        secret,
    } = body.into_inner();
    let new = NewWebhook::parse(url, events, secret)?;
    let webhook = Webhook {
        id: domain::new_id(),
        url: new.url,
        events: new.events,
        created_at: domain::now(),
        disabled: false,
    };
    let secret = new.secret;
    let hooks = state.webhooks.clone();
    let (webhook, secret) = state
        .store
        .write(move |conn| {
            webhooks::insert(conn, &webhook, &secret)?;
            // In the writer, so every change committed after this one is reported.
            hooks.set_active(true);
            Ok((webhook, secret))
        })
        .await?;
    Ok(HttpResponse::Created().json(json!({ "webhook": webhook, "secret": secret })))
}

/// `GET /api/v1/webhooks` (admin) → `200 {webhooks}`, without their secrets.
pub async fn list_webhooks(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let all = state.store.read(|conn| Ok(webhooks::list(conn)?)).await?;
    Ok(HttpResponse::Ok().json(json!({ "webhooks": all })))
}

/// `DELETE /api/v1/webhooks/{id}` (admin) → `204`; its undelivered events are dropped.
pub async fn delete_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let id = path.into_inner();
    let hooks = state.webhooks.clone();
    state
        .store
        .write(move |conn| {
            if !webhooks::delete(conn, &id)? {
                return Err(ApiError::NotFound);
            }
            hooks.set_active(webhooks::count_active(conn)? > 0);
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
