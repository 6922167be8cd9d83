//! Queries on bearer tokens (stored only as SHA-256 hashes).

use rusqlite::{params, Connection, OptionalExtension};

use crate::domain::Role;

/// Who a token belongs to, as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Visitor { id: String },
    Agent { id: String, role: Role },
}

pub fn insert(
    conn: &Connection,
    hash: &[u8],
    kind: &str,
    owner_id: &str,
    created_at: &str,
    expires_at: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO tokens (hash, kind, owner_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![hash, kind, owner_id, created_at, expires_at])?;
    Ok(())
}

/// The live owner of a token — not expired at `now`, and for agents not disabled — and
/// when the token expires (`None`: never).
pub fn lookup(
    conn: &Connection,
    hash: &[u8],
    now: &str,
) -> rusqlite::Result<Option<(Owner, Option<String>)>> {
    conn.prepare_cached(
        "SELECT t.kind, t.owner_id, a.role, t.expires_at
         FROM tokens t LEFT JOIN agents a ON t.kind = 'agent' AND a.id = t.owner_id
         WHERE t.hash = ?1 AND (t.expires_at IS NULL OR t.expires_at > ?2)
           AND (t.kind = 'visitor' OR a.disabled = 0)",
    )?
    .query_row(params![hash, now], |row| {
        let kind: String = row.get(0)?;
        let id: String = row.get(1)?;
        let owner = if kind == "agent" {
            Owner::Agent {
                id,
                role: Role::from_db(&row.get::<_, String>(2)?),
            }
        } else {
            Owner::Visitor { id }
        };
        Ok((owner, row.get(3)?))
    })
    .optional()
}

/// The revocation counter (see `schema.sql`).
pub fn session_epoch(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT epoch FROM session_epoch")?
        .query_row([], |row| row.get(0))
}

/// Moves the revocation counter; call in the transaction that revokes tokens.
pub fn bump_session_epoch(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE session_epoch SET epoch = epoch + 1")?
        .execute([])?;
    Ok(())
}

pub fn delete(conn: &Connection, hash: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM tokens WHERE hash = ?1")?
        .execute([hash])?;
    Ok(())
}

/// Revokes every token of an owner except `keep` (e.g. the session changing a password);
/// returns the hashes revoked, so their held polls can be answered.
pub fn delete_for_owner(
    conn: &Connection,
    owner_id: &str,
    keep: Option<&[u8]>,
) -> rusqlite::Result<Vec<[u8; 32]>> {
    conn.prepare_cached("DELETE FROM tokens WHERE owner_id = ?1 AND hash IS NOT ?2 RETURNING hash")?
        .query_map(params![owner_id, keep], |row| row.get::<_, [u8; 32]>(0))?
        .collect()
}
