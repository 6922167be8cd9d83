//! Queries on visitors.

use crate::domain::context::VisitorContext;
use crate::domain::Visitor;
use crate::store::sql::{Db, DbResult, Row};

pub const COLUMNS: &str = "v.id, v.name, v.email, v.page_url, v.created_at, v.context";
/// How many columns [`COLUMNS`] has.
pub const WIDTH: usize = 6;

/// Maps the [`COLUMNS`] starting at column `at`.
pub fn from_row(row: &Row, at: usize) -> DbResult<Visitor> {
    Ok(Visitor {
        id: row.get(at)?,
        name: row.get(at + 1)?,
        email: row.get(at + 2)?,
        page_url: row.get(at + 3)?,
        created_at: row.get(at + 4)?,
        context: context_from(row.get(at + 5)?),
    })
}

pub fn insert(db: &Db, visitor: &Visitor) -> DbResult<()> {
    db.execute(
        "INSERT INTO visitors (id, name, email, page_url, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            &visitor.id,
            &visitor.name,
            &visitor.email,
            &visitor.page_url,
            &visitor.created_at,
        ],
    )?;
    Ok(())
}

pub fn find(db: &Db, id: &str) -> DbResult<Option<Visitor>> {
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM visitors v WHERE v.id = ?1"),
        &[&id],
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
