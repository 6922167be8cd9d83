//! Visitors: anonymous or named customers, and their tokens.

use std::net::IpAddr;
use std::sync::Arc;

use crate::domain::context::ContextUpdate;
use crate::domain::{self, Caller, DomainError, Visitor};
use crate::services::auth::{new_token, Sessions};
use crate::services::identity::{Claim, Identity};
use crate::services::limits::Limits;
use crate::store::{tokens, visitors, Db, Store};

/// A visitor's name and email as given; empty strings count as "not given".
#[derive(Debug, Default)]
pub struct Contact {
    pub name: Option<String>,
    pub email: Option<String>,
}

impl Contact {
    fn validated(&self) -> Result<(Option<String>, Option<String>), DomainError> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.trim().is_empty())
        }
        Ok((
            given(&self.name).map(domain::parse_name).transpose()?,
            given(&self.email).map(domain::parse_email).transpose()?,
        ))
    }
}

/// Stores the visitor's latest context: `update`'s fields over the stored ones, the browser
/// from `user_agent`. Without either there is nothing new, and nothing is written.
pub fn record_context_in(
    db: &Db,
    visitor_id: &str,
    update: Option<ContextUpdate>,
    user_agent: Option<&str>,
) -> Result<(), DomainError> {
    if update.is_none() && user_agent.is_none() {
        return Ok(());
    }
    let old = visitors::context(db, visitor_id)?;
    let context = update
        .unwrap_or_default()
        .apply(old, user_agent, domain::now());
    visitors::set_context(db, visitor_id, &context)?;
    Ok(())
}

/// Visitors. Cheap to clone.
#[derive(Clone)]
pub struct VisitorService {
    store: Store,
    sessions: Sessions,
    limits: Arc<Limits>,
    identity: Identity,
}

/// A visitor that [`VisitorService::create`] made or found, with a new token.
pub struct Created {
    pub visitor: Visitor,
    /// Shown only now.
    pub token: String,
    /// False when a verified `external_id` named a visitor that already existed.
    pub new: bool,
}

impl VisitorService {
    pub fn new(store: Store, sessions: Sessions, limits: Arc<Limits>, identity: Identity) -> Self {
        Self {
            store,
            sessions,
            limits,
            identity,
        }
    }

    /// A new visitor and its token; or, for a verified `external_id` that already has a
    /// visitor, that visitor (its name and email updated from `contact`) and a new token
    /// for it: the same chats on every device. A claim is never joined to an anonymous
    /// visitor the caller may already have: its history stays where it was.
    pub async fn create(
        &self,
        ip: IpAddr,
        contact: Contact,
        page_url: Option<&str>,
        claim: Claim,
    ) -> Result<Created, DomainError> {
        self.limits.check_new_visitor(ip)?;
        let external_id = self.identity.verify(&claim)?;
        let (name, email) = contact.validated()?;
        let visitor = Visitor {
            id: domain::new_id(),
            name,
            email,
            page_url: page_url.and_then(domain::parse_page_url),
            created_at: domain::now(),
            context: None,
            external_id: external_id.map(|id| id.as_str().to_string()),
        };
        let token = new_token("visitor");
        self.store
            .write(move |db| {
                let new = visitors::insert(db, &visitor)?;
                let visitor = match (new, &visitor.external_id) {
                    (false, Some(external_id)) => {
                        let known = visitors::find_by_external_id(db, external_id)?
                            .ok_or(DomainError::NotFound)?;
                        visitors::update_contact(
                            db,
                            &known.id,
                            visitor.name.as_deref(),
                            visitor.email.as_deref(),
                        )?;
                        visitors::find(db, &known.id)?.ok_or(DomainError::NotFound)?
                    }
                    _ => visitor,
                };
                tokens::insert(
                    db,
                    &token.hash,
                    "visitor",
                    &visitor.id,
                    &domain::now(),
                    None,
                )?;
                Ok(Created {
                    visitor,
                    token: token.token,
                    new,
                })
            })
            .await
    }

    pub async fn me(&self, caller: &Caller) -> Result<Visitor, DomainError> {
        let id = caller.require_visitor()?.to_string();
        self.store
            .read(move |db| visitors::find(db, &id)?.ok_or(DomainError::NotFound))
            .await
    }

    /// Changes the visitor's name or email, and with `context` its context (the browser
    /// from `user_agent`).
    pub async fn update_contact(
        &self,
        caller: &Caller,
        contact: Contact,
        context: Option<ContextUpdate>,
        user_agent: Option<String>,
    ) -> Result<Visitor, DomainError> {
        let id = caller.require_visitor()?.to_string();
        let (name, email) = contact.validated()?;
        self.store
            .write(move |db| {
                visitors::update_contact(db, &id, name.as_deref(), email.as_deref())?;
                if context.is_some() {
                    record_context_in(db, &id, context, user_agent.as_deref())?;
                }
                visitors::find(db, &id)?.ok_or(DomainError::NotFound)
            })
            .await
    }

    /// A new token for the visitor; `old` stops working at once, held polls included.
    pub async fn rotate_token(
        &self,
        caller: &Caller,
        old: [u8; 32],
    ) -> Result<String, DomainError> {
        let id = caller.require_visitor()?.to_string();
        let token = new_token("visitor");
        let hash = token.hash;
        self.store
            .write(move |db| {
                tokens::delete(db, &old)?;
                tokens::insert(db, &hash, "visitor", &id, &domain::now(), None)?;
                Ok(())
            })
            .await?;
        self.sessions.revoked(&[old]);
        Ok(token.token)
    }
}
