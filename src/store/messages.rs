//! Queries on messages. `seq` is the cursor: every read here is keyed by it.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::{Attachment, Author, Message, Sender};

const SELECT: &str = "SELECT m.seq, m.id, m.chat_id, m.sender, m.author_id,
        COALESCE(ag.name, vi.name), m.body, m.client_id, m.event, m.created_at,
        at.id, at.name, at.size, at.content_type
    FROM messages m
    LEFT JOIN agents ag ON ag.id = m.author_id
    LEFT JOIN visitors vi ON vi.id = m.author_id
    LEFT JOIN attachments at ON at.id = m.attachment_id";

fn from_row(row: &Row) -> rusqlite::Result<Message> {
    let author_id: Option<String> = row.get(4)?;
    Ok(Message {
        seq: row.get(0)?,
        id: row.get(1)?,
        chat_id: row.get(2)?,
        sender: row.get(3)?,
        author: author_id.map(|id| Author {
            id,
            name: row.get(5).ok().flatten(),
        }),
        body: row.get(6)?,
        client_id: row.get(7)?,
        event: row.get(8)?,
        attachment: match row.get::<_, Option<String>>(10)? {
            Some(id) => Some(Attachment {
                url: Attachment::url_for(&id),
                id,
                name: row.get(11)?,
                size: row.get(12)?,
                content_type: row.get(13)?,
            }),
            None => None,
        },
        created_at: row.get(9)?,
    })
}

/// A page of messages and whether more lie beyond it.
pub struct Page {
    pub messages: Vec<Message>,
    pub has_more: bool,
}

/// Messages of a chat with `seq > after`, ascending, at most `limit`.
pub fn after(conn: &Connection, chat_id: &str, after: i64, limit: usize) -> rusqlite::Result<Page> {
    let mut messages: Vec<Message> = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE m.chat_id = ?1 AND m.seq > ?2 ORDER BY m.seq LIMIT ?3"
        ))?
        .query_map(params![chat_id, after, limit as i64 + 1], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let has_more = messages.len() > limit;
    messages.truncate(limit);
    Ok(Page { messages, has_more })
}

/// The newest `limit` messages of a chat with `seq < before`, ascending.
pub fn before(
    conn: &Connection,
    chat_id: &str,
    before: i64,
    limit: usize,
) -> rusqlite::Result<Page> {
    let mut messages: Vec<Message> = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE m.chat_id = ?1 AND m.seq < ?2 ORDER BY m.seq DESC LIMIT ?3"
        ))?
        .query_map(params![chat_id, before, limit as i64 + 1], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let has_more = messages.len() > limit;
    messages.truncate(limit);
    messages.reverse();
    Ok(Page { messages, has_more })
}

pub fn find_by_seq(conn: &Connection, seq: i64) -> rusqlite::Result<Option<Message>> {
    conn.prepare_cached(&format!("{SELECT} WHERE m.seq = ?1"))?
        .query_row([seq], from_row)
        .optional()
}

/// The message an author already sent with this idempotency key, if any.
pub fn find_by_client_id(
    conn: &Connection,
    chat_id: &str,
    author_id: &str,
    client_id: &str,
) -> rusqlite::Result<Option<Message>> {
    conn.prepare_cached(&format!(
        "{SELECT} WHERE m.chat_id = ?1 AND m.author_id = ?2 AND m.client_id = ?3"
    ))?
    .query_row(params![chat_id, author_id, client_id], from_row)
    .optional()
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
}

/// Appends a message and moves the chat's `last_seq` to it. Runs inside the writer's transaction.
pub fn insert(conn: &Connection, new: NewMessage) -> rusqlite::Result<Message> {
    conn.prepare_cached(
        "INSERT INTO messages
             (id, chat_id, sender, author_id, body, client_id, event, created_at, attachment_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        new.id,
        new.chat_id,
        new.sender,
        new.author.as_ref().map(|a| a.id.as_str()),
        new.body,
        new.client_id,
        new.event,
        new.created_at,
        new.attachment.as_ref().map(|a| a.id.as_str())
    ])?;
    let seq = conn.last_insert_rowid();
    // Counted at insert: a job that fails after this (rare) rolls back yet stays counted.
    crate::metrics::message_stored(new.sender.as_str());
    conn.prepare_cached(
        "UPDATE chats SET last_seq = ?2, last_message_at = ?3,
                unread_for_agents = unread_for_agents + (?4 = 'visitor'),
                unread_for_visitor = unread_for_visitor + (?4 = 'agent')
         WHERE id = ?1",
    )?
    .execute(params![new.chat_id, seq, new.created_at, new.sender])?;
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
        created_at: new.created_at,
    })
}

/// The `{id, name}` of an agent or visitor as messages show it.
pub fn author(conn: &Connection, id: &str) -> rusqlite::Result<Author> {
    let name = conn
        .prepare_cached(
            "SELECT name FROM agents WHERE id = ?1
             UNION ALL SELECT name FROM visitors WHERE id = ?1 LIMIT 1",
        )?
        .query_row([id], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(Author {
        id: id.to_string(),
        name,
    })
}

/// Appends a `sender: "system"` message recording a chat event, by `actor` if known.
pub fn insert_event(
    conn: &Connection,
    chat_id: &str,
    event: &str,
    body: String,
    actor: Option<Author>,
) -> rusqlite::Result<Message> {
    insert(
        conn,
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
        },
    )
}
