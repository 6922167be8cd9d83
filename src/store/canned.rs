//! Queries on canned responses.

use crate::domain::canned::CannedResponse;
use crate::store::sql::{Db, DbResult, Row};

const SELECT: &str = "SELECT id, shortcut, body FROM canned_responses";

fn from_row(row: &Row) -> DbResult<CannedResponse> {
    Ok(CannedResponse {
        id: row.get(0)?,
        shortcut: row.get(1)?,
        body: row.get(2)?,
    })
}

/// Every canned response, by shortcut in byte order (the same on both backends, whatever
/// PostgreSQL's collation would say about `-` and `_`).
pub fn list(db: &Db) -> DbResult<Vec<CannedResponse>> {
    let mut all = db.query_map(SELECT, &[], from_row)?;
    all.sort_by(|a, b| a.shortcut.cmp(&b.shortcut));
    Ok(all)
}

pub fn find(db: &Db, id: &str) -> DbResult<Option<CannedResponse>> {
    db.query_opt(&format!("{SELECT} WHERE id = ?1"), &[&id], from_row)
}

pub fn count(db: &Db) -> DbResult<i64> {
    db.query_row("SELECT COUNT(*) FROM canned_responses", &[], |r| r.get(0))
}

/// Whether another response than `except` has this shortcut.
pub fn shortcut_taken(db: &Db, shortcut: &str, except: Option<&str>) -> DbResult<bool> {
    db.exists(
        "SELECT 1 FROM canned_responses WHERE shortcut = ?1 AND id <> COALESCE(?2, '')",
        &[&shortcut, &except],
    )
}

pub fn insert(db: &Db, canned: &CannedResponse, at: &str) -> DbResult<()> {
    db.execute(
        "INSERT INTO canned_responses (id, shortcut, body, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        &[&canned.id, &canned.shortcut, &canned.body, &at],
    )?;
    Ok(())
}

/// Changes the given fields (`None` leaves one as it is); returns whether the row exists.
pub fn update(
    db: &Db,
    id: &str,
    shortcut: Option<&str>,
    body: Option<&str>,
    at: &str,
) -> DbResult<bool> {
    Ok(db.execute(
        "UPDATE canned_responses SET shortcut = COALESCE(?2, shortcut),
                body = COALESCE(?3, body), updated_at = ?4
         WHERE id = ?1",
        &[&id, &shortcut, &body, &at],
    )? == 1)
}

pub fn delete(db: &Db, id: &str) -> DbResult<bool> {
    Ok(db.execute("DELETE FROM canned_responses WHERE id = ?1", &[&id])? == 1)
}
