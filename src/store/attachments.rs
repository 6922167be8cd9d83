//! Queries on attachments: the bytes are kept in the database itself.

use rusqlite::blob::Blob;
use rusqlite::{params, Connection, OptionalExtension, MAIN_DB};

use crate::domain::Attachment;

/// An attachment's bytes and what a download needs to answer.
pub struct Download {
    pub chat_id: String,
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Inserts the attachment's row with `attachment.size` zero bytes as its data, and opens
/// those bytes for writing: the caller streams the file in through the returned handle
/// (SQLite's incremental blob I/O) instead of binding it whole. Close the handle before the
/// transaction ends.
pub fn insert<'conn>(
    conn: &'conn Connection,
    chat_id: &str,
    attachment: &Attachment,
    created_at: &str,
) -> rusqlite::Result<Blob<'conn>> {
    let rowid: i64 = conn
        .prepare_cached(
            "INSERT INTO attachments (id, chat_id, name, size, content_type, data, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, zeroblob(?4), ?6)
             RETURNING rowid",
        )?
        .query_row(
            params![
                attachment.id,
                chat_id,
                attachment.name,
                attachment.size,
                attachment.content_type,
                created_at
            ],
            |row| row.get(0),
        )?;
    conn.blob_open(MAIN_DB, c"attachments", c"data", rowid, false)
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
