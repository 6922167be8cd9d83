//! `/api/v1/agents`: login and logout, the current agent, and agent management by admins.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

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
    body: web::Json<Login>,
) -> Result<HttpResponse, ApiError> {
    let Login { email, password } = body.into_inner();
    if password.len() > 4096 {
        return Err(ApiError::Unauthorized);
    }
    let email = email.trim().to_lowercase();
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
        _ => return Err(ApiError::Unauthorized),
    };
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
    state.sessions.forget(&hash);
    state
        .store
        .write(move |conn| Ok(tokens::delete(conn, &hash)?))
        .await?;
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
