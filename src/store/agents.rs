//! Queries on agents.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::Agent;
use crate::domain::Role;

pub const COLUMNS: &str = "a.id, a.name, a.email, a.role, a.disabled, a.created_at";

/// Maps the [`COLUMNS`] starting at column `at`.
pub fn from_row(row: &Row, at: usize) -> rusqlite::Result<Agent> {
    Ok(Agent {
        id: row.get(at)?,
        name: row.get(at + 1)?,
        email: row.get(at + 2)?,
        role: Role::from_db(&row.get::<_, String>(at + 3)?),
        disabled: row.get(at + 4)?,
        created_at: row.get(at + 5)?,
    })
}

pub fn insert(conn: &Connection, agent: &Agent, password_hash: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO agents (id, name, email, role, password_hash, disabled, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        agent.id,
        agent.name,
        agent.email,
        agent.role.as_str(),
        password_hash,
        agent.disabled,
        agent.created_at
    ])?;
    Ok(())
}

pub fn count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COUNT(*) FROM agents", [], |r| r.get(0))
}

pub fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<Agent>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM agents a WHERE a.id = ?1"))?
        .query_row([id], |row| from_row(row, 0))
        .optional()
}

pub fn email_taken(conn: &Connection, email: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM agents WHERE email = ?1")?
        .exists([email])
}

/// The agent and its password hash, for a login.
pub fn find_for_login(conn: &Connection, email: &str) -> rusqlite::Result<Option<(Agent, String)>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, a.password_hash FROM agents a WHERE a.email = ?1"
    ))?
    .query_row([email], |row| Ok((from_row(row, 0)?, row.get(6)?)))
    .optional()
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Agent>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM agents a ORDER BY a.name, a.email"
    ))?
    .query_map([], |row| from_row(row, 0))?
    .collect()
}

pub fn set_disabled(conn: &Connection, id: &str, disabled: bool) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("UPDATE agents SET disabled = ?2 WHERE id = ?1")?
        .execute(params![id, disabled])?
        == 1)
}

pub fn set_password_hash(conn: &Connection, id: &str, hash: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("UPDATE agents SET password_hash = ?2 WHERE id = ?1")?
        .execute(params![id, hash])?
        == 1)
}

pub fn active_admins(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COUNT(*) FROM agents WHERE role = 'admin' AND disabled = 0")?
        .query_row([], |r| r.get(0))
}

/// Changes the given fields; `None` leaves a field as it is.
pub fn update(
    conn: &Connection,
    id: &str,
    name: Option<&str>,
    role: Option<Role>,
    disabled: Option<bool>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE agents SET name = COALESCE(?2, name), role = COALESCE(?3, role),
                disabled = COALESCE(?4, disabled)
         WHERE id = ?1",
    )?
    .execute(params![id, name, role.map(Role::as_str), disabled])?;
    Ok(())
}
