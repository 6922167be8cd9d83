//! Queries on messages. `seq` is the cursor: every read here is keyed by it.

use crate::domain::{Attachment, Author, Message, Sender};
use crate::store::sql::{Backend, Db, DbResult, Row};

const SELECT: &str = "SELECT m.seq, m.id, m.chat_id, m.sender, m.author_id,
        COALESCE(ag.name, vi.name), m.body, m.client_id, m.event, m.created_at,
        at.id, at.name, at.size, at.content_type, m.private
    FROM messages m
    LEFT JOIN agents ag ON ag.id = m.author_id
    LEFT JOIN visitors vi ON vi.id = m.author_id
    LEFT JOIN attachments at ON at.id = m.attachment_id";

fn from_row(row: &Row) -> DbResult<Message> {
    let author_id: Option<String> = row.get(4)?;
    let author_name: Option<String> = row.get(5)?;
    Ok(Message {
        seq: row.get(0)?,
        id: row.get(1)?,
        chat_id: row.get(2)?,
        sender: row.get(3)?,
        author: author_id.map(|id| Author {
            id,
            name: author_name,
        }),
        body: row.get(6)?,
        client_id: row.get(7)?,
        event: row.get(8)?,
        attachment: match row.get::<Option<String>>(10)? {
            Some(id) => Some(Attachment {
                url: Attachment::url_for(&id),
                id,
                name: row.get(11)?,
                size: row.get(12)?,
                content_type: row.get(13)?,
            }),
            None => None,
        },
        private: row.get(14)?,
        created_at: row.get(9)?,
    })
}

/// A page of messages and whether more lie beyond it.
pub struct Page {
    pub messages: Vec<Message>,
    pub has_more: bool,
}

/// Which messages a read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Every message (agents).
    All,
    /// All but private notes (the chat's visitor).
    Public,
}

impl Shown {
    /// The `?4` of the page queries: whether private notes are included.
    fn with_private(self) -> bool {
        self == Shown::All
    }
}

/// Messages of a chat with `seq > after`, ascending, at most `limit`.
pub fn after(db: &Db, chat_id: &str, after: i64, limit: usize, shown: Shown) -> DbResult<Page> {
    let mut messages = db.query_map(
        &format!(
            "{SELECT} WHERE m.chat_id = ?1 AND m.seq > ?2 AND (?4 OR NOT m.private)
             ORDER BY m.seq LIMIT ?3"
        ),
        &[&chat_id, &after, &(limit as i64 + 1), &shown.with_private()],
        from_row,
    )?;
    let has_more = messages.len() > limit;
    messages.truncate(limit);
    Ok(Page { messages, has_more })
}

/// The newest `limit` messages of a chat with `seq < before`, ascending.
pub fn before(db: &Db, chat_id: &str, before: i64, limit: usize, shown: Shown) -> DbResult<Page> {
    let mut messages = db.query_map(
        &format!(
            "{SELECT} WHERE m.chat_id = ?1 AND m.seq < ?2 AND (?4 OR NOT m.private)
             ORDER BY m.seq DESC LIMIT ?3"
        ),
        &[
            &chat_id,
            &before,
            &(limit as i64 + 1),
            &shown.with_private(),
        ],
        from_row,
    )?;
    let has_more = messages.len() > limit;
    messages.truncate(limit);
    messages.reverse();
    Ok(Page { messages, has_more })
}

pub fn find_by_seq(db: &Db, seq: i64) -> DbResult<Option<Message>> {
    db.query_opt(&format!("{SELECT} WHERE m.seq = ?1"), &[&seq], from_row)
}

/// The chat's latest message that is not a private note: what its visitor sees as the last.
pub fn last_public(db: &Db, chat_id: &str) -> DbResult<Option<Message>> {
    db.query_opt(
        &format!("{SELECT} WHERE m.chat_id = ?1 AND NOT m.private ORDER BY m.seq DESC LIMIT 1"),
        &[&chat_id],
        from_row,
    )
}

/// The seq of the chat's latest message that is not a private note (0 if none).
pub fn last_public_seq(db: &Db, chat_id: &str) -> DbResult<i64> {
    db.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE chat_id = ?1 AND NOT private",
        &[&chat_id],
        |r| r.get(0),
    )
}

/// The message an author already sent with this idempotency key, if any.
pub fn find_by_client_id(
    db: &Db,
    chat_id: &str,
    author_id: &str,
    client_id: &str,
) -> DbResult<Option<Message>> {
    db.query_opt(
        &format!("{SELECT} WHERE m.chat_id = ?1 AND m.author_id = ?2 AND m.client_id = ?3"),
        &[&chat_id, &author_id, &client_id],
        from_row,
    )
}

/// What a writer supplies; the store assigns `seq`.
pub struct NewMessage<'a> {
    pub id: String,
    pub chat_id: &'a str,
    pub sender: Sender,
    pub author: Option<Author>,
    pub body: String,
    pub client_id: Option<String>,
    pub event: Option<&'a str>,
    pub created_at: String,
    /// Already stored with [`crate::store::attachments::insert`].
    pub attachment: Option<Attachment>,
    /// A note for the agents only.
    pub private: bool,
}

/// Appends a message and moves the chat's `last_seq` to it. Runs inside the writer's transaction.
pub fn insert(db: &Db, new: NewMessage) -> DbResult<Message> {
    let sender = new.sender;
    let author_id = new.author.as_ref().map(|a| a.id.as_str());
    let attachment_id = new.attachment.as_ref().map(|a| a.id.as_str());
    let seq: Option<i64> = match db.backend() {
        // NULL: the rowid is assigned, and the single writer's BEGIN IMMEDIATE orders every
        // commit, so the rowid is commit order.
        Backend::Sqlite => None,
        // See `next_seq`: the seq is taken from the counter row, whose lock this
        // transaction then holds until it commits.
        Backend::Postgres => Some(next_seq(db)?),
    };
    // No RETURNING: SQLite would collect the returned row in a temporary table.
    db.execute(
        "INSERT INTO messages (seq, id, chat_id, sender, author_id, body, client_id, event,
                               created_at, attachment_id, private)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        &[
            &seq,
            &new.id,
            &new.chat_id,
            &sender,
            &author_id,
            &new.body,
            &new.client_id,
            &new.event,
            &new.created_at,
            &attachment_id,
            &new.private,
        ],
    )?;
    let seq = match (seq, db.sqlite()) {
        (Some(seq), _) => seq,
        (None, Some(conn)) => conn.last_insert_rowid(),
        (None, None) => unreachable!("PostgreSQL takes every seq from its counter"),
    };
    // Counted at insert: a job that fails after this (rare) rolls back yet stays counted.
    crate::metrics::message_stored(sender.as_str());
    // `Chat::record_message` applies the same change to a chat in memory.
    let (for_agents, for_visitor) = sender.unread_counts(new.private);
    db.execute(
        "UPDATE chats SET last_seq = ?2, last_message_at = ?3,
                unread_for_agents = unread_for_agents + ?4,
                unread_for_visitor = unread_for_visitor + ?5
         WHERE id = ?1",
        &[
            &new.chat_id,
            &seq,
            &new.created_at,
            &for_agents,
            &for_visitor,
        ],
    )?;
    Ok(Message {
        id: new.id,
        seq,
        chat_id: new.chat_id.to_string(),
        sender: new.sender,
        author: new.author,
        body: new.body,
        client_id: new.client_id,
        event: new.event.map(str::to_string),
        attachment: new.attachment,
        private: new.private,
        created_at: new.created_at,
    })
}

/// The seq of the chat's message before `seq` (0 if none).
pub fn prev_seq(db: &Db, chat_id: &str, seq: i64) -> DbResult<i64> {
    db.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE chat_id = ?1 AND seq < ?2",
        &[&chat_id, &seq],
        |r| r.get(0),
    )
}

/// The `{id, name}` of an agent or visitor as messages show it.
pub fn author(db: &Db, id: &str) -> DbResult<Author> {
    let name = db
        .query_opt(
            "SELECT name FROM agents WHERE id = ?1
             UNION ALL SELECT name FROM visitors WHERE id = ?1 LIMIT 1",
            &[&id],
            |r| r.get::<Option<String>>(0),
        )?
        .flatten();
    Ok(Author {
        id: id.to_string(),
        name,
    })
}

/// Appends a `sender: "system"` message recording a chat event, by `actor` if known.
pub fn insert_event(
    db: &Db,
    chat_id: &str,
    event: &str,
    body: String,
    actor: Option<Author>,
    private: bool,
) -> DbResult<Message> {
    insert(
        db,
        NewMessage {
            id: crate::domain::new_id(),
            chat_id,
            sender: Sender::System,
            author: actor,
            body,
            client_id: None,
            event: Some(event),
            created_at: crate::domain::now(),
            attachment: None,
            private,
        },
    )
}

/// The next message `seq` on PostgreSQL.
///
/// A sequence or identity column hands out numbers in the order transactions *ask*, not
/// the order they *commit*: a poller reading `seq > 41` could see 43 commit before 42 and
/// skip 42 for good. Here the number comes from one counter row updated in the writing
/// transaction; the row stays locked until that transaction commits or rolls back, so the
/// next writer gets its number only after the previous one is visible. Every snapshot
/// therefore sees a gap-free prefix of the committed seqs, and `seq > cursor` never skips
/// a row. The lock is held from the insert to the commit; the rest of a message's work is
/// done before it (see `services::messages::append`). Writers run at READ COMMITTED, so
/// the second writer's `UPDATE` reads the first one's committed value after the wait.
fn next_seq(db: &Db) -> DbResult<i64> {
    db.query_row(
        "UPDATE seq_counter SET value = value + 1 RETURNING value",
        &[],
        |r| r.get(0),
    )
}

/// Every message of a chat, oldest first, private notes included (exports, transcripts),
/// read a page at a time.
pub fn all_of_chat(db: &Db, chat_id: &str) -> DbResult<Vec<Message>> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = self::after(db, chat_id, after, 500, Shown::All)?;
        after = page.messages.last().map_or(after, |m| m.seq);
        all.extend(page.messages);
        if !page.has_more {
            return Ok(all);
        }
    }
}
