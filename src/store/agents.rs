//! Queries on agents.

use crate::domain::Role;
use crate::domain::{Agent, Availability};
use crate::store::sql::{Backend, Db, DbResult, Row};

pub const COLUMNS: &str = "a.id, a.name, a.email, a.role, a.disabled, a.created_at, a.availability,
    a.email_notifications";
/// How many columns [`COLUMNS`] has.
pub const WIDTH: usize = 8;

/// Maps the [`COLUMNS`] starting at column `at`.
pub fn from_row(row: &Row, at: usize) -> DbResult<Agent> {
    Ok(Agent {
        id: row.get(at)?,
        name: row.get(at + 1)?,
        email: row.get(at + 2)?,
        role: Role::from_db(&row.get::<String>(at + 3)?),
        disabled: row.get(at + 4)?,
        created_at: row.get(at + 5)?,
        availability: Availability::from_db(&row.get::<String>(at + 6)?),
        email_notifications: row.get(at + 7)?,
    })
}

pub fn insert(db: &Db, agent: &Agent, password_hash: &str) -> DbResult<()> {
    db.execute(
        "INSERT INTO agents (id, name, email, role, password_hash, disabled, created_at,
                             availability)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            &agent.id,
            &agent.name,
            &agent.email,
            &agent.role.as_str(),
            &password_hash,
            &agent.disabled,
            &agent.created_at,
            &agent.availability.as_str(),
        ],
    )?;
    Ok(())
}

pub fn count(db: &Db) -> DbResult<i64> {
    db.query_row("SELECT COUNT(*) FROM agents", &[], |r| r.get(0))
}

pub fn find(db: &Db, id: &str) -> DbResult<Option<Agent>> {
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM agents a WHERE a.id = ?1"),
        &[&id],
        |row| from_row(row, 0),
    )
}

pub fn email_taken(db: &Db, email: &str) -> DbResult<bool> {
    db.exists("SELECT 1 FROM agents WHERE email = ?1", &[&email])
}

/// The agent and its password hash, for a login.
pub fn find_for_login(db: &Db, email: &str) -> DbResult<Option<(Agent, String)>> {
    db.query_opt(
        &format!("SELECT {COLUMNS}, a.password_hash FROM agents a WHERE a.email = ?1"),
        &[&email],
        |row| Ok((from_row(row, 0)?, row.get(WIDTH)?)),
    )
}

pub fn list(db: &Db) -> DbResult<Vec<Agent>> {
    db.query_map(
        &format!("SELECT {COLUMNS} FROM agents a ORDER BY a.name, a.email"),
        &[],
        |row| from_row(row, 0),
    )
}

pub fn set_disabled(db: &Db, id: &str, disabled: bool) -> DbResult<bool> {
    Ok(db.execute(
        "UPDATE agents SET disabled = ?2 WHERE id = ?1",
        &[&id, &disabled],
    )? == 1)
}

/// Turns the agent's email notifications on or off. Returns whether the agent exists.
pub fn set_email_notifications(db: &Db, id: &str, on: bool) -> DbResult<bool> {
    Ok(db.execute(
        "UPDATE agents SET email_notifications = ?2 WHERE id = ?1",
        &[&id, &on],
    )? == 1)
}

pub fn set_password_hash(db: &Db, id: &str, hash: &str) -> DbResult<bool> {
    Ok(db.execute(
        "UPDATE agents SET password_hash = ?2 WHERE id = ?1",
        &[&id, &hash],
    )? == 1)
}

/// How many active admins there are. On PostgreSQL their rows stay locked until the
/// transaction ends, so two demotions on two instances cannot both count the other's
/// admin and leave none (SQLite's single writer already runs them one after the other).
pub fn active_admins(db: &Db) -> DbResult<i64> {
    let sql = match db.backend() {
        Backend::Sqlite => "SELECT id FROM agents WHERE role = 'admin' AND NOT disabled",
        Backend::Postgres => {
            "SELECT id FROM agents WHERE role = 'admin' AND NOT disabled ORDER BY id FOR UPDATE"
        }
    };
    Ok(db.query_map(sql, &[], |_| Ok(()))?.len() as i64)
}

/// Changes the given fields; `None` leaves a field as it is.
pub fn update(
    db: &Db,
    id: &str,
    name: Option<&str>,
    role: Option<Role>,
    disabled: Option<bool>,
) -> DbResult<()> {
    db.execute(
        "UPDATE agents SET name = COALESCE(?2, name), role = COALESCE(?3, role),
                disabled = COALESCE(?4, disabled)
         WHERE id = ?1",
        &[&id, &name, &role.map(Role::as_str), &disabled],
    )?;
    Ok(())
}

/// Sets the agent's availability; going `online` also counts as a request now.
pub fn set_availability(
    db: &Db,
    id: &str,
    availability: Availability,
    now: &str,
) -> DbResult<bool> {
    Ok(db.execute(
        "UPDATE agents SET availability = ?2,
             last_seen_at = CASE WHEN ?2 = 'online' THEN CAST(?3 AS TEXT) ELSE last_seen_at END
         WHERE id = ?1",
        &[&id, &availability.as_str(), &now],
    )? == 1)
}

/// Records the agent's latest request.
pub fn touch_seen(db: &Db, id: &str, now: &str) -> DbResult<()> {
    db.execute(
        "UPDATE agents SET last_seen_at = ?2 WHERE id = ?1",
        &[&id, &now],
    )?;
    Ok(())
}

/// Whether an active agent is `online` and made a request at or after `since`.
pub fn any_present(db: &Db, since: &str) -> DbResult<bool> {
    db.exists(
        "SELECT 1 FROM agents
         WHERE availability = 'online' AND NOT disabled AND last_seen_at >= ?1",
        &[&since],
    )
}
