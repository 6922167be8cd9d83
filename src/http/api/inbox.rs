//! `/api/v1/inbox`: one long poll that keeps an agent's chat list live.

use std::future::Future;

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::{ready, Either};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::config::Config;
use crate::domain::{Caller, Chat};
use crate::http::error::ApiError;
use crate::http::extract::token_hash;
use crate::http::params::{cursor_after, page_limit, poll_wait};
use crate::poll::Hub;
use crate::services::chats::ChatService;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Chats with a message whose `seq` is above this one: the previous answer's `next`
    /// (default 0).
    #[param(minimum = 0, default = 0)]
    after: Option<i64>,
    /// Seconds to hold the request while nothing is newer (default 0). Larger values count
    /// as the server's `poll_timeout` (`GET /api/v1/config`; 25 by default).
    #[param(minimum = 0, default = 0)]
    wait: Option<f64>,
    /// At most this many chats: default 100, larger values count as 500.
    #[param(minimum = 1, default = 100)]
    limit: Option<i64>,
}

/// The chats changed since a cursor, and the next cursor.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    /// Most recent first.
    pub chats: Vec<Chat>,
    /// Pass it as the next `after`.
    #[schema(minimum = 0)]
    pub next: i64,
}

/// The chats with a message after a cursor: the agents' long poll (agents).
///
/// Answers the chats with a message whose `seq > after`, most recent first. When there are
/// none and `wait > 0`, the request is held until any chat changes or `wait` passes.
// Not an `async fn`, for the reason given at `messages::list_messages`.
#[utoipa::path(
    get,
    path = "/api/v1/inbox",
    tag = "inbox",
    params(InboxQuery),
    responses((status = 200, description = "The changed chats and the next cursor.", body = InboxPage))
)]
#[allow(clippy::manual_async_fn, reason = "an async fn copies its arguments")]
pub fn poll_inbox(
    chats: web::Data<ChatService>,
    hub: web::Data<Hub>,
    config: web::Data<Config>,
    caller: Caller,
    req: HttpRequest,
    query: web::Query<InboxQuery>,
) -> impl Future<Output = Result<HttpResponse, ApiError>> {
    // Read before the wait, so the parked future keeps only what it waits with.
    let prepared = (|| {
        caller.require_agent()?;
        let after = cursor_after(query.after)?;
        let limit = page_limit(query.limit)?;
        let wait = poll_wait(query.wait, config.max_wait())?;
        let slot = hub.claim_slot(token_hash(&req)?);
        Ok::<_, ApiError>((after, limit, wait, slot))
    })();
    let (after, limit, wait, slot) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return Either::Left(ready(Err(error))),
    };
    Either::Right(async move {
        let answer = chats.inbox(&caller, after, limit, wait, &slot).await?;
        Ok(HttpResponse::Ok().json(InboxPage {
            chats: answer.chats,
            next: answer.next,
        }))
    })
}
