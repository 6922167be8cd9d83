//! Counts for `parley stats` and the metrics.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::ratings::{self, AgentRatings};
use crate::store::sql::{Backend, Db, DbResult};

#[derive(Debug, Serialize)]
pub struct Stats {
    pub agents: i64,
    pub visitors: i64,
    pub open_chats: i64,
    pub closed_chats: i64,
    pub messages: i64,
    pub attachments: i64,
    pub attachment_bytes: i64,
    pub database_bytes: i64,
    /// How many chats carry each label.
    pub labels: BTreeMap<String, i64>,
    /// The visitors' ratings of closed chats.
    pub ratings: RatingStats,
}

/// Ratings in all and per agent (the chat's assignee when it was rated).
#[derive(Debug, Serialize)]
pub struct RatingStats {
    pub count: i64,
    /// `null` with no rating yet.
    pub average: Option<f64>,
    pub by_agent: Vec<AgentRatings>,
}

impl RatingStats {
    fn from(by_agent: Vec<AgentRatings>) -> Self {
        let count: i64 = by_agent.iter().map(|a| a.count).sum();
        let sum: f64 = by_agent.iter().map(|a| a.average * a.count as f64).sum();
        Self {
            count,
            average: (count > 0).then(|| sum / count as f64),
            by_agent,
        }
    }
}

pub fn collect(db: &Db) -> DbResult<Stats> {
    let count = |sql: &str| db.query_row(sql, &[], |r| r.get::<i64>(0));
    Ok(Stats {
        agents: count("SELECT COUNT(*) FROM agents")?,
        visitors: count("SELECT COUNT(*) FROM visitors")?,
        open_chats: count("SELECT COUNT(*) FROM chats WHERE status = 'open'")?,
        closed_chats: count("SELECT COUNT(*) FROM chats WHERE status = 'closed'")?,
        messages: count("SELECT COUNT(*) FROM messages")?,
        attachments: count("SELECT COUNT(*) FROM attachments")?,
        // PostgreSQL sums BIGINTs as NUMERIC: cast back.
        attachment_bytes: count("SELECT COALESCE(CAST(SUM(size) AS BIGINT), 0) FROM attachments")?,
        database_bytes: database_bytes(db)?,
        labels: db
            .query_map(
                "SELECT label, COUNT(*) FROM chat_labels GROUP BY label",
                &[],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .into_iter()
            .collect(),
        ratings: RatingStats::from(ratings::by_agent(db)?),
    })
}

/// The database's size on disk without the write-ahead log: on SQLite, pages in use times
/// page size; on PostgreSQL, the database's files as `pg_database_size` counts them.
pub fn database_bytes(db: &Db) -> DbResult<i64> {
    let sql = match db.backend() {
        Backend::Sqlite => {
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
        }
        Backend::Postgres => "SELECT pg_database_size(current_database())",
    };
    db.query_row(sql, &[], |r| r.get(0))
}
