//! `/api/v1/agents`: login and logout, the current agent, and agent management by admins.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::api::client_ip;
use crate::auth::{self, Caller};
use crate::domain::{self, parse_email, parse_name, parse_password, Role};
use crate::error::ApiError;
use crate::model::Agent;
use crate::state::AppState;
use crate::store::{agents, tokens};

#[derive(Debug, Deserialize)]
pub struct Login {
    email: String,
    password: String,
}

/// `POST /api/v1/agents/login` → `200 {agent, token, expires_at}`; one `401` for every failure.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Login>,
) -> Result<HttpResponse, ApiError> {
    let Login { email, password } = body.into_inner();
    let email = email.trim().to_lowercase();
    state
        .limits
        .check_login(client_ip(&req, state.config.trust_proxy), &email)?;
    if password.len() > 4096 {
        state.limits.login_failed(&email);
        return Err(ApiError::Unauthorized);
    }
    let account = email.clone();
    let found = state
        .store
        .read(move |conn| Ok(agents::find_for_login(conn, &email)?))
        .await?;
    let (agent, verified) = web::block(move || {
        let verified =
            auth::verify_password(&password, found.as_ref().map(|(_, hash)| hash.as_str()));
        (found.map(|(agent, _)| agent), verified)
    })
    .await?;
    let agent = match agent {
        Some(agent) if verified && !agent.disabled => agent,
        _ => {
            state.limits.login_failed(&account);
            return Err(ApiError::Unauthorized);
        }
    };
    state.limits.login_succeeded(&account);
    let token = auth::new_token("agent");
    let expires_at = domain::timestamp(OffsetDateTime::now_utc() + state.config.session_lifetime());
    let (owner_id, expires) = (agent.id.clone(), expires_at.clone());
    state
        .store
        .write(move |conn| {
            tokens::insert(
                conn,
                &token.hash,
                "agent",
                &owner_id,
                &domain::now(),
                Some(&expires),
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok()
        .json(json!({"agent": agent, "token": token.token, "expires_at": expires_at})))
}

/// `POST /api/v1/agents/logout` → `204`; the token stops working at once.
pub async fn logout(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_agent()?;
    let hash = auth::bearer(&req)
        .map(auth::hash_token)
        .ok_or(ApiError::Unauthorized)?;
    state
        .store
        .write(move |conn| Ok(tokens::delete(conn, &hash)?))
        .await?;
    // After the commit: a lookup still in flight is not cached (see `SessionCache`).
    state.sessions.forget(&hash);
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/agents/me` → `200 {agent}`.
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let id = caller.require_agent()?.to_string();
    let agent = state
        .store
        .read(move |conn| agents::find(conn, &id)?.ok_or(ApiError::Unauthorized))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "agent": agent })))
}

/// `GET /api/v1/agents` (agent) → `200 {agents}`, for assigning chats.
pub async fn list_agents(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_agent()?;
    let agents = state.store.read(|conn| Ok(agents::list(conn)?)).await?;
    Ok(HttpResponse::Ok().json(json!({ "agents": agents })))
}

#[derive(Debug, Deserialize)]
pub struct NewAgent {
    email: String,
    name: String,
    password: String,
    role: Option<Role>,
}

/// Validates and stores a new agent; shared by the API and the CLI.
pub fn create(
    conn: &rusqlite::Connection,
    agent: &Agent,
    password_hash: &str,
) -> Result<(), ApiError> {
    if agents::email_taken(conn, &agent.email)? {
        return Err(ApiError::Conflict("an agent with this email exists".into()));
    }
    agents::insert(conn, agent, password_hash)?;
    Ok(())
}

/// `POST /api/v1/agents` (admin) body `{email, name, password, role?}` → `201 {agent}`.
pub async fn create_agent(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NewAgent>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let NewAgent {
        email,
        name,
        password,
        role,
    } = body.into_inner();
    let agent = Agent {
        id: domain::new_id(),
        name: parse_name(&name)?,
        email: parse_email(&email)?,
        role: role.unwrap_or(Role::Agent),
        disabled: false,
        created_at: domain::now(),
    };
    let password = parse_password(&password)?;
    let hash = web::block(move || auth::hash_password(&password)).await??;
    let stored = agent.clone();
    state
        .store
        .write(move |conn| create(conn, &stored, &hash))
        .await?;
    Ok(HttpResponse::Created().json(json!({ "agent": agent })))
}

#[derive(Debug, Deserialize)]
pub struct AgentUpdate {
    name: Option<String>,
    role: Option<Role>,
    disabled: Option<bool>,
}

/// `PATCH /api/v1/agents/{id}` (admin) body `{name?, role?, disabled?}` → `200 {agent}`.
/// Disabling revokes every session of the agent at once. The last active admin stays one.
pub async fn update_agent(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<AgentUpdate>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let id = path.into_inner();
    let AgentUpdate {
        name,
        role,
        disabled,
    } = body.into_inner();
    let name = name.as_deref().map(parse_name).transpose()?;
    let agent_id = id.clone();
    let agent = state
        .store
        .write(move |conn| {
            let current = agents::find(conn, &agent_id)?.ok_or(ApiError::NotFound)?;
            let stays_admin = role.unwrap_or(current.role) == Role::Admin
                && !disabled.unwrap_or(current.disabled);
            let is_active_admin = current.role == Role::Admin && !current.disabled;
            if is_active_admin && !stays_admin && agents::active_admins(conn)? <= 1 {
                return Err(ApiError::Conflict(
                    "the last active admin cannot be disabled or demoted".into(),
                ));
            }
            agents::update(conn, &agent_id, name.as_deref(), role, disabled)?;
            if disabled == Some(true) {
                tokens::delete_for_owner(conn, &agent_id, None)?;
            }
            agents::find(conn, &agent_id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    // Cached sessions carry the role: a demotion or a disabling takes effect at once.
    state.sessions.forget_owner(&id);
    Ok(HttpResponse::Ok().json(json!({ "agent": agent })))
}

#[derive(Debug, Deserialize)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/agents/me/password` → `204`; every other session of the agent is revoked.
pub async fn change_password(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let id = caller.require_agent()?.to_string();
    let PasswordChange {
        current_password,
        new_password,
    } = body.into_inner();
    let new_password = parse_password(&new_password)?;
    let agent_id = id.clone();
    let stored = state
        .store
        .read(move |conn| {
            let email = agents::find(conn, &agent_id)?
                .ok_or(ApiError::Unauthorized)?
                .email;
            Ok(agents::find_for_login(conn, &email)?.map(|(_, hash)| hash))
        })
        .await?;
    let hash = web::block(move || {
        if !auth::verify_password(&current_password, stored.as_deref()) {
            return Err(ApiError::invalid("current_password is wrong"));
        }
        auth::hash_password(&new_password)
    })
    .await??;
    let current = auth::bearer(&req).map(auth::hash_token);
    let agent_id = id.clone();
    state
        .store
        .write(move |conn| {
            agents::set_password_hash(conn, &agent_id, &hash)?;
            tokens::delete_for_owner(conn, &agent_id, current.as_ref().map(|h| h.as_slice()))?;
            Ok(())
        })
        .await?;
    state.sessions.forget_owner(&id);
    Ok(HttpResponse::NoContent().finish())
}
