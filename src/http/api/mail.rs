//! Email's routes: redeeming a continuity link, unsubscribing, asking for a transcript, and
//! the admins' view of the outbox.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::{Caller, Visitor};
use crate::http::error::ApiError;
use crate::http::extract::client_ip;
use crate::http::params::{JsonObject, ResourceId};
use crate::http::schemas::ErrorBody;
use crate::services::mail::MailService;
use crate::store::mail::MailStatus;

/// A continuity link from an email.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ContinueLink {
    /// The whole link (`https://…/?continue=…`) or just its `continue` value.
    #[schema(max_length = 2048)]
    link: String,
}

/// The visitor a continuity link names, and a new token for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContinueAnswer {
    pub visitor: Visitor,
    /// A new bearer token of that visitor, shown only here (its other tokens go on working).
    pub token: String,
}

/// Redeems a continuity link from an email: the same visitor, in this browser.
///
/// The link is signed by the server and expires 7 days after the mail was queued.
#[utoipa::path(
    post,
    path = "/api/v1/visitors/continue",
    tag = "visitors",
    request_body = ContinueLink,
    responses(
        (status = 200, description = "The visitor and a new token.", body = ContinueAnswer),
        (status = 403, description = "`forbidden`: a tampered, expired or unknown link.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many new tokens from this address.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
    )
)]
pub async fn continue_visitor(
    mail: web::Data<MailService>,
    req: HttpRequest,
    body: JsonObject<ContinueLink>,
) -> Result<HttpResponse, ApiError> {
    let ContinueLink { link } = body.into_inner();
    if link.len() > 2048 {
        return Err(ApiError::bad_request("link must be at most 2048 bytes"));
    }
    let continued = mail.continue_visitor(client_ip(&req), &link).await?;
    Ok(HttpResponse::Ok().json(ContinueAnswer {
        visitor: continued.visitor,
        token: continued.token,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnsubscribeParams {
    /// The signed token from the email's unsubscribe link.
    #[param(max_length = 200)]
    token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Unsubscribed {
    /// Always `true`: this visitor gets no more email.
    pub unsubscribed: bool,
}

/// Turns off email to the visitor the token names (RFC 8058 one-click unsubscribe).
///
/// Mail clients `POST` here from the `List-Unsubscribe` header; the body is ignored.
#[utoipa::path(
    post,
    path = "/api/v1/unsubscribe",
    tag = "visitors",
    params(UnsubscribeParams),
    responses(
        (status = 200, description = "Unsubscribed.", body = Unsubscribed),
        (status = 403, description = "`forbidden`: a tampered or expired token.", body = ErrorBody),
    )
)]
pub async fn unsubscribe(
    mail: web::Data<MailService>,
    params: web::Query<UnsubscribeParams>,
) -> Result<HttpResponse, ApiError> {
    mail.unsubscribe(&params.token).await?;
    Ok(HttpResponse::Ok().json(Unsubscribed { unsubscribed: true }))
}

/// A page that asks the visitor to confirm unsubscribing (a link opened from the email).
///
/// A `GET` changes nothing (mail scanners open links): the page's button `POST`s. A link
/// that was tampered with or has expired gets `403` here already.
#[utoipa::path(
    get,
    path = "/api/v1/unsubscribe",
    tag = "visitors",
    params(UnsubscribeParams),
    responses(
        (status = 200, description = "An HTML page with the confirm button.", content_type = "text/html"),
        (status = 403, description = "`forbidden`: a tampered or expired token.", body = ErrorBody),
    )
)]
pub async fn unsubscribe_page(
    mail: web::Data<MailService>,
    params: web::Query<UnsubscribeParams>,
) -> Result<HttpResponse, ApiError> {
    mail.check_unsubscribe(&params.token)?;
    let action = format!(
        "/api/v1/unsubscribe?token={}",
        html_escape::encode_double_quoted_attribute(&params.token)
    );
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>Unsubscribe</title></head>\
         <body style=\"font-family:sans-serif;max-width:30em;margin:3em auto\">\
         <h1>Unsubscribe</h1><p>Stop all email about your chats?</p>\
         <form method=\"post\" action=\"{action}\"><button type=\"submit\">Unsubscribe</button>\
         </form></body></html>"
    );
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; form-action 'self'",
        ))
        .body(page))
}

/// Emails the transcript of a closed chat to its visitor (the visitor, or an agent).
///
/// Private notes are left out. Once per chat, until it has new messages.
#[utoipa::path(
    post,
    path = "/api/v1/chats/{id}/transcript",
    tag = "chats",
    params(("id" = String, Path, description = "The chat's id.")),
    responses(
        (status = 202, description = "The transcript is queued."),
        (status = 404, description = "`not_found`: no such chat (or not the caller's).", body = ErrorBody),
        (status = 409, description = "`conflict`: the chat is open, its transcript was sent already, or this server sends no email.", body = ErrorBody),
        (status = 422, description = "`invalid`: the visitor has no email address.", body = ErrorBody),
    )
)]
pub async fn send_transcript(
    mail: web::Data<MailService>,
    caller: Caller,
    path: web::Path<ResourceId>,
) -> Result<HttpResponse, ApiError> {
    mail.send_transcript(caller, path.into_inner().0).await?;
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailParams {
    /// At most this many, newest first: 1–500, default 100 (outside that range: `400`).
    #[param(minimum = 1, maximum = 500, default = 100)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailList {
    pub mail: Vec<MailStatus>,
}

/// The newest mail of the outbox with its status, attempts and last error (admins).
#[utoipa::path(
    get,
    path = "/api/v1/mail",
    tag = "server",
    params(MailParams),
    responses((status = 200, description = "Newest first.", body = MailList))
)]
pub async fn list_mail(
    mail: web::Data<MailService>,
    caller: Caller,
    params: web::Query<MailParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = match params.limit {
        None => 100,
        Some(n) if (1..=500).contains(&n) => n as usize,
        Some(_) => return Err(ApiError::bad_request("limit must be 1-500")),
    };
    let list = mail.recent(&caller, limit).await?;
    Ok(HttpResponse::Ok().json(MailList { mail: list }))
}
