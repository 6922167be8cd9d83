//! Queries on the team's settings: one JSON value per name.

use crate::store::sql::{Db, DbResult};

/// Every stored setting as (name, JSON value).
pub fn all(db: &Db) -> DbResult<Vec<(String, String)>> {
    db.query_map("SELECT name, value FROM settings", &[], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
}

/// Stores one setting, replacing its value.
pub fn put(db: &Db, name: &str, value: &str, now: &str) -> DbResult<()> {
    db.execute(
        "INSERT INTO settings (name, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        &[&name, &value, &now],
    )?;
    Ok(())
}
