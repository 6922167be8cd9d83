//! Agents: logging in and out, the admins' management of accounts, passwords. The rules
//! that run inside a transaction (`*_in`) are shared with the CLI.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::{self, Agent, Availability, Caller, DomainError, Role};
use crate::services::auth::{self, Sessions};
use crate::services::limits::Limits;
use crate::store::{agents, tokens, Db, Store};

/// A successful login: the agent, its new token (shown only now) and when it expires.
pub struct Login {
    pub agent: Agent,
    pub token: String,
    pub expires_at: String,
}

/// A new agent as an admin describes it, validated.
pub struct NewAgent {
    pub email: String,
    pub name: String,
    pub password: String,
    pub role: Role,
}

impl NewAgent {
    pub fn parse(
        email: &str,
        name: &str,
        password: &str,
        role: Option<Role>,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            email: domain::parse_email(email)?,
            name: domain::parse_name(name)?,
            password: domain::parse_password(password)?,
            role: role.unwrap_or(Role::Agent),
        })
    }
}

/// A change an admin asks for; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct AgentChange {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// A change an agent makes to itself; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct SelfChange {
    pub availability: Option<Availability>,
    pub email_notifications: Option<bool>,
}

/// Stores a new agent whose email is not taken yet.
pub fn create_in(db: &Db, new: NewAgent, password_hash: &str) -> Result<Agent, DomainError> {
    if agents::email_taken(db, &new.email)? {
        return Err(DomainError::Conflict(
            "an agent with this email exists".into(),
        ));
    }
    let agent = Agent {
        id: domain::new_id(),
        name: new.name,
        email: new.email,
        role: new.role,
        disabled: false,
        created_at: domain::now(),
        availability: Availability::Online,
        email_notifications: true,
    };
    agents::insert(db, &agent, password_hash).map_err(|e| {
        // Another transaction took the email after the check (several PostgreSQL writers).
        if e.is_unique_violation() {
            DomainError::Conflict("an agent with this email exists".into())
        } else {
            e.into()
        }
    })?;
    Ok(agent)
}

/// Applies a change to an agent. The last active admin stays an active admin; disabling
/// revokes every session. Returns the agent and the revoked token hashes.
pub fn change_in(
    db: &Db,
    agent_id: &str,
    change: &AgentChange,
) -> Result<(Agent, Vec<[u8; 32]>), DomainError> {
    let current = agents::find(db, agent_id)?.ok_or(DomainError::NotFound)?;
    let stays_admin = change.role.unwrap_or(current.role) == Role::Admin
        && !change.disabled.unwrap_or(current.disabled);
    let is_active_admin = current.role == Role::Admin && !current.disabled;
    if is_active_admin && !stays_admin && agents::active_admins(db)? <= 1 {
        return Err(DomainError::Conflict(
            "the last active admin cannot be disabled or demoted".into(),
        ));
    }
    let name = change.name.as_deref().map(domain::parse_name).transpose()?;
    agents::update(db, agent_id, name.as_deref(), change.role, change.disabled)?;
    let revoked = if change.disabled == Some(true) {
        tokens::delete_for_owner(db, agent_id, None)?
    } else {
        Vec::new()
    };
    if !revoked.is_empty() {
        // Tells running servers (this one and any other on the database) to look again.
        tokens::bump_session_epoch(db)?;
    }
    let agent = agents::find(db, agent_id)?.ok_or(DomainError::NotFound)?;
    Ok((agent, revoked))
}

/// Sets a new password hash and revokes every session but `keep`; returns the revoked.
pub fn set_password_in(
    db: &Db,
    agent_id: &str,
    password_hash: &str,
    keep: Option<&[u8; 32]>,
) -> Result<Vec<[u8; 32]>, DomainError> {
    agents::set_password_hash(db, agent_id, password_hash)?;
    let revoked = tokens::delete_for_owner(db, agent_id, keep.map(|h| h.as_slice()))?;
    if !revoked.is_empty() {
        tokens::bump_session_epoch(db)?;
    }
    Ok(revoked)
}

/// The agent with this email, for commands that name agents by email.
pub fn find_by_email_in(db: &Db, email: &str) -> Result<Agent, DomainError> {
    let email = domain::parse_email(email)?;
    agents::find_for_login(db, &email)?
        .map(|(agent, _)| agent)
        .ok_or_else(|| DomainError::invalid(format!("no agent with email {email}")))
}

/// Argon2 is slow on purpose: it runs on the blocking pool, not on an async worker.
async fn hash_off_thread(password: String) -> Result<String, DomainError> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| DomainError::Internal(Box::new(e)))?
}

/// Agents. Cheap to clone.
#[derive(Clone)]
pub struct AgentService {
    store: Store,
    sessions: Sessions,
    limits: Arc<Limits>,
    session_lifetime: Duration,
}

impl AgentService {
    pub fn new(
        store: Store,
        sessions: Sessions,
        limits: Arc<Limits>,
        session_lifetime: Duration,
    ) -> Self {
        Self {
            store,
            sessions,
            limits,
            session_lifetime,
        }
    }

    /// Checks the password and opens a session. Every failure is the same `Unauthorized`,
    /// and counts towards the login back-off.
    pub async fn login(
        &self,
        ip: IpAddr,
        email: &str,
        password: String,
    ) -> Result<Login, DomainError> {
        let email = email.trim().to_lowercase();
        self.limits.check_login(ip, &email)?;
        if password.len() > 4096 {
            self.limits.login_failed(ip, &email);
            return Err(DomainError::Unauthorized);
        }
        let account = email.clone();
        let found = self
            .store
            .read(move |db| Ok(agents::find_for_login(db, &email)?))
            .await?;
        let (agent, verified) = tokio::task::spawn_blocking(move || {
            let verified =
                auth::verify_password(&password, found.as_ref().map(|(_, hash)| hash.as_str()));
            (found.map(|(agent, _)| agent), verified)
        })
        .await
        .map_err(|e| DomainError::Internal(Box::new(e)))?;
        let agent = match agent {
            Some(agent) if verified && !agent.disabled => agent,
            _ => {
                self.limits.login_failed(ip, &account);
                return Err(DomainError::Unauthorized);
            }
        };
        self.limits.login_succeeded(ip, &account);
        let token = auth::new_token("agent");
        let expires_at = domain::timestamp(OffsetDateTime::now_utc() + self.session_lifetime);
        let (owner_id, expires) = (agent.id.clone(), expires_at.clone());
        self.store
            .write(move |db| {
                tokens::insert(
                    db,
                    &token.hash,
                    "agent",
                    &owner_id,
                    &domain::now(),
                    Some(&expires),
                )?;
                Ok(())
            })
            .await?;
        Ok(Login {
            agent,
            token: token.token,
            expires_at,
        })
    }

    /// Ends the session of `token_hash`: it stops working at once, held polls included.
    pub async fn logout(&self, caller: &Caller, token_hash: [u8; 32]) -> Result<(), DomainError> {
        caller.require_agent()?;
        self.store
            .write(move |db| Ok(tokens::delete(db, &token_hash)?))
            .await?;
        // After the commit: a lookup still in flight is not cached (see `Sessions`).
        self.sessions.revoked(&[token_hash]);
        Ok(())
    }

    pub async fn me(&self, caller: &Caller) -> Result<Agent, DomainError> {
        let id = caller.require_agent()?.to_string();
        self.store
            .read(move |db| agents::find(db, &id)?.ok_or(DomainError::Unauthorized))
            .await
    }

    /// Changes the calling agent's own settings (availability).
    pub async fn change_me(
        &self,
        caller: &Caller,
        change: SelfChange,
    ) -> Result<Agent, DomainError> {
        let id = caller.require_agent()?.to_string();
        self.store
            .write(move |db| {
                if let Some(availability) = change.availability {
                    agents::set_availability(db, &id, availability, &domain::now())?;
                }
                if let Some(on) = change.email_notifications {
                    agents::set_email_notifications(db, &id, on)?;
                }
                agents::find(db, &id)?.ok_or(DomainError::Unauthorized)
            })
            .await
    }

    /// Every agent (for assigning chats).
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Agent>, DomainError> {
        caller.require_agent()?;
        self.store.read(|db| Ok(agents::list(db)?)).await
    }

    /// Adds an agent (admins only).
    pub async fn create(&self, caller: &Caller, new: NewAgent) -> Result<Agent, DomainError> {
        caller.require_admin()?;
        let hash = hash_off_thread(new.password.clone()).await?;
        self.store.write(move |db| create_in(db, new, &hash)).await
    }

    /// Changes an agent (admins only); see [`change_in`].
    pub async fn change(
        &self,
        caller: &Caller,
        agent_id: String,
        change: AgentChange,
    ) -> Result<Agent, DomainError> {
        caller.require_admin()?;
        let id = agent_id.clone();
        let (agent, revoked) = self
            .store
            .write(move |db| change_in(db, &id, &change))
            .await?;
        self.sessions.revoked(&revoked);
        // Cached sessions carry the role: a demotion takes effect at once.
        self.sessions.owner_changed(&agent_id);
        Ok(agent)
    }

    /// Changes the caller's own password; every other session of the agent is revoked.
    /// Wrong current passwords count towards the same back-off as failed logins, so a stolen
    /// session cannot be used to guess the password.
    pub async fn change_password(
        &self,
        caller: &Caller,
        token_hash: [u8; 32],
        ip: IpAddr,
        current_password: String,
        new_password: &str,
    ) -> Result<(), DomainError> {
        let id = caller.require_agent()?.to_string();
        let new_password = domain::parse_password(new_password)?;
        let agent_id = id.clone();
        let (email, stored) = self
            .store
            .read(move |db| {
                let email = agents::find(db, &agent_id)?
                    .ok_or(DomainError::Unauthorized)?
                    .email;
                let stored = agents::find_for_login(db, &email)?.map(|(_, hash)| hash);
                Ok((email, stored))
            })
            .await?;
        self.limits.check_login(ip, &email)?;
        let hash = tokio::task::spawn_blocking(move || {
            if !auth::verify_password(&current_password, stored.as_deref()) {
                return Ok(None);
            }
            auth::hash_password(&new_password).map(Some)
        })
        .await
        .map_err(|e| DomainError::Internal(Box::new(e)))??;
        let Some(hash) = hash else {
            self.limits.login_failed(ip, &email);
            return Err(DomainError::invalid("current_password is wrong"));
        };
        let agent_id = id.clone();
        let revoked = self
            .store
            .write(move |db| set_password_in(db, &agent_id, &hash, Some(&token_hash)))
            .await?;
        self.sessions.revoked(&revoked);
        self.sessions.owner_changed(&id);
        Ok(())
    }
}
