//! `GET /api/v1/search`: full-text search over every chat's messages (agents).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::search::{SearchQuery, SearchResult};
use crate::domain::Caller;
use crate::http::error::ApiError;
use crate::services::search::{self, DEFAULT_LIMIT, MAX_LIMIT};
use crate::store::Store;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// What to look for, at most 200 characters: words that must all match (case and
    /// accents aside), `word*` for words that start so, `"two words"` for words in a row.
    /// Anything else is plain text; a query with no letter or digit is a `400`.
    #[param(min_length = 1, max_length = 200)]
    q: String,
    /// At most this many results: 1–100, default 20 (outside that range: `400`).
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchAnswer {
    /// Most relevant first, among the newest 10,000 matches: a message holding the whole
    /// query word for word, then more matches of the words, then the newest.
    pub results: Vec<SearchResult>,
}

/// Searches the messages of every chat, private notes included (agents).
///
/// Words match case- and accent-insensitively (`deja` finds "Déjà"); all of them must be
/// in a message. `word*` matches words that start with `word`; `"two words"` matches the
/// words side by side. Operators of search engines (`AND`, `OR`, `NOT`, `NEAR`, `(`, `:`)
/// are plain words here. System events are not searched, and a deleted chat's messages
/// are gone from the results at once.
///
/// Each result's `snippet` is HTML: an excerpt of the body around the first match, with
/// the matched words in `<mark>`…`</mark>` and every other character escaped, so it can
/// be set as `innerHTML` as it is (and `message.body`, as ever, only as text).
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "The matching messages, most relevant first.", body = SearchAnswer),
    )
)]
pub async fn search_messages(
    store: web::Data<Store>,
    caller: Caller,
    params: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require_agent()?;
    let limit = match params.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT as i64).contains(&n) => n as usize,
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "limit must be 1-{MAX_LIMIT}"
            )))
        }
    };
    let query = SearchQuery::parse(&params.q).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let results = search::search(&store, &caller, query, limit).await?;
    Ok(HttpResponse::Ok().json(SearchAnswer { results }))
}
