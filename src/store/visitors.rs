//! Queries on visitors.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::Visitor;

pub const COLUMNS: &str = "v.id, v.name, v.email, v.page_url, v.created_at";

/// Maps the [`COLUMNS`] starting at column `at`.
pub fn from_row(row: &Row, at: usize) -> rusqlite::Result<Visitor> {
    Ok(Visitor {
        id: row.get(at)?,
        name: row.get(at + 1)?,
        email: row.get(at + 2)?,
        page_url: row.get(at + 3)?,
        created_at: row.get(at + 4)?,
    })
}

pub fn insert(conn: &Connection, visitor: &Visitor) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO visitors (id, name, email, page_url, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        visitor.id,
        visitor.name,
        visitor.email,
        visitor.page_url,
        visitor.created_at
    ])?;
    Ok(())
}

pub fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<Visitor>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM visitors v WHERE v.id = ?1"))?
        .query_row([id], |row| from_row(row, 0))
        .optional()
}

pub fn update_contact(
    conn: &Connection,
    id: &str,
    name: Option<&str>,
    email: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE visitors SET name = COALESCE(?2, name), email = COALESCE(?3, email) WHERE id = ?1",
    )?
    .execute(params![id, name, email])?;
    Ok(())
}
