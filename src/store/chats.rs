//! Queries on chats, including the joined view the API returns.

use crate::domain::{Chat, ChatStatus, Rating, ReadMarkers};
use crate::store::sql::{Db, DbResult, Param, Row};
use crate::store::{agents, messages, visitors};

/// The labels come as one text, joined by a newline (which no label contains): one query
/// for a chat and its labels. (`string_agg` is SQLite's too since 3.44; ours is bundled.)
const SELECT: &str = "SELECT c.id, c.status, c.created_at, c.last_seq, c.last_message_at,
        c.unread_for_agents, c.unread_for_visitor,
        v.id, v.name, v.email, v.page_url, v.created_at, v.context, v.external_id,
        a.id, a.name, a.email, a.role, a.disabled, a.created_at, a.availability,
        a.email_notifications,
        c.visitor_read_seq, c.agent_read_seq,
        (SELECT string_agg(l.label, '\n') FROM chat_labels l WHERE l.chat_id = c.id),
        r.rating, r.comment
    FROM chats c
    JOIN visitors v ON v.id = c.visitor_id
    LEFT JOIN agents a ON a.id = c.assignee_id
    LEFT JOIN chat_ratings r ON r.chat_id = c.id";

/// Where [`SELECT`]'s visitor, agent and trailing columns start.
const VISITOR_AT: usize = 7;
const AGENT_AT: usize = VISITOR_AT + visitors::WIDTH;
const TAIL_AT: usize = AGENT_AT + agents::WIDTH;

fn from_row(row: &Row) -> DbResult<Chat> {
    let assignee_id: Option<String> = row.get(AGENT_AT)?;
    let rating: Option<i64> = row.get(TAIL_AT + 3)?;
    Ok(Chat {
        id: row.get(0)?,
        status: row.get(1)?,
        created_at: row.get(2)?,
        last_seq: row.get(3)?,
        last_message_at: row.get(4)?,
        unread: row.get(5)?,
        unread_by_visitor: row.get(6)?,
        visitor: visitors::from_row(row, VISITOR_AT)?,
        assignee: match assignee_id {
            Some(_) => Some(agents::from_row(row, AGENT_AT)?),
            None => None,
        },
        last_message: None,
        read: ReadMarkers {
            visitor: row.get(TAIL_AT)?,
            agent: row.get(TAIL_AT + 1)?,
        },
        labels: split_labels(row.get(TAIL_AT + 2)?),
        mentioned: false,
        rating: match rating {
            Some(rating) => Some(Rating {
                rating,
                comment: row.get(TAIL_AT + 4)?,
            }),
            None => None,
        },
    })
}

/// The labels of [`SELECT`]'s last column, sorted.
fn split_labels(joined: Option<String>) -> Vec<String> {
    let mut labels: Vec<String> = joined
        .as_deref()
        .map(|joined| joined.split('\n').map(str::to_string).collect())
        .unwrap_or_default();
    labels.sort();
    labels
}

/// Fills in each chat's `last_message`.
fn with_last_messages(db: &Db, mut chats: Vec<Chat>) -> DbResult<Vec<Chat>> {
    for chat in &mut chats {
        if chat.last_seq > 0 {
            chat.last_message = messages::find_by_seq(db, chat.last_seq)?;
        }
    }
    Ok(chats)
}

fn query(db: &Db, sql_tail: &str, args: &[&dyn Param]) -> DbResult<Vec<Chat>> {
    let chats = db.query_map(&format!("{SELECT} {sql_tail}"), args, from_row)?;
    with_last_messages(db, chats)
}

pub fn find(db: &Db, id: &str) -> DbResult<Option<Chat>> {
    Ok(query(db, "WHERE c.id = ?1", &[&id])?.pop())
}

/// The chat without its `last_message` (for callers that may already hold it).
pub fn find_bare(db: &Db, id: &str) -> DbResult<Option<Chat>> {
    db.query_opt(&format!("{SELECT} WHERE c.id = ?1"), &[&id], from_row)
}

/// The few fields an access check needs, without the joins.
pub struct Access {
    pub visitor_id: String,
    pub status: ChatStatus,
    pub last_seq: i64,
    pub read: ReadMarkers,
}

impl Access {
    /// The same fields of a chat read whole.
    pub fn of(chat: &Chat) -> Self {
        Self {
            visitor_id: chat.visitor.id.clone(),
            status: chat.status,
            last_seq: chat.last_seq,
            read: chat.read,
        }
    }
}

pub fn access(db: &Db, id: &str) -> DbResult<Option<Access>> {
    db.query_opt(
        "SELECT visitor_id, status, last_seq, visitor_read_seq, agent_read_seq
         FROM chats WHERE id = ?1",
        &[&id],
        |row| {
            Ok(Access {
                visitor_id: row.get(0)?,
                status: row.get(1)?,
                last_seq: row.get(2)?,
                read: ReadMarkers {
                    visitor: row.get(3)?,
                    agent: row.get(4)?,
                },
            })
        },
    )
}

/// Which chats an agent's list shows.
pub struct Filter<'a> {
    /// `None`: every status.
    pub status: Option<ChatStatus>,
    /// `Some("")`: unassigned only; `Some(id)`: that agent's.
    pub assignee: Option<&'a str>,
    /// Only chats with this label.
    pub label: Option<&'a str>,
    /// Only this visitor's chats.
    pub visitor_id: Option<&'a str>,
    pub limit: usize,
}

/// Chats by most recent activity first.
pub fn list(db: &Db, filter: &Filter) -> DbResult<Vec<Chat>> {
    // The casts give PostgreSQL the parameters' type where `IS NULL` alone would not.
    query(
        db,
        "WHERE (CAST(?1 AS TEXT) IS NULL OR c.status = ?1)
           AND (CAST(?2 AS TEXT) IS NULL OR (?2 = '' AND c.assignee_id IS NULL)
                OR c.assignee_id = ?2)
           AND (CAST(?4 AS TEXT) IS NULL OR EXISTS (
                SELECT 1 FROM chat_labels l WHERE l.chat_id = c.id AND l.label = ?4))
           AND (CAST(?5 AS TEXT) IS NULL OR c.visitor_id = ?5)
         ORDER BY c.last_seq DESC, c.id DESC LIMIT ?3",
        &[
            &filter.status,
            &filter.assignee,
            &(filter.limit as i64),
            &filter.label,
            &filter.visitor_id,
        ],
    )
}

/// Chats with a message whose `seq > after`, most recent first: what the inbox poll returns.
pub fn changed_since(db: &Db, after: i64, limit: usize) -> DbResult<Vec<Chat>> {
    query(
        db,
        "WHERE c.last_seq > ?1 ORDER BY c.last_seq DESC LIMIT ?2",
        &[&after, &(limit as i64)],
    )
}

/// The highest `last_seq` of any chat (0 for none), and each chat whose `last_seq` is
/// above `since` and at most that highest, with its `last_seq`: what the bus's sweep for
/// lost notifications announces.
pub fn moved_since(db: &Db, since: i64) -> DbResult<(i64, Vec<(String, i64)>)> {
    let highest: i64 = db.query_row("SELECT COALESCE(MAX(last_seq), 0) FROM chats", &[], |r| {
        r.get(0)
    })?;
    // Bounded by `highest`: a chat that moves between the two reads is left for the next
    // sweep (its seq is above the `since` that sweep passes), not announced twice.
    let moved = db.query_map(
        "SELECT id, last_seq FROM chats WHERE last_seq > ?1 AND last_seq <= ?2
         ORDER BY last_seq",
        &[&since, &highest],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((highest, moved))
}

/// The visitor's chat to show: the open one, else the most recent.
pub fn current_for_visitor(db: &Db, visitor_id: &str) -> DbResult<Option<Chat>> {
    Ok(query(
        db,
        "WHERE c.visitor_id = ?1
         ORDER BY CASE WHEN c.status = 'open' THEN 0 ELSE 1 END, c.id DESC LIMIT 1",
        &[&visitor_id],
    )?
    .pop())
}

/// Every chat of a visitor, oldest first (for its export).
pub fn all_for_visitor(db: &Db, visitor_id: &str) -> DbResult<Vec<Chat>> {
    query(db, "WHERE c.visitor_id = ?1 ORDER BY c.id", &[&visitor_id])
}

/// The ids of a visitor's chats.
pub fn ids_for_visitor(db: &Db, visitor_id: &str) -> DbResult<Vec<String>> {
    db.query_map(
        "SELECT id FROM chats WHERE visitor_id = ?1",
        &[&visitor_id],
        |r| r.get(0),
    )
}

pub fn open_id_for_visitor(db: &Db, visitor_id: &str) -> DbResult<Option<String>> {
    db.query_opt(
        "SELECT id FROM chats WHERE visitor_id = ?1 AND status = 'open' ORDER BY id DESC LIMIT 1",
        &[&visitor_id],
        |r| r.get(0),
    )
}

pub fn count_for_visitor(db: &Db, visitor_id: &str) -> DbResult<i64> {
    db.query_row(
        "SELECT COUNT(*) FROM chats WHERE visitor_id = ?1",
        &[&visitor_id],
        |r| r.get(0),
    )
}

pub fn insert(db: &Db, id: &str, visitor_id: &str, created_at: &str) -> DbResult<()> {
    db.execute(
        "INSERT INTO chats (id, visitor_id, created_at) VALUES (?1, ?2, ?3)",
        &[&id, &visitor_id, &created_at],
    )?;
    Ok(())
}

pub fn set_status(db: &Db, id: &str, status: ChatStatus, at: &str) -> DbResult<()> {
    db.execute(
        "UPDATE chats SET status = ?2,
                closed_at = CASE WHEN ?2 = 'closed' THEN CAST(?3 AS TEXT) ELSE NULL END
         WHERE id = ?1",
        &[&id, &status, &at],
    )?;
    Ok(())
}

pub fn set_assignee(db: &Db, id: &str, assignee_id: Option<&str>) -> DbResult<()> {
    db.execute(
        "UPDATE chats SET assignee_id = ?2 WHERE id = ?1",
        &[&id, &assignee_id],
    )?;
    Ok(())
}

/// What a label change did: the labels added and the labels removed, each sorted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LabelDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// Replaces a chat's labels with `labels` (sorted, without duplicates); returns what changed,
/// or `None` when the set is the same.
pub fn set_labels(db: &Db, id: &str, labels: &[String]) -> DbResult<Option<LabelDiff>> {
    let mut current = db.query_map(
        "SELECT label FROM chat_labels WHERE chat_id = ?1",
        &[&id],
        |r| r.get::<String>(0),
    )?;
    current.sort();
    if current == labels {
        return Ok(None);
    }
    db.execute("DELETE FROM chat_labels WHERE chat_id = ?1", &[&id])?;
    for label in labels {
        db.execute(
            "INSERT INTO chat_labels (chat_id, label) VALUES (?1, ?2)",
            &[&id, label],
        )?;
    }
    Ok(Some(LabelDiff {
        added: labels
            .iter()
            .filter(|l| !current.contains(l))
            .cloned()
            .collect(),
        removed: current
            .into_iter()
            .filter(|l| !labels.contains(l))
            .collect(),
    }))
}

/// Moves one side's read marker forward to `seq`, clamped to the chat's last seq (for the
/// visitor: its last message that is not a private note), and recounts that side's unread
/// messages. Returns whether it moved.
pub fn mark_read(db: &Db, id: &str, agent_side: bool, seq: i64) -> DbResult<bool> {
    if !agent_side {
        let seq = seq.min(messages::last_public_seq(db, id)?);
        let sql = "UPDATE chats SET
                visitor_read_seq = ?2,
                unread_for_visitor = (SELECT COUNT(*) FROM messages m WHERE m.chat_id = ?1
                    AND m.sender = 'agent' AND NOT m.private AND m.seq > ?2)
         WHERE id = ?1 AND visitor_read_seq < ?2";
        return Ok(db.execute(sql, &[&id, &seq])? == 1);
    }
    // The clamp is a CASE: scalar MIN(a, b) is SQLite's alone.
    let sql = "UPDATE chats SET
                agent_read_seq = CASE WHEN ?2 < last_seq THEN ?2 ELSE last_seq END,
                unread_for_agents = (SELECT COUNT(*) FROM messages m WHERE m.chat_id = ?1
                    AND m.sender = 'visitor'
                    AND m.seq > CASE WHEN ?2 < chats.last_seq THEN ?2 ELSE chats.last_seq END)
         WHERE id = ?1 AND agent_read_seq < CASE WHEN ?2 < last_seq THEN ?2 ELSE last_seq END";
    Ok(db.execute(sql, &[&id, &seq])? == 1)
}

/// Deletes up to `batch` chats closed before `cutoff`, with their messages and attachments.
/// Returns how many went; the caller repeats until none are left.
pub fn delete_closed_before(db: &Db, cutoff: &str, batch: usize) -> DbResult<usize> {
    db.execute(
        "DELETE FROM chats WHERE id IN (
             SELECT id FROM chats WHERE status = 'closed' AND closed_at <= ?1 LIMIT ?2)",
        &[&cutoff, &(batch as i64)],
    )
}
