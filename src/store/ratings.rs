//! Queries on the visitors' ratings of closed chats.

use serde::Serialize;

use crate::domain::NewRating;
use crate::store::sql::{Db, DbResult};

/// Records a chat's rating unless it has one; returns whether it was recorded.
pub fn insert(
    db: &Db,
    chat_id: &str,
    rating: &NewRating,
    agent_id: Option<&str>,
    created_at: &str,
) -> DbResult<bool> {
    let inserted = db.execute(
        "INSERT INTO chat_ratings (chat_id, rating, comment, agent_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (chat_id) DO NOTHING",
        &[
            &chat_id,
            &rating.rating,
            &rating.comment,
            &agent_id,
            &created_at,
        ],
    )?;
    Ok(inserted == 1)
}

/// How one agent's chats were rated (`agent_id` `None`: chats rated while unassigned).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentRatings {
    pub agent_id: Option<String>,
    pub agent_email: Option<String>,
    pub count: i64,
    pub average: f64,
}

/// Every rating counted and averaged per agent, most ratings first. Agents are few, so
/// this is a handful of rows.
pub fn by_agent(db: &Db) -> DbResult<Vec<AgentRatings>> {
    // The casts keep both engines' types alike (PostgreSQL averages into NUMERIC).
    db.query_map(
        "SELECT r.agent_id, a.email, COUNT(*), CAST(AVG(r.rating) AS DOUBLE PRECISION)
         FROM chat_ratings r LEFT JOIN agents a ON a.id = r.agent_id
         GROUP BY r.agent_id, a.email
         ORDER BY COUNT(*) DESC, a.email",
        &[],
        |r| {
            Ok(AgentRatings {
                agent_id: r.get(0)?,
                agent_email: r.get(1)?,
                count: r.get(2)?,
                average: r.get(3)?,
            })
        },
    )
}
