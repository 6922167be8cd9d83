//! Queries on visitors.

use crate::domain::context::VisitorContext;
use crate::domain::Visitor;
use crate::store::sql::{Db, DbResult, Row};

pub const COLUMNS: &str =
    "v.id, v.name, v.email, v.page_url, v.created_at, v.context, v.external_id";
/// How many columns [`COLUMNS`] has.
pub const WIDTH: usize = 7;

/// Maps the [`COLUMNS`] starting at column `at`.
pub fn from_row(row: &Row, at: usize) -> DbResult<Visitor> {
    Ok(Visitor {
        id: row.get(at)?,
        name: row.get(at + 1)?,
        email: row.get(at + 2)?,
        page_url: row.get(at + 3)?,
        created_at: row.get(at + 4)?,
        context: context_from(row.get(at + 5)?),
        external_id: row.get(at + 6)?,
    })
}

/// Inserts the visitor; one with an `external_id` that another visitor already has is not
/// inserted (two devices of one user identifying at once: the second finds the first).
/// Returns whether it was inserted.
pub fn insert(db: &Db, visitor: &Visitor) -> DbResult<bool> {
    let inserted = db.execute(
        "INSERT INTO visitors (id, name, email, page_url, created_at, external_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (external_id) WHERE external_id IS NOT NULL DO NOTHING",
        &[
            &visitor.id,
            &visitor.name,
            &visitor.email,
            &visitor.page_url,
            &visitor.created_at,
            &visitor.external_id,
        ],
    )?;
    Ok(inserted == 1)
}

pub fn find(db: &Db, id: &str) -> DbResult<Option<Visitor>> {
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM visitors v WHERE v.id = ?1"),
        &[&id],
        |row| from_row(row, 0),
    )
}

/// The visitor the host site knows by `external_id`.
pub fn find_by_external_id(db: &Db, external_id: &str) -> DbResult<Option<Visitor>> {
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM visitors v WHERE v.external_id = ?1"),
        &[&external_id],
        |row| from_row(row, 0),
    )
}

pub fn update_contact(db: &Db, id: &str, name: Option<&str>, email: Option<&str>) -> DbResult<()> {
    db.execute(
        "UPDATE visitors SET name = COALESCE(?2, name), email = COALESCE(?3, email) WHERE id = ?1",
        &[&id, &name, &email],
    )?;
    Ok(())
}

/// The stored context; one that no longer reads (written by another version) counts as none.
fn context_from(raw: Option<String>) -> Option<VisitorContext> {
    serde_json::from_str(raw.as_deref()?).ok()
}

/// The visitor's stored context.
pub fn context(db: &Db, id: &str) -> DbResult<Option<VisitorContext>> {
    let raw: Option<Option<String>> = db.query_opt(
        "SELECT context FROM visitors WHERE id = ?1",
        &[&id],
        |row| row.get(0),
    )?;
    Ok(context_from(raw.flatten()))
}

pub fn set_context(db: &Db, id: &str, context: &VisitorContext) -> DbResult<()> {
    let json = serde_json::to_string(context).expect("a context always serializes");
    db.execute(
        "UPDATE visitors SET context = ?2 WHERE id = ?1",
        &[&id, &json],
    )?;
    Ok(())
}

/// Deletes the visitor and, by cascade, its chats with their messages, attachments, labels
/// and rating. Returns whether it existed. Its tokens are deleted apart (see
/// `tokens::delete_for_owner`): they name their owner without a foreign key.
pub fn delete(db: &Db, id: &str) -> DbResult<bool> {
    Ok(db.execute("DELETE FROM visitors WHERE id = ?1", &[&id])? == 1)
}
