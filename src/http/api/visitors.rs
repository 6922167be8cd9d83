//! `/api/v1/visitors`: anonymous or named customers.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::context::ContextInput;
use crate::domain::{Caller, Visitor};
use crate::http::error::ApiError;
use crate::http::extract::{client_ip, token_hash, user_agent};
use crate::http::openapi::ErrorBody;
use crate::http::params::{json_or_default, JsonObject};
use crate::services::visitors::{Contact, VisitorService};

/// A visitor's contact details; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct VisitorContact {
    /// 1–100 characters after trimming, something visible (else `422`).
    name: Option<String>,
    /// An email address (else `422`); stored lower-cased.
    email: Option<String>,
    /// The page the visitor is on; kept only if it is an http(s) URL of at most 2048 bytes.
    /// Read by `POST /api/v1/visitors` only.
    page_url: Option<String>,
    /// Where the visitor is now; read by `PATCH /api/v1/visitors/me` only (bad values: `422`).
    context: Option<ContextInput>,
}

impl VisitorContact {
    fn contact(self) -> (Contact, Option<String>, Option<ContextInput>) {
        let contact = Contact {
            name: self.name,
            email: self.email,
        };
        (contact, self.page_url, self.context)
    }
}

/// A new visitor and its token.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewVisitor {
    pub visitor: Visitor,
    /// The visitor's bearer token, shown only here.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VisitorAnswer {
    pub visitor: Visitor,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAnswer {
    /// The new bearer token; the old one no longer works.
    pub token: String,
}

/// Creates a visitor and its token.
///
/// Anonymous visitors are allowed: the body may be empty. The token is shown only here.
#[utoipa::path(
    post,
    path = "/api/v1/visitors",
    tag = "visitors",
    // A `ref` makes the body optional: `Option<…>` would also document a `null` body.
    request_body(
        content = ref("#/components/schemas/VisitorContact"),
        content_type = "application/json",
        description = "Optional: an empty body makes an anonymous visitor.",
    ),
    responses(
        (status = 201, description = "The new visitor and its token.", body = NewVisitor),
        (status = 422, description = "`invalid`: a bad name or email.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many new visitors from this address.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "`unavailable`: the server is shutting down.", body = ErrorBody),
    )
)]
pub async fn create_visitor(
    visitors: web::Data<VisitorService>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let given: VisitorContact = json_or_default(&req, &body)?;
    let (contact, page_url, _) = given.contact();
    let (visitor, token) = visitors
        .create(client_ip(&req), contact, page_url.as_deref())
        .await?;
    Ok(HttpResponse::Created().json(NewVisitor { visitor, token }))
}

/// The calling visitor.
#[utoipa::path(
    get,
    path = "/api/v1/visitors/me",
    tag = "visitors",
    responses((status = 200, description = "The calling visitor.", body = VisitorAnswer))
)]
pub async fn get_me(
    visitors: web::Data<VisitorService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let visitor = visitors.me(&caller).await?;
    Ok(HttpResponse::Ok().json(VisitorAnswer { visitor }))
}

/// Changes the calling visitor's name or email, or its context.
///
/// A field left out stays as it is; `page_url` is ignored here. With `context`, the
/// context's fields given replace the stored ones and the browser and OS are taken from
/// this request's `User-Agent`.
#[utoipa::path(
    patch,
    path = "/api/v1/visitors/me",
    tag = "visitors",
    request_body = VisitorContact,
    responses(
        (status = 200, description = "The visitor as changed.", body = VisitorAnswer),
        (status = 422, description = "`invalid`: a bad name, email or context.", body = ErrorBody),
    )
)]
pub async fn update_me(
    visitors: web::Data<VisitorService>,
    caller: Caller,
    req: HttpRequest,
    body: JsonObject<VisitorContact>,
) -> Result<HttpResponse, ApiError> {
    let (contact, _, context) = body.into_inner().contact();
    let context = context.map(ContextInput::validate).transpose()?;
    let visitor = visitors
        .update_contact(&caller, contact, context, user_agent(&req))
        .await?;
    Ok(HttpResponse::Ok().json(VisitorAnswer { visitor }))
}

/// Replaces the calling visitor's token with a new one.
///
/// The old token stops working at once, held polls included.
#[utoipa::path(
    post,
    path = "/api/v1/visitors/me/token",
    tag = "visitors",
    responses((status = 200, description = "The new token.", body = TokenAnswer))
)]
pub async fn rotate_token(
    visitors: web::Data<VisitorService>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let token = visitors.rotate_token(&caller, token_hash(&req)?).await?;
    Ok(HttpResponse::Ok().json(TokenAnswer { token }))
}
