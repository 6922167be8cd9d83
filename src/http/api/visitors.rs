//! `/api/v1/visitors`: anonymous or named customers.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::context::ContextInput;
use crate::domain::{Caller, Visitor};
use crate::http::error::ApiError;
use crate::http::extract::{client_ip, token_hash, user_agent};
use crate::http::params::{json_or_default, JsonObject, ResourceId};
use crate::http::schemas::ErrorBody;
use crate::services::identity::Claim;
use crate::services::privacy::{PrivacyService, VisitorExport};
use crate::services::visitors::{Contact, VisitorService};

/// A visitor's contact details; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct VisitorContact {
    /// 1–100 characters after trimming, something visible (else `422`).
    name: Option<String>,
    /// An email address (else `422`); stored lower-cased.
    email: Option<String>,
    /// Accepted and ignored here: the page is taken when the visitor is created.
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

/// A new visitor: anonymous, named, or a logged-in user of the host site that vouches for
/// it with `identity_hash`. Every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NewVisitorRequest {
    /// 1–100 characters after trimming, something visible (else `422`).
    name: Option<String>,
    /// An email address (else `422`); stored lower-cased.
    email: Option<String>,
    /// The page the visitor is on; kept only if it is an http(s) URL of at most 2048 bytes.
    page_url: Option<String>,
    /// The host site's own id for its logged-in user: 1–256 bytes, no control characters,
    /// taken exactly as sent. Needs `identity_hash`.
    external_id: Option<String>,
    /// Lowercase hex HMAC-SHA256 of `external_id`'s bytes, keyed with the server's identity
    /// secret. Computed by the host site's server, never in the browser.
    identity_hash: Option<String>,
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

/// Creates a visitor and its token, or signs in a logged-in user of the host site.
///
/// Anonymous visitors are allowed (the body may be empty) unless the server requires
/// identity verification. With a correct `external_id` and `identity_hash`, the visitor
/// already bound to that id is answered with `200` and a new token (its chats on every
/// device; `name` and `email`, when given, update it), or a new one is bound with `201`.
/// The token is shown only here.
#[utoipa::path(
    post,
    path = "/api/v1/visitors",
    tag = "visitors",
    // A `ref` makes the body optional: `Option<…>` would also document a `null` body.
    request_body(
        content = ref("#/components/schemas/NewVisitorRequest"),
        content_type = "application/json",
        description = "Optional: an empty body makes an anonymous visitor.",
    ),
    responses(
        (status = 200, description = "The visitor already bound to this `external_id`, and a \
            new token for it.", body = NewVisitor),
        (status = 201, description = "The new visitor and its token.", body = NewVisitor),
        (status = 401, description = "`unauthorized`: a missing or wrong `identity_hash`, or \
            no identity while the server requires one.", body = ErrorBody),
        (status = 422, description = "`invalid`: a bad name, email or `external_id`, \
            `identity_hash` without `external_id`, or identity fields sent to a server \
            without an identity secret.", body = ErrorBody),
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
    let given: NewVisitorRequest = json_or_default(&req, &body)?;
    let contact = Contact {
        name: given.name,
        email: given.email,
    };
    let claim = Claim {
        external_id: given.external_id,
        identity_hash: given.identity_hash,
    };
    let created = visitors
        .create(client_ip(&req), contact, given.page_url.as_deref(), claim)
        .await?;
    let answer = NewVisitor {
        visitor: created.visitor,
        token: created.token,
    };
    Ok(if created.new {
        HttpResponse::Created().json(answer)
    } else {
        HttpResponse::Ok().json(answer)
    })
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

/// Everything kept about a visitor (admins; GDPR Art. 15).
///
/// The visitor, and each of its chats with all their messages, oldest first. The agents'
/// private notes are included (they are about the visitor), marked `private: true`; files
/// are given by their `attachment.url`, which an admin's token downloads.
#[utoipa::path(
    get,
    path = "/api/v1/visitors/{id}/export",
    tag = "visitors",
    params(("id" = String, Path, description = "The visitor's id.")),
    responses(
        (status = 200, description = "The visitor's data.", body = VisitorExport),
        (status = 404, description = "`not_found`: no such visitor.", body = ErrorBody),
    )
)]
pub async fn export_visitor(
    privacy: web::Data<PrivacyService>,
    caller: Caller,
    path: web::Path<ResourceId>,
) -> Result<HttpResponse, ApiError> {
    let export = privacy.export(&caller, path.into_inner().0).await?;
    Ok(HttpResponse::Ok().json(export))
}

/// Erases a visitor (admins; GDPR Art. 17).
///
/// The visitor, its chats, their messages, files, search entries, labels and rating, and
/// the webhook payloads about them are deleted; its tokens stop working at once on every
/// instance (held polls answer `401`); a `visitor.deleted` webhook is queued. On SQLite the
/// answer comes once the data has left the database file and its write-ahead log.
#[utoipa::path(
    delete,
    path = "/api/v1/visitors/{id}",
    tag = "visitors",
    params(("id" = String, Path, description = "The visitor's id.")),
    responses(
        (status = 204, description = "The visitor and everything about it are gone."),
        (status = 404, description = "`not_found`: no such visitor.", body = ErrorBody),
    )
)]
pub async fn delete_visitor(
    privacy: web::Data<PrivacyService>,
    caller: Caller,
    path: web::Path<ResourceId>,
) -> Result<HttpResponse, ApiError> {
    privacy.erase(&caller, path.into_inner().0).await?;
    Ok(HttpResponse::NoContent().finish())
}
