//! `@mentions` in private notes: one row per mentioned agent, kept until that agent reads
//! the chat past the note. The row is the inbox's "you were mentioned here".

use std::collections::HashSet;

use crate::store::sql::{Db, DbResult};

/// Records that the note `message_id` (at `seq`) in `chat_id` mentions `agent_id`.
pub fn insert(db: &Db, message_id: &str, chat_id: &str, agent_id: &str, seq: i64) -> DbResult<()> {
    db.execute(
        "INSERT INTO mentions (message_id, chat_id, agent_id, seq) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO NOTHING",
        &[&message_id, &chat_id, &agent_id, &seq],
    )?;
    Ok(())
}

/// The chats in which `agent_id` has a mention it has not read yet.
pub fn unread_chats(db: &Db, agent_id: &str) -> DbResult<HashSet<String>> {
    Ok(db
        .query_map(
            "SELECT DISTINCT chat_id FROM mentions WHERE agent_id = ?1",
            &[&agent_id],
            |r| r.get::<String>(0),
        )?
        .into_iter()
        .collect())
}

/// Whether `agent_id` has an unread mention in `chat_id`.
pub fn has_unread(db: &Db, agent_id: &str, chat_id: &str) -> DbResult<bool> {
    db.exists(
        "SELECT 1 FROM mentions WHERE agent_id = ?1 AND chat_id = ?2",
        &[&agent_id, &chat_id],
    )
}

/// `agent_id` has read `chat_id` up to `seq`: its mentions up to there are done.
pub fn mark_read(db: &Db, agent_id: &str, chat_id: &str, seq: i64) -> DbResult<bool> {
    Ok(db.execute(
        "DELETE FROM mentions WHERE agent_id = ?1 AND chat_id = ?2 AND seq <= ?3",
        &[&agent_id, &chat_id, &seq],
    )? > 0)
}
