//! `GET /api/v1/config`: what a client needs to know before it sends anything, whether the
//! team is there and its texts in the visitor's language; `/api/v1/settings`: the team's
//! settings, for admins.

use std::collections::BTreeMap;

use actix_web::http::header::ACCEPT_LANGUAGE;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::config::Config;
use crate::domain::hours::BusinessHours;
use crate::domain::settings::{Prechat, TeamSettings, Texts};
use crate::domain::{Caller, MAX_BODY_CHARS};
use crate::http::error::ApiError;
use crate::http::params::{double_option, JsonObject};
use crate::http::schemas::ErrorBody;
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
    /// The language of `away_message` and `greeting`: the first of the visitor's languages
    /// the admins wrote texts for; `null` for the default texts.
    #[schema(required = true)]
    pub text_lang: Option<String>,
    /// The team's message for visitors while nobody is online.
    #[schema(required = true)]
    pub away_message: Option<String>,
    /// The team's welcome for visitors, instead of the page's own.
    #[schema(required = true)]
    pub greeting: Option<String>,
    /// What the visitor page asks before the first message.
    pub prechat: Prechat,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ConfigQuery {
    /// The visitor's languages, best first: BCP 47 tags, comma-separated (`ja,de-AT`; only
    /// each one's primary language counts). Given, it stands instead of `Accept-Language`.
    lang: Option<String>,
}

/// Longest `lang` or `Accept-Language` read, and most languages taken from `lang`; more is
/// ignored, not refused: the config must answer whatever a client says about languages.
const MAX_LANG_BYTES: usize = 128;
const MAX_LANG_TAGS: usize = 8;
const MAX_ACCEPT_LANGUAGE_BYTES: usize = 1024;

/// The visitor's languages, best first: those of `lang` when given, else `Accept-Language`'s
/// in q order (ties in the order given; `q=0`, which means "not this one", and unreadable
/// q-values left out).
///
/// `lang` does not fall through to `Accept-Language`: the visitor page names the languages
/// down to the one it speaks, and the default texts must win over one the browser lists
/// after it (the server cannot know the default texts' language).
fn preferred_languages(lang: Option<&str>, accept: Option<&str>) -> Vec<String> {
    if let Some(lang) = lang.filter(|l| !l.trim().is_empty()) {
        if lang.len() > MAX_LANG_BYTES {
            return Vec::new();
        }
        return lang
            .split(',')
            .map(|tag| tag.trim().to_string())
            .take(MAX_LANG_TAGS)
            .collect();
    }
    let Some(accept) = accept.filter(|a| a.len() <= MAX_ACCEPT_LANGUAGE_BYTES) else {
        return Vec::new();
    };
    accept_language::parse_with_quality(accept)
        .into_iter()
        .filter(|(_, q)| *q > 0.0 && *q <= 1.0)
        .map(|(tag, _)| tag)
        .collect()
}

/// The limits a client needs before it sends anything, whether the team is there, and the
/// team's texts in the visitor's language.
///
/// Public: nothing here is secret, and the visitor page needs it before it has a token.
/// The team's status may be up to a second old. The texts are those of the first of the
/// visitor's languages (`lang`, else `Accept-Language` by q-value) the admins wrote texts
/// for; a text they left out in that language, or no such language, is the default one.
#[utoipa::path(
    get,
    path = "/api/v1/config",
    tag = "server",
    params(ConfigQuery),
    responses((status = 200, description = "The server's limits, the team's status and texts.", body = ClientConfig))
)]
pub async fn client_config(
    req: HttpRequest,
    query: web::Query<ConfigQuery>,
    config: web::Data<Config>,
    settings: web::Data<SettingsService>,
) -> Result<HttpResponse, ApiError> {
    let accept = req
        .headers()
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let preferred = preferred_languages(query.lang.as_deref(), accept);
    let status = settings.status(jiff::Timestamp::now(), &preferred).await?;
    Ok(HttpResponse::Ok().json(ClientConfig {
        max_upload: config.max_upload,
        max_body_chars: MAX_BODY_CHARS,
        poll_timeout: config.poll_timeout,
        online: status.online,
        open_now: status.open_now,
        next_open_at: status.next_open_at,
        text_lang: status.text_lang,
        away_message: status.away_message,
        greeting: status.greeting,
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
    /// At most 500 characters; `null` or empty removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 500)]
    greeting: Option<Option<String>>,
    /// Every language's texts, replacing those stored: keys 2–3 lowercase letters (`de`), at
    /// most 20; `null` or `{}` removes them all.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<BTreeMap<String, Texts>>)]
    translations: Option<Option<BTreeMap<String, Texts>>>,
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
/// Each field given replaces that setting (`translations` as a whole); one left out stays
/// as it is. Business hours are
/// checked whole: a known IANA zone, days `mon`…`sun`, times `HH:MM` with `close` after
/// `open` (`24:00` ends the day), no overlaps within a day, at most 28 intervals.
#[utoipa::path(
    put,
    path = "/api/v1/settings",
    tag = "settings",
    request_body = SettingsUpdate,
    responses(
        (status = 200, description = "The settings as they are now.", body = SettingsAnswer),
        (status = 400, description = "`bad_request`: a wrong type or an unknown field in the hours, the pre-chat form or a language's texts.", body = ErrorBody),
        (status = 422, description = "`invalid`: bad hours, zone, away message, greeting, language tag or too many languages.", body = ErrorBody),
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
        greeting,
        translations,
        prechat,
    } = body.into_inner();
    let change = SettingsChange {
        business_hours,
        away_message,
        greeting,
        translations: translations.map(Option::unwrap_or_default),
        prechat,
    };
    let settings = settings.change(&caller, change).await?;
    Ok(HttpResponse::Ok().json(SettingsAnswer { settings }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_stands_instead_of_accept_language() {
        assert_eq!(
            preferred_languages(Some("ja, de-AT"), Some("fr")),
            ["ja", "de-AT"]
        );
        assert_eq!(preferred_languages(Some(" "), Some("fr")), ["fr"]);
        let many = vec!["de"; 20].join(",");
        assert_eq!(preferred_languages(Some(&many), None).len(), MAX_LANG_TAGS);
        assert!(preferred_languages(Some(&"x".repeat(129)), Some("fr")).is_empty());
    }

    #[test]
    fn accept_language_is_read_in_q_order() {
        assert_eq!(
            preferred_languages(None, Some("fr;q=0.5, de-DE, de;q=0.9, en;q=0.5")),
            ["de-DE", "de", "fr", "en"]
        );
        assert_eq!(
            preferred_languages(None, Some("en;q=0, es;q=x, it;q=2, *;q=0.1, ja")),
            ["ja", "*"],
            "q=0 means not this one; a q-value that does not read is left out"
        );
        assert!(preferred_languages(None, None).is_empty());
        assert!(preferred_languages(None, Some("")).is_empty());
        let long = "de,".repeat(MAX_ACCEPT_LANGUAGE_BYTES);
        assert!(preferred_languages(None, Some(&long)).is_empty());
    }
}
