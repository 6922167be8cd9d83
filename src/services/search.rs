//! Full-text search over every chat's messages, for agents (private notes included; a
//! deleted chat's messages leave the index with them, in the same transaction).

use crate::domain::search::{snippet, SearchQuery, SearchResult};
use crate::domain::{Caller, DomainError};
use crate::store::{messages, search, Db, Store};

/// Most results of one search.
pub const MAX_LIMIT: usize = 100;
/// Results when the caller does not say.
pub const DEFAULT_LIMIT: usize = 20;

/// The messages that match `query`, most relevant first, at most `limit` (agents).
pub async fn search(
    store: &Store,
    caller: &Caller,
    query: SearchQuery,
    limit: usize,
) -> Result<Vec<SearchResult>, DomainError> {
    caller.require_agent()?;
    let limit = limit.clamp(1, MAX_LIMIT);
    store.catch_up_search_index().await?;
    store.read(move |db| search_in(db, &query, limit)).await
}

/// [`search`] inside a transaction (the benchmark calls it on its own connection).
pub fn search_in(
    db: &Db,
    query: &SearchQuery,
    limit: usize,
) -> Result<Vec<SearchResult>, DomainError> {
    let mut results = Vec::new();
    for seq in search::ranked(db, query, limit)? {
        // Gone only if its chat was deleted between the two reads.
        let Some(message) = messages::find_by_seq(db, seq)? else {
            continue;
        };
        results.push(SearchResult {
            chat_id: message.chat_id.clone(),
            snippet: snippet(&message.body, query),
            message,
        });
    }
    Ok(results)
}
