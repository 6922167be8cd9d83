//! The team's settings (business hours, away message, greeting, their translations, pre-chat
//! form), changed by admins, and the public status the visitor page shows: is someone there,
//! are we open, when do we open next, and the admins' texts in the visitor's language.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::domain::hours::{timestamp_of, BusinessHours, OpenState, Schedule};
use crate::domain::settings::{
    parse_away_message, parse_greeting, parse_translations, Prechat, TeamSettings, Texts,
};
use crate::domain::{self, Caller, DomainError};
use crate::services::presence::Presence;
use crate::store::{agents, settings, Db, Store};

/// How long the public status is reused: `GET /api/v1/config` is public and polled by every
/// open visitor page, so it reads the database at most once a second per instance.
const STATUS_CACHE_TTL: Duration = Duration::from_secs(1);

/// A change to the settings; `None` leaves a setting as it is.
#[derive(Debug, Default)]
pub struct SettingsChange {
    /// `Some(None)` removes the hours (always open).
    pub business_hours: Option<Option<BusinessHours>>,
    /// `Some(None)` removes the message.
    pub away_message: Option<Option<String>>,
    /// `Some(None)` removes the greeting.
    pub greeting: Option<Option<String>>,
    /// Replaces every language's texts; an empty map removes them all.
    pub translations: Option<BTreeMap<String, Texts>>,
    pub prechat: Option<Prechat>,
}

/// What the visitor page needs to know about the team now.
#[derive(Debug, Clone)]
pub struct PublicStatus {
    /// An agent is present and it is within business hours.
    pub online: bool,
    pub open_now: bool,
    /// RFC 3339; `None` when open now or never.
    pub next_open_at: Option<String>,
    /// The language of the admins' texts below; `None`: the default ones.
    pub text_lang: Option<String>,
    pub away_message: Option<String>,
    pub greeting: Option<String>,
    pub prechat: Prechat,
}

/// The settings as read, the hours ready to compute with, and whether an agent is present.
struct Snapshot {
    settings: TeamSettings,
    schedule: Option<Schedule>,
    present: bool,
}

/// A snapshot and when it was read.
type Cached = (Instant, Arc<Snapshot>);

/// The team's settings. Cheap to clone.
#[derive(Clone)]
pub struct SettingsService {
    store: Store,
    presence: Presence,
    cache: Arc<Mutex<Option<Cached>>>,
}

/// Reads every setting; one that does not read (written by another version) is its default.
fn read_in(db: &Db) -> Result<TeamSettings, DomainError> {
    let mut team = TeamSettings::default();
    for (name, value) in settings::all(db)? {
        let read = match name.as_str() {
            "business_hours" => serde_json::from_str(&value).map(|v| team.business_hours = v),
            "away_message" => serde_json::from_str(&value).map(|v| team.away_message = v),
            "greeting" => serde_json::from_str(&value).map(|v| team.greeting = v),
            "translations" => serde_json::from_str(&value).map(|v| team.translations = v),
            "prechat" => serde_json::from_str(&value).map(|v| team.prechat = v),
            _ => Ok(()),
        };
        if let Err(e) = read {
            log::warn!("setting {name} does not read, using its default: {e}");
        }
    }
    Ok(team)
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("settings always serialize")
}

impl SettingsService {
    pub fn new(store: Store, presence: Presence) -> Self {
        Self {
            store,
            presence,
            cache: Arc::default(),
        }
    }

    /// The team's settings (admins).
    pub async fn get(&self, caller: &Caller) -> Result<TeamSettings, DomainError> {
        caller.require_admin()?;
        self.store.read(read_in).await
    }

    /// Validates and applies a change (admins); answers the settings as they are now.
    pub async fn change(
        &self,
        caller: &Caller,
        change: SettingsChange,
    ) -> Result<TeamSettings, DomainError> {
        caller.require_admin()?;
        let hours = match change.business_hours {
            Some(Some(hours)) => Some(Some(hours.validate()?.0)),
            other => other,
        };
        let away = change.away_message.map(parse_away_message).transpose()?;
        let greeting = change.greeting.map(parse_greeting).transpose()?;
        let translations = change.translations.map(parse_translations).transpose()?;
        let prechat = change.prechat;
        let team = self
            .store
            .write(move |db| {
                let now = domain::now();
                if let Some(hours) = &hours {
                    settings::put(db, "business_hours", &json(hours), &now)?;
                }
                if let Some(away) = &away {
                    settings::put(db, "away_message", &json(away), &now)?;
                }
                if let Some(greeting) = &greeting {
                    settings::put(db, "greeting", &json(greeting), &now)?;
                }
                if let Some(translations) = &translations {
                    settings::put(db, "translations", &json(translations), &now)?;
                }
                if let Some(prechat) = &prechat {
                    settings::put(db, "prechat", &json(prechat), &now)?;
                }
                read_in(db)
            })
            .await?;
        *self.cache.lock().expect("cache lock is never poisoned") = None;
        Ok(team)
    }

    /// The public status at `now`, with the admins' texts for a visitor who prefers the
    /// languages `preferred` (best first): from a snapshot at most [`STATUS_CACHE_TTL`] old,
    /// one for every language (the choice is made per request).
    pub async fn status(
        &self,
        now: Timestamp,
        preferred: &[String],
    ) -> Result<PublicStatus, DomainError> {
        let snapshot = self.snapshot().await?;
        let state = match &snapshot.schedule {
            Some(schedule) => schedule.state_at(now),
            None => OpenState {
                open_now: true,
                next_open_at: None,
            },
        };
        let texts = snapshot
            .settings
            .texts_for(preferred.iter().map(String::as_str));
        Ok(PublicStatus {
            online: snapshot.present && state.open_now,
            open_now: state.open_now,
            next_open_at: state.next_open_at.map(timestamp_of),
            text_lang: texts.lang,
            away_message: texts.away_message,
            greeting: texts.greeting,
            prechat: snapshot.settings.prechat,
        })
    }

    async fn snapshot(&self) -> Result<Arc<Snapshot>, DomainError> {
        if let Some((at, snapshot)) = &*self.cache.lock().expect("cache lock is never poisoned") {
            if at.elapsed() < STATUS_CACHE_TTL {
                return Ok(snapshot.clone());
            }
        }
        let since = self.presence.present_since();
        let (settings, present) = self
            .store
            .read(move |db| Ok((read_in(db)?, agents::any_present(db, &since)?)))
            .await?;
        let schedule = settings.business_hours.as_ref().and_then(|hours| {
            hours
                .schedule()
                // A zone this build no longer knows: better open than silently closed.
                .inspect_err(|e| log::warn!("stored business hours do not apply ({e}): open"))
                .ok()
        });
        let snapshot = Arc::new(Snapshot {
            settings,
            schedule,
            present,
        });
        *self.cache.lock().expect("cache lock is never poisoned") =
            Some((Instant::now(), snapshot.clone()));
        Ok(snapshot)
    }
}
