//! Counts for `parley stats` and the metrics.

use rusqlite::Connection;
use serde::Serialize;

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
}

pub fn collect(conn: &Connection) -> rusqlite::Result<Stats> {
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
    Ok(Stats {
        agents: count("SELECT COUNT(*) FROM agents")?,
        visitors: count("SELECT COUNT(*) FROM visitors")?,
        open_chats: count("SELECT COUNT(*) FROM chats WHERE status = 'open'")?,
        closed_chats: count("SELECT COUNT(*) FROM chats WHERE status = 'closed'")?,
        messages: count("SELECT COUNT(*) FROM messages")?,
        attachments: count("SELECT COUNT(*) FROM attachments")?,
        attachment_bytes: count("SELECT COALESCE(SUM(size), 0) FROM attachments")?,
        database_bytes: database_bytes(conn)?,
    })
}

/// Pages in use times page size: the database's size without the WAL.
pub fn database_bytes(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        [],
        |r| r.get(0),
    )
}
