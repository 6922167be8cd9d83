//! `/api/v1/inbox`: one long poll that keeps an agent's chat list live.

use std::future::Future;

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde_json::json;

use crate::api::messages::hold_slot;
use crate::api::{cursor_after, page_limit, poll_wait};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::metrics;
use crate::model::Chat;
use crate::state::AppState;
use crate::store::chats;

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
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    query: web::Query<InboxQuery>,
) -> impl Future<Output = Result<HttpResponse, ApiError>> {
    async move {
        caller.require_agent()?;
        let after = cursor_after(query.after)?;
        let limit = page_limit(query.limit)?;
        let wait = poll_wait(query.wait, state.config.max_wait())?;

        let slot = hold_slot(&state, &req);
        // Enable before reading, as in the message poll: no message can slip between.
        let changed = state.hub.inbox().notified();
        tokio::pin!(changed);
        changed.as_mut().enable();

        let mut found = changed_since(&state, after, limit).await?;
        if found.is_empty() && !wait.is_zero() && !state.hub.is_shutting_down() {
            let held = metrics::HeldPoll::start("inbox");
            held.woken(tokio::select! {
                _ = &mut changed => "change",
                _ = tokio::time::sleep(wait) => "timeout",
                _ = state.hub.shutting_down() => "shutdown",
                _ = slot.evicted() => "evicted",
            });
            found = changed_since(&state, after, limit).await?;
        }
        let next = found.iter().map(|c| c.last_seq).max().unwrap_or(after);
        Ok(HttpResponse::Ok().json(json!({ "chats": found, "next": next })))
    }
}

/// Boxed for the reason given at `messages::read_page`: a held poll keeps only what it waits with.
fn changed_since(
    state: &AppState,
    after: i64,
    limit: usize,
) -> LocalBoxFuture<'_, Result<Vec<Chat>, ApiError>> {
    Box::pin(
        state
            .store
            .read(move |conn| Ok(chats::changed_since(conn, after, limit)?)),
    )
}
