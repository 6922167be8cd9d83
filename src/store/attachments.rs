//! Queries on attachments: the bytes are kept in the database itself.

use std::io::{self, Write};

use rusqlite::MAIN_DB;

use crate::domain::Attachment;
use crate::store::sql::{Db, DbError, DbResult};

/// An attachment's bytes and what a download needs to answer.
pub struct Download {
    pub chat_id: String,
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Inserts the attachment's row and has `fill` write its bytes, exactly `attachment.size`
/// of them, which are streamed into the row instead of bound whole: on SQLite into a
/// zero-filled blob of that size (incremental blob I/O), on PostgreSQL through a binary
/// `COPY` (a bound `BYTEA` would have to be held in memory). `fill` must not use `db`.
pub fn insert(
    db: &Db,
    chat_id: &str,
    attachment: &Attachment,
    created_at: &str,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> DbResult<()> {
    let size = u64::try_from(attachment.size)
        .map_err(|_| DbError::Other(format!("negative size {}", attachment.size)))?;
    match db {
        Db::Sqlite(conn) => {
            let rowid: i64 = db.query_row(
                "INSERT INTO attachments (id, chat_id, name, size, content_type, data, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, zeroblob(?4), ?6)
                 RETURNING rowid",
                &[
                    &attachment.id,
                    &chat_id,
                    &attachment.name,
                    &attachment.size,
                    &attachment.content_type,
                    &created_at,
                ],
                |row| row.get(0),
            )?;
            let mut blob = conn.blob_open(MAIN_DB, c"attachments", c"data", rowid, false)?;
            fill_exactly(&mut blob, size, fill)?;
            // Closed here, before the transaction ends.
            blob.close()?;
        }
        Db::Postgres(tx, _) => {
            // A field of binary COPY has a 32-bit length (and a BYTEA holds at most 1 GiB).
            let data_len = i32::try_from(size)
                .map_err(|_| DbError::Other(format!("an attachment of {size} bytes")))?;
            let mut tx = tx.borrow_mut();
            let mut copy = tx.copy_in(
                "COPY attachments (id, chat_id, name, size, content_type, created_at, data)
                 FROM STDIN (FORMAT binary)",
            )?;
            copy.write_all(&copy_row_head(chat_id, attachment, created_at, data_len))
                .map_err(io_error)?;
            fill_exactly(&mut copy, size, fill)?;
            // The file trailer: a field count of -1.
            copy.write_all(&(-1i16).to_be_bytes()).map_err(io_error)?;
            // Not reached on an error: the dropped writer aborts the COPY.
            copy.finish()?;
        }
    }
    Ok(())
}

/// Runs `fill` on `out`, refusing any byte past `size` and failing if fewer came.
fn fill_exactly(
    out: &mut dyn Write,
    size: u64,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> DbResult<()> {
    let mut exact = Exact { out, left: size };
    fill(&mut exact).map_err(io_error)?;
    if exact.left != 0 {
        return Err(DbError::Other(format!(
            "the file gave {} of its {size} bytes",
            size - exact.left
        )));
    }
    Ok(())
}

/// Passes at most `left` more bytes on to `out`.
struct Exact<'w> {
    out: &'w mut dyn Write,
    left: u64,
}

impl Write for Exact<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the file is longer than its size",
            ));
        }
        let written = self.out.write(buf)?;
        self.left -= written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The start of PostgreSQL's binary COPY stream for one attachment row, up to and with the
/// length of its `data` field (the bytes themselves follow): the header, the field count,
/// then each field as its length and binary form (TEXT: UTF-8, BIGINT: 8 bytes
/// big-endian), in the order of the `COPY` column list.
fn copy_row_head(
    chat_id: &str,
    attachment: &Attachment,
    created_at: &str,
    data_len: i32,
) -> Vec<u8> {
    fn field(head: &mut Vec<u8>, value: &[u8]) {
        head.extend_from_slice(&(value.len() as i32).to_be_bytes());
        head.extend_from_slice(value);
    }
    let mut head = Vec::with_capacity(128);
    // Signature, flags (none), header extension length (none).
    head.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    head.extend_from_slice(&0i32.to_be_bytes());
    head.extend_from_slice(&0i32.to_be_bytes());
    head.extend_from_slice(&7i16.to_be_bytes());
    field(&mut head, attachment.id.as_bytes());
    field(&mut head, chat_id.as_bytes());
    field(&mut head, attachment.name.as_bytes());
    field(&mut head, &attachment.size.to_be_bytes());
    field(&mut head, attachment.content_type.as_bytes());
    field(&mut head, created_at.as_bytes());
    head.extend_from_slice(&data_len.to_be_bytes());
    head
}

fn io_error(e: io::Error) -> DbError {
    DbError::Other(format!("storing an attachment: {e}"))
}

pub fn find(db: &Db, id: &str) -> DbResult<Option<Download>> {
    db.query_opt(
        "SELECT chat_id, name, content_type, data FROM attachments WHERE id = ?1",
        &[&id],
        |row| {
            Ok(Download {
                chat_id: row.get(0)?,
                name: row.get(1)?,
                content_type: row.get(2)?,
                data: row.get(3)?,
            })
        },
    )
}
