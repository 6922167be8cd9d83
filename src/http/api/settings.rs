//! `GET /api/v1/config`: what a client needs to know before it sends anything, and whether
//! the team is there; `/api/v1/settings`: the team's settings, for admins.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::Config;
use crate::domain::hours::BusinessHours;
use crate::domain::settings::{Prechat, TeamSettings};
use crate::domain::{Caller, MAX_BODY_CHARS};
use crate::http::error::ApiError;
use crate::http::openapi::ErrorBody;
use crate::http::params::{double_option, JsonObject};
use crate::services::settings::{SettingsChange, SettingsService};

/// The limits a client needs before it sends anything, and the team's status now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientConfig {
    /// Largest upload, in bytes.
    pub max_upload: usize,
    /// Longest message body, in characters.
    pub max_body_chars: usize,
    /// Longest `wait` of a poll, in seconds.
    pub poll_timeout: u64,
    /// An agent is present (online, with a request in the last minute) and it is within
    /// business hours.
    pub online: bool,
    /// Within business hours (always, without hours).
    pub open_now: bool,
    /// When business hours begin next; `null` when open now or never.
    #[schema(required = true, format = DateTime)]
    pub next_open_at: Option<String>,
    /// The team's message for visitors while nobody is online.
    #[schema(required = true)]
    pub away_message: Option<String>,
    /// What the visitor page asks before the first message.
    pub prechat: Prechat,
}

/// The limits a client needs before it sends anything, and whether the team is there.
///
/// Public: nothing here is secret, and the visitor page needs it before it has a token.
/// The team's status may be up to a second old.
#[utoipa::path(
    get,
    path = "/api/v1/config",
    tag = "server",
    responses((status = 200, description = "The server's limits and the team's status.", body = ClientConfig))
)]
pub async fn client_config(
    config: web::Data<Config>,
    settings: web::Data<SettingsService>,
) -> Result<HttpResponse, ApiError> {
    let status = settings.status(jiff::Timestamp::now()).await?;
    Ok(HttpResponse::Ok().json(ClientConfig {
        max_upload: config.max_upload,
        max_body_chars: MAX_BODY_CHARS,
        poll_timeout: config.poll_timeout,
        online: status.online,
        open_now: status.open_now,
        next_open_at: status.next_open_at,
        away_message: status.away_message,
        prechat: status.prechat,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsAnswer {
    pub settings: TeamSettings,
}

/// A change to the settings: a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SettingsUpdate {
    /// `null` removes the hours: always open.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<BusinessHours>)]
    business_hours: Option<Option<BusinessHours>>,
    /// At most 500 characters; `null` or empty removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 500)]
    away_message: Option<Option<String>>,
    prechat: Option<Prechat>,
}

/// The team's settings (admins).
#[utoipa::path(
    get,
    path = "/api/v1/settings",
    tag = "settings",
    responses((status = 200, description = "The team's settings.", body = SettingsAnswer))
)]
pub async fn get_settings(
    settings: web::Data<SettingsService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let settings = settings.get(&caller).await?;
    Ok(HttpResponse::Ok().json(SettingsAnswer { settings }))
}

/// Changes the team's settings (admins).
///
/// Each field given replaces that setting; one left out stays as it is. Business hours are
/// checked whole: a known IANA zone, days `mon`…`sun`, times `HH:MM` with `close` after
/// `open` (`24:00` ends the day), no overlaps within a day, at most 28 intervals.
#[utoipa::path(
    put,
    path = "/api/v1/settings",
    tag = "settings",
    request_body = SettingsUpdate,
    responses(
        (status = 200, description = "The settings as they are now.", body = SettingsAnswer),
        (status = 400, description = "`bad_request`: a wrong type or an unknown field in the hours or the pre-chat form.", body = ErrorBody),
        (status = 422, description = "`invalid`: bad hours, zone or away message.", body = ErrorBody),
    )
)]
pub async fn put_settings(
    settings: web::Data<SettingsService>,
    caller: Caller,
    body: JsonObject<SettingsUpdate>,
) -> Result<HttpResponse, ApiError> {
    let SettingsUpdate {
        business_hours,
        away_message,
        prechat,
    } = body.into_inner();
    let change = SettingsChange {
        business_hours,
        away_message,
        prechat,
    };
    let settings = settings.change(&caller, change).await?;
    Ok(HttpResponse::Ok().json(SettingsAnswer { settings }))
}
