//! `/api/v1/inbox`: one long poll that keeps an agent's chat list live.

use std::future::Future;

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::{ready, Either};
use serde::Deserialize;
use serde_json::json;

use crate::config::Config;
use crate::domain::Caller;
use crate::http::error::ApiError;
use crate::http::extract::token_hash;
use crate::http::params::{cursor_after, page_limit, poll_wait};
use crate::poll::Hub;
use crate::services::chats::ChatService;

#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    after: Option<i64>,
    wait: Option<f64>,
    limit: Option<i64>,
}

/// `GET /api/v1/inbox?after=SEQ&wait=SECONDS` (agent) → `200 {chats, next}`: the chats with
/// a message whose `seq > after`, most recent first; held open until any chat changes.
/// Not an `async fn`, for the reason given at `messages::list_messages`.
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
        Ok(HttpResponse::Ok().json(json!({ "chats": answer.chats, "next": answer.next })))
    })
}
