//! `/api/v1/visitors`: anonymous or named customers.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{client_ip, token_hash};
use crate::http::params::json_or_default;
use crate::services::visitors::{Contact, VisitorService};

#[derive(Debug, Default, Deserialize)]
pub struct VisitorContact {
    name: Option<String>,
    email: Option<String>,
    page_url: Option<String>,
}

impl VisitorContact {
    fn contact(self) -> (Contact, Option<String>) {
        let contact = Contact {
            name: self.name,
            email: self.email,
        };
        (contact, self.page_url)
    }
}

/// `POST /api/v1/visitors` → `201 {visitor, token}`; the token is shown only here.
pub async fn create_visitor(
    visitors: web::Data<VisitorService>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let given: VisitorContact = json_or_default(&req, &body)?;
    let (contact, page_url) = given.contact();
    let (visitor, token) = visitors
        .create(client_ip(&req), contact, page_url.as_deref())
        .await?;
    Ok(HttpResponse::Created().json(json!({"visitor": visitor, "token": token})))
}

/// `GET /api/v1/visitors/me` → `200 {visitor}`.
pub async fn get_me(
    visitors: web::Data<VisitorService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let visitor = visitors.me(&caller).await?;
    Ok(HttpResponse::Ok().json(json!({ "visitor": visitor })))
}

/// `PATCH /api/v1/visitors/me` body `{name?, email?}` → `200 {visitor}`.
pub async fn update_me(
    visitors: web::Data<VisitorService>,
    caller: Caller,
    body: web::Json<VisitorContact>,
) -> Result<HttpResponse, ApiError> {
    let (contact, _) = body.into_inner().contact();
    let visitor = visitors.update_contact(&caller, contact).await?;
    Ok(HttpResponse::Ok().json(json!({ "visitor": visitor })))
}

/// `POST /api/v1/visitors/me/token` → `200 {token}`: a new token; the old one stops working.
pub async fn rotate_token(
    visitors: web::Data<VisitorService>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let token = visitors.rotate_token(&caller, token_hash(&req)?).await?;
    Ok(HttpResponse::Ok().json(json!({ "token": token })))
}
