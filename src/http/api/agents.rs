//! `/api/v1/agents`: login and logout, the current agent, and agent management by admins.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Agent, Availability, Caller, Role};
use crate::http::error::ApiError;
use crate::http::extract::{client_ip, token_hash};
use crate::http::params::{JsonObject, ResourceId};
use crate::http::schemas::ErrorBody;
use crate::services::agents::{AgentChange, AgentService, NewAgent, SelfChange};

#[derive(Debug, Deserialize, ToSchema)]
pub struct Login {
    email: String,
    password: String,
}

/// A new agent session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginAnswer {
    pub agent: Agent,
    /// The agent's bearer token, shown only here.
    pub token: String,
    /// When the token stops working.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentAnswer {
    pub agent: Agent,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<Agent>,
}

/// Logs an agent in: a new token.
///
/// Every failure is the same `401`, whether the email exists or not. Repeated failures for
/// one email slow its next attempts down (`429`).
#[utoipa::path(
    post,
    path = "/api/v1/agents/login",
    tag = "agents",
    request_body = Login,
    responses(
        (status = 200, description = "The agent and its new token.", body = LoginAnswer),
        (status = 401, description = "`unauthorized`: wrong email or password, or a disabled agent.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many logins from this address, or failures for this email.",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "`unavailable`: the server is shutting down.", body = ErrorBody),
    )
)]
pub async fn login(
    agents: web::Data<AgentService>,
    req: HttpRequest,
    body: JsonObject<Login>,
) -> Result<HttpResponse, ApiError> {
    let Login { email, password } = body.into_inner();
    let login = agents.login(client_ip(&req), &email, password).await?;
    Ok(HttpResponse::Ok().json(LoginAnswer {
        agent: login.agent,
        token: login.token,
        expires_at: login.expires_at,
    }))
}

/// Ends the calling agent's session: its token stops working at once.
#[utoipa::path(
    post,
    path = "/api/v1/agents/logout",
    tag = "agents",
    responses((status = 204, description = "Logged out."))
)]
pub async fn logout(
    agents: web::Data<AgentService>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    agents.logout(&caller, token_hash(&req)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The calling agent.
#[utoipa::path(
    get,
    path = "/api/v1/agents/me",
    tag = "agents",
    responses((status = 200, description = "The calling agent.", body = AgentAnswer))
)]
pub async fn me(agents: web::Data<AgentService>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let agent = agents.me(&caller).await?;
    Ok(HttpResponse::Ok().json(AgentAnswer { agent }))
}

/// A change an agent makes to itself; a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SelfUpdate {
    /// `online` or `away`. Going `online` counts as a request now.
    availability: Option<Availability>,
    /// Email about chats whose visitor messages nobody read in time (on by default).
    email_notifications: Option<bool>,
}

/// Changes the calling agent's own settings: its availability and its email notifications.
///
/// An agent counts as present (and the visitor page says "online") while it is `online`
/// and has made a request within the presence window (60 s by default).
#[utoipa::path(
    patch,
    path = "/api/v1/agents/me",
    tag = "agents",
    request_body = SelfUpdate,
    responses(
        (status = 200, description = "The agent as changed.", body = AgentAnswer),
        (status = 400, description = "`bad_request`: an unknown availability.", body = ErrorBody),
    )
)]
pub async fn update_me(
    agents: web::Data<AgentService>,
    caller: Caller,
    body: JsonObject<SelfUpdate>,
) -> Result<HttpResponse, ApiError> {
    let SelfUpdate {
        availability,
        email_notifications,
    } = body.into_inner();
    let change = SelfChange {
        availability,
        email_notifications,
    };
    let agent = agents.change_me(&caller, change).await?;
    Ok(HttpResponse::Ok().json(AgentAnswer { agent }))
}

/// Every agent, for assigning chats (agents).
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "agents",
    responses((status = 200, description = "Every agent.", body = AgentList))
)]
pub async fn list_agents(
    agents: web::Data<AgentService>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let all = agents.list(&caller).await?;
    Ok(HttpResponse::Ok().json(AgentList { agents: all }))
}

/// A new agent account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateAgent {
    /// Stored lower-cased; must not be taken (`409`).
    email: String,
    /// 1–100 characters after trimming.
    name: String,
    /// 10–1024 characters.
    #[schema(min_length = 10, max_length = 1024)]
    password: String,
    /// `agent` by default.
    role: Option<Role>,
}

/// Creates an agent account (admins).
#[utoipa::path(
    post,
    path = "/api/v1/agents",
    tag = "agents",
    request_body = CreateAgent,
    responses(
        (status = 201, description = "The new agent.", body = AgentAnswer),
        (status = 409, description = "`conflict`: the email is taken.", body = ErrorBody),
        (status = 422, description = "`invalid`: a bad email, name or password.", body = ErrorBody),
    )
)]
pub async fn create_agent(
    agents: web::Data<AgentService>,
    caller: Caller,
    body: JsonObject<CreateAgent>,
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
    Ok(HttpResponse::Created().json(AgentAnswer { agent }))
}

/// A change to an agent; a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AgentUpdate {
    name: Option<String>,
    role: Option<Role>,
    /// `true` ends every session of the agent at once.
    disabled: Option<bool>,
}

/// Renames, promotes, demotes, disables or enables an agent (admins).
///
/// Disabling revokes every session of the agent at once. The last active admin can be
/// neither disabled nor demoted.
#[utoipa::path(
    patch,
    path = "/api/v1/agents/{id}",
    tag = "agents",
    params(("id" = String, Path, description = "The agent's id.")),
    request_body = AgentUpdate,
    responses(
        (status = 200, description = "The agent as changed.", body = AgentAnswer),
        (status = 404, description = "`not_found`: no such agent.", body = ErrorBody),
        (status = 409, description = "`conflict`: it would leave no active admin.", body = ErrorBody),
        (status = 422, description = "`invalid`: a bad name.", body = ErrorBody),
    )
)]
pub async fn update_agent(
    agents: web::Data<AgentService>,
    caller: Caller,
    path: web::Path<ResourceId>,
    body: JsonObject<AgentUpdate>,
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
    let agent = agents.change(&caller, path.into_inner().0, change).await?;
    Ok(HttpResponse::Ok().json(AgentAnswer { agent }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChange {
    current_password: String,
    /// 10–1024 characters.
    #[schema(min_length = 10, max_length = 1024)]
    new_password: String,
}

/// Changes the calling agent's password.
///
/// Every other session of the agent ends; this one goes on.
#[utoipa::path(
    post,
    path = "/api/v1/agents/me/password",
    tag = "agents",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed."),
        (status = 422, description = "`invalid`: a wrong current password, or a bad new one.", body = ErrorBody),
    )
)]
pub async fn change_password(
    agents: web::Data<AgentService>,
    caller: Caller,
    req: HttpRequest,
    body: JsonObject<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let PasswordChange {
        current_password,
        new_password,
    } = body.into_inner();
    agents
        .change_password(
            &caller,
            token_hash(&req)?,
            client_ip(&req),
            current_password,
            &new_password,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
