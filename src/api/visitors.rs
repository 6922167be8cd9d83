//! `/api/v1/visitors`: anonymous or named customers.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::api::{client_ip, json_or_default};
use crate::auth::{self, new_token, Caller};
use crate::domain::{self, parse_email, parse_name, parse_page_url};
use crate::error::ApiError;
use crate::model::Visitor;
use crate::state::AppState;
use crate::store::{tokens, visitors};

#[derive(Debug, Default, Deserialize)]
pub struct VisitorContact {
    name: Option<String>,
    email: Option<String>,
    page_url: Option<String>,
}

impl VisitorContact {
    /// Empty strings clear nothing and set nothing: they count as "not given".
    fn validated(&self) -> Result<(Option<String>, Option<String>), ApiError> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.trim().is_empty())
        }
        Ok((
            given(&self.name).map(parse_name).transpose()?,
            given(&self.email).map(parse_email).transpose()?,
        ))
    }
}

/// `POST /api/v1/visitors` → `201 {visitor, token}`; the token is shown only here.
pub async fn create_visitor(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    state
        .limits
        .check_new_visitor(client_ip(&req, state.config.trust_proxy))?;
    let contact: VisitorContact = json_or_default(&req, &body)?;
    let (name, email) = contact.validated()?;
    let visitor = Visitor {
        id: domain::new_id(),
        name,
        email,
        page_url: contact.page_url.as_deref().and_then(parse_page_url),
        created_at: domain::now(),
    };
    let token = new_token("visitor");
    let stored = visitor.clone();
    state
        .store
        .write(move |conn| {
            visitors::insert(conn, &stored)?;
            tokens::insert(
                conn,
                &token.hash,
                "visitor",
                &stored.id,
                &stored.created_at,
                None,
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Created().json(json!({"visitor": visitor, "token": token.token})))
}

/// `GET /api/v1/visitors/me` → `200 {visitor}`.
pub async fn get_me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let id = caller.require_visitor()?.to_string();
    let visitor = state
        .store
        .read(move |conn| visitors::find(conn, &id)?.ok_or(ApiError::NotFound))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "visitor": visitor })))
}

/// `PATCH /api/v1/visitors/me` body `{name?, email?}` → `200 {visitor}`.
pub async fn update_me(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<VisitorContact>,
) -> Result<HttpResponse, ApiError> {
    let id = caller.require_visitor()?.to_string();
    let (name, email) = body.validated()?;
    let visitor = state
        .store
        .write(move |conn| {
            visitors::update_contact(conn, &id, name.as_deref(), email.as_deref())?;
            visitors::find(conn, &id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "visitor": visitor })))
}

/// `POST /api/v1/visitors/me/token` → `200 {token}`: a new token; the old one stops working.
pub async fn rotate_token(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = caller.require_visitor()?.to_string();
    let old = auth::bearer(&req)
        .map(auth::hash_token)
        .ok_or(ApiError::Unauthorized)?;
    let token = new_token("visitor");
    let hash = token.hash;
    state
        .store
        .write(move |conn| {
            tokens::delete(conn, &old)?;
            tokens::insert(conn, &hash, "visitor", &id, &domain::now(), None)?;
            Ok(())
        })
        .await?;
    state.sessions.forget(&old);
    Ok(HttpResponse::Ok().json(json!({ "token": token.token })))
}
