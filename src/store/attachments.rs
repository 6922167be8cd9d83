//! Queries on attachments: the bytes are kept in the database itself.

use rusqlite::{params, Connection, OptionalExtension};

use crate::domain::Attachment;

/// An attachment's bytes and what a download needs to answer.
pub struct Download {
    pub chat_id: String,
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

pub fn insert(
    conn: &Connection,
    chat_id: &str,
    attachment: &Attachment,
    data: &[u8],
    created_at: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO attachments (id, chat_id, name, size, content_type, data, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        attachment.id,
        chat_id,
        attachment.name,
        attachment.size,
        attachment.content_type,
        data,
        created_at
    ])?;
    Ok(())
}

pub fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<Download>> {
    conn.prepare_cached("SELECT chat_id, name, content_type, data FROM attachments WHERE id = ?1")?
        .query_row([id], |row| {
            Ok(Download {
                chat_id: row.get(0)?,
                name: row.get(1)?,
                content_type: row.get(2)?,
                data: row.get(3)?,
            })
        })
        .optional()
}
