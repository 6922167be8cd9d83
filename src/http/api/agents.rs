//! `/api/v1/agents`: login and logout, the current agent, and agent management by admins.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{Caller, Role};
use crate::http::error::ApiError;
use crate::http::extract::{client_ip, token_hash};
use crate::services::agents::{AgentChange, AgentService, NewAgent};

#[derive(Debug, Deserialize)]
pub struct Login {
    email: String,
    password: String,
}

/// `POST /api/v1/agents/login` → `200 {agent, token, expires_at}`; one `401` for every failure.
pub async fn login(
    agents: web::Data<AgentService>,
    req: HttpRequest,
    body: web::Json<Login>,
) -> Result<HttpResponse, ApiError> {
    let Login { email, password } = body.into_inner();
    let login = agents.login(client_ip(&req), &email, password).await?;
    Ok(HttpResponse::Ok()
        .json(json!({"agent": login.agent, "token": login.token, "expires_at": login.expires_at})))
}

/// `POST /api/v1/agents/logout` → `204`; the token stops working at once.
pub async fn logout(
    agents: web::Data<AgentService>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    agents.logout(&caller, token_hash(&req)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/agents/me` → `200 {agent}`.
pub async fn me(agents: web::Data<AgentService>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let agent = agents.me(&caller).await?;
    Ok(HttpResponse::Ok().json(json!({ "agent": agent })))
}

/// `GET /api/v1/agents` (agent) → `200 {agents}`, for assigning chats.
pub async fn list_agents(
    agents: web::Data<AgentService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let all = agents.list(&caller).await?;
    Ok(HttpResponse::Ok().json(json!({ "agents": all })))
}

#[derive(Debug, Deserialize)]
pub struct CreateAgent {
    email: String,
    name: String,
    password: String,
    role: Option<Role>,
}

/// `POST /api/v1/agents` (admin) body `{email, name, password, role?}` → `201 {agent}`.
pub async fn create_agent(
    agents: web::Data<AgentService>,
    caller: Caller,
    body: web::Json<CreateAgent>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let CreateAgent {
        email,
        name,
        password,
        role,
    } = body.into_inner();
    let new = NewAgent::parse(&email, &name, &password, role)?;
    let agent = agents.create(&caller, new).await?;
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
    agents: web::Data<AgentService>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<AgentUpdate>,
) -> Result<HttpResponse, ApiError> {
    let AgentUpdate {
        name,
        role,
        disabled,
    } = body.into_inner();
    let change = AgentChange {
        name,
        role,
        disabled,
    };
    let agent = agents.change(&caller, path.into_inner(), change).await?;
    Ok(HttpResponse::Ok().json(json!({ "agent": agent })))
}

#[derive(Debug, Deserialize)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/agents/me/password` → `204`; every other session of the agent is revoked.
pub async fn change_password(
    agents: web::Data<AgentService>,
    caller: Caller,
    req: HttpRequest,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let PasswordChange {
        current_password,
        new_password,
    } = body.into_inner();
    agents
        .change_password(&caller, token_hash(&req)?, current_password, &new_password)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
