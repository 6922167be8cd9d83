//! Queries on chats, including the joined view the API returns.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::{Chat, ChatStatus, ReadMarkers};
use crate::store::{agents, messages, visitors};

const SELECT: &str = "SELECT c.id, c.status, c.created_at, c.last_seq, c.last_message_at,
        c.unread_for_agents, c.unread_for_visitor,
        v.id, v.name, v.email, v.page_url, v.created_at,
        a.id, a.name, a.email, a.role, a.disabled, a.created_at,
        c.visitor_read_seq, c.agent_read_seq
    FROM chats c
    JOIN visitors v ON v.id = c.visitor_id
    LEFT JOIN agents a ON a.id = c.assignee_id";

fn from_row(row: &Row) -> rusqlite::Result<Chat> {
    let assignee_id: Option<String> = row.get(12)?;
    Ok(Chat {
        id: row.get(0)?,
        status: row.get(1)?,
        created_at: row.get(2)?,
        last_seq: row.get(3)?,
        last_message_at: row.get(4)?,
        unread: row.get(5)?,
        unread_by_visitor: row.get(6)?,
        visitor: visitors::from_row(row, 7)?,
        assignee: match assignee_id {
            Some(_) => Some(agents::from_row(row, 12)?),
            None => None,
        },
        last_message: None,
        read: ReadMarkers {
            visitor: row.get(18)?,
            agent: row.get(19)?,
        },
    })
}

/// Fills in each chat's `last_message`.
fn with_last_messages(conn: &Connection, mut chats: Vec<Chat>) -> rusqlite::Result<Vec<Chat>> {
    for chat in &mut chats {
        if chat.last_seq > 0 {
            chat.last_message = messages::find_by_seq(conn, chat.last_seq)?;
        }
    }
    Ok(chats)
}

fn query(
    conn: &Connection,
    sql_tail: &str,
    args: impl rusqlite::Params,
) -> rusqlite::Result<Vec<Chat>> {
    let chats = conn
        .prepare_cached(&format!("{SELECT} {sql_tail}"))?
        .query_map(args, from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_last_messages(conn, chats)
}

pub fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<Chat>> {
    Ok(query(conn, "WHERE c.id = ?1", [id])?.pop())
}

/// The chat without its `last_message` (for callers that may already hold it).
pub fn find_bare(conn: &Connection, id: &str) -> rusqlite::Result<Option<Chat>> {
    conn.prepare_cached(&format!("{SELECT} WHERE c.id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// The few fields an access check needs, without the joins.
pub struct Access {
    pub visitor_id: String,
    pub status: ChatStatus,
    pub last_seq: i64,
    pub read: ReadMarkers,
}

pub fn access(conn: &Connection, id: &str) -> rusqlite::Result<Option<Access>> {
    conn.prepare_cached(
        "SELECT visitor_id, status, last_seq, visitor_read_seq, agent_read_seq
         FROM chats WHERE id = ?1",
    )?
    .query_row([id], |row| {
        Ok(Access {
            visitor_id: row.get(0)?,
            status: row.get(1)?,
            last_seq: row.get(2)?,
            read: ReadMarkers {
                visitor: row.get(3)?,
                agent: row.get(4)?,
            },
        })
    })
    .optional()
}

/// Which chats an agent's list shows.
pub struct Filter<'a> {
    /// `None`: every status.
    pub status: Option<ChatStatus>,
    /// `Some("")`: unassigned only; `Some(id)`: that agent's.
    pub assignee: Option<&'a str>,
    pub limit: usize,
}

/// Chats by most recent activity first.
pub fn list(conn: &Connection, filter: &Filter) -> rusqlite::Result<Vec<Chat>> {
    query(
        conn,
        "WHERE (?1 IS NULL OR c.status = ?1)
           AND (?2 IS NULL OR (?2 = '' AND c.assignee_id IS NULL) OR c.assignee_id = ?2)
         ORDER BY c.last_seq DESC, c.id DESC LIMIT ?3",
        params![filter.status, filter.assignee, filter.limit as i64],
    )
}

/// Chats with a message whose `seq > after`, most recent first: what the inbox poll returns.
pub fn changed_since(conn: &Connection, after: i64, limit: usize) -> rusqlite::Result<Vec<Chat>> {
    query(
        conn,
        "WHERE c.last_seq > ?1 ORDER BY c.last_seq DESC LIMIT ?2",
        params![after, limit as i64],
    )
}

/// The visitor's chat to show: the open one, else the most recent.
pub fn current_for_visitor(conn: &Connection, visitor_id: &str) -> rusqlite::Result<Option<Chat>> {
    Ok(query(
        conn,
        "WHERE c.visitor_id = ?1 ORDER BY c.status = 'open' DESC, c.id DESC LIMIT 1",
        [visitor_id],
    )?
    .pop())
}

pub fn open_id_for_visitor(
    conn: &Connection,
    visitor_id: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT id FROM chats WHERE visitor_id = ?1 AND status = 'open' ORDER BY id DESC LIMIT 1",
    )?
    .query_row([visitor_id], |r| r.get(0))
    .optional()
}

pub fn count_for_visitor(conn: &Connection, visitor_id: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COUNT(*) FROM chats WHERE visitor_id = ?1")?
        .query_row([visitor_id], |r| r.get(0))
}

pub fn insert(
    conn: &Connection,
    id: &str,
    visitor_id: &str,
    created_at: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO chats (id, visitor_id, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![id, visitor_id, created_at])?;
    Ok(())
}

pub fn set_status(
    conn: &Connection,
    id: &str,
    status: ChatStatus,
    at: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE chats SET status = ?2,
                closed_at = CASE WHEN ?2 = 'closed' THEN ?3 ELSE NULL END
         WHERE id = ?1",
    )?
    .execute(params![id, status, at])?;
    Ok(())
}

pub fn set_assignee(
    conn: &Connection,
    id: &str,
    assignee_id: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE chats SET assignee_id = ?2 WHERE id = ?1")?
        .execute(params![id, assignee_id])?;
    Ok(())
}

/// Moves one side's read marker forward to `seq`, clamped to the chat's last seq, and
/// recounts that side's unread messages. Returns whether it moved.
pub fn mark_read(
    conn: &Connection,
    id: &str,
    agent_side: bool,
    seq: i64,
) -> rusqlite::Result<bool> {
    let sql = if agent_side {
        "UPDATE chats SET agent_read_seq = MIN(?2, last_seq),
                unread_for_agents = (SELECT COUNT(*) FROM messages m WHERE m.chat_id = ?1
                    AND m.sender = 'visitor' AND m.seq > MIN(?2, chats.last_seq))
         WHERE id = ?1 AND agent_read_seq < MIN(?2, last_seq)"
    } else {
        "UPDATE chats SET visitor_read_seq = MIN(?2, last_seq),
                unread_for_visitor = (SELECT COUNT(*) FROM messages m WHERE m.chat_id = ?1
                    AND m.sender = 'agent' AND m.seq > MIN(?2, chats.last_seq))
         WHERE id = ?1 AND visitor_read_seq < MIN(?2, last_seq)"
    };
    Ok(conn.prepare_cached(sql)?.execute(params![id, seq])? == 1)
}

/// Deletes up to `batch` chats closed before `cutoff`, with their messages and attachments.
/// Returns how many went; the caller repeats until none are left.
pub fn delete_closed_before(
    conn: &Connection,
    cutoff: &str,
    batch: usize,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM chats WHERE id IN (
             SELECT id FROM chats WHERE status = 'closed' AND closed_at <= ?1 LIMIT ?2)",
    )?
    .execute(params![cutoff, batch as i64])
}
