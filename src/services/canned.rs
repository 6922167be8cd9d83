//! Canned responses: every agent reads them, admins write them. A shortcut names one
//! response; at most [`MAX_CANNED`] exist (a `Conflict` past that, like a taken shortcut:
//! the request is fine, the team's current set refuses it).

use crate::domain::canned::{parse_shortcut, CannedResponse, MAX_CANNED};
use crate::domain::{self, Caller, DomainError, MessageBody};
use crate::store::{canned, DbError, Store};

/// A new canned response, validated.
pub struct NewCanned {
    pub shortcut: String,
    pub body: String,
}

impl NewCanned {
    pub fn parse(shortcut: &str, body: String) -> Result<Self, DomainError> {
        Ok(Self {
            shortcut: parse_shortcut(shortcut)?,
            body: MessageBody::parse(body)?.into_inner(),
        })
    }
}

/// A change an admin asks for, validated; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct CannedChange {
    pub shortcut: Option<String>,
    pub body: Option<String>,
}

impl CannedChange {
    pub fn parse(shortcut: Option<&str>, body: Option<String>) -> Result<Self, DomainError> {
        Ok(Self {
            shortcut: shortcut.map(parse_shortcut).transpose()?,
            body: body
                .map(|b| MessageBody::parse(b).map(MessageBody::into_inner))
                .transpose()?,
        })
    }
}

fn shortcut_taken() -> DomainError {
    DomainError::Conflict("a canned response with this shortcut exists".into())
}

/// A unique index refusing the shortcut means another writer took it after the check
/// (several PostgreSQL instances).
fn taken_or(e: DbError) -> DomainError {
    if e.is_unique_violation() {
        shortcut_taken()
    } else {
        e.into()
    }
}

/// Every canned response, by shortcut (agents).
pub async fn list(store: &Store, caller: &Caller) -> Result<Vec<CannedResponse>, DomainError> {
    caller.require_agent()?;
    store.read(|db| Ok(canned::list(db)?)).await
}

/// Stores a new canned response (admins).
pub async fn create(
    store: &Store,
    caller: &Caller,
    new: NewCanned,
) -> Result<CannedResponse, DomainError> {
    caller.require_admin()?;
    store
        .write(move |db| {
            if canned::shortcut_taken(db, &new.shortcut, None)? {
                return Err(shortcut_taken());
            }
            if canned::count(db)? >= MAX_CANNED {
                return Err(DomainError::Conflict(format!(
                    "there are already {MAX_CANNED} canned responses, the most kept"
                )));
            }
            let response = CannedResponse {
                id: domain::new_id(),
                shortcut: new.shortcut,
                body: new.body,
            };
            canned::insert(db, &response, &domain::now()).map_err(taken_or)?;
            Ok(response)
        })
        .await
}

/// Changes a canned response (admins); its shortcut may not be another's.
pub async fn change(
    store: &Store,
    caller: &Caller,
    id: String,
    change: CannedChange,
) -> Result<CannedResponse, DomainError> {
    caller.require_admin()?;
    store
        .write(move |db| {
            if canned::find(db, &id)?.is_none() {
                return Err(DomainError::NotFound);
            }
            if let Some(shortcut) = &change.shortcut {
                if canned::shortcut_taken(db, shortcut, Some(&id))? {
                    return Err(shortcut_taken());
                }
            }
            let at = domain::now();
            let (shortcut, body) = (change.shortcut.as_deref(), change.body.as_deref());
            canned::update(db, &id, shortcut, body, &at).map_err(taken_or)?;
            canned::find(db, &id)?.ok_or(DomainError::NotFound)
        })
        .await
}

/// Deletes a canned response (admins).
pub async fn remove(store: &Store, caller: &Caller, id: String) -> Result<(), DomainError> {
    caller.require_admin()?;
    store
        .write(move |db| {
            if !canned::delete(db, &id)? {
                return Err(DomainError::NotFound);
            }
            Ok(())
        })
        .await
}
