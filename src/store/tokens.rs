//! Queries on bearer tokens (stored only as SHA-256 hashes).

use crate::domain::Role;
use crate::store::sql::{Db, DbError, DbResult};

/// Who a token belongs to, as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// `verified`: the host site vouched for the visitor (it has an `external_id`).
    Visitor {
        id: String,
        verified: bool,
    },
    Agent {
        id: String,
        role: Role,
    },
}

pub fn insert(
    db: &Db,
    hash: &[u8],
    kind: &str,
    owner_id: &str,
    created_at: &str,
    expires_at: Option<&str>,
) -> DbResult<()> {
    db.execute(
        "INSERT INTO tokens (hash, kind, owner_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &[&hash, &kind, &owner_id, &created_at, &expires_at],
    )?;
    Ok(())
}

/// The live owner of a token — not expired at `now`, and for agents not disabled — and
/// when the token expires (`None`: never).
pub fn lookup(db: &Db, hash: &[u8], now: &str) -> DbResult<Option<(Owner, Option<String>)>> {
    db.query_opt(
        "SELECT t.kind, t.owner_id, a.role, t.expires_at,
                CAST(CASE WHEN v.external_id IS NULL THEN 0 ELSE 1 END AS BIGINT)
         FROM tokens t
         LEFT JOIN agents a ON t.kind = 'agent' AND a.id = t.owner_id
         LEFT JOIN visitors v ON t.kind = 'visitor' AND v.id = t.owner_id
         WHERE t.hash = ?1 AND (t.expires_at IS NULL OR t.expires_at > ?2)
           AND (t.kind = 'visitor' OR NOT a.disabled)",
        &[&hash, &now],
        |row| {
            let kind: String = row.get(0)?;
            let id: String = row.get(1)?;
            let owner = if kind == "agent" {
                Owner::Agent {
                    id,
                    role: Role::from_db(&row.get::<String>(2)?),
                }
            } else {
                Owner::Visitor {
                    id,
                    verified: row.get::<i64>(4)? == 1,
                }
            };
            Ok((owner, row.get(3)?))
        },
    )
}

/// The revocation counter (see `schema.sql`).
pub fn session_epoch(db: &Db) -> DbResult<i64> {
    db.query_row("SELECT epoch FROM session_epoch", &[], |row| row.get(0))
}

/// Moves the revocation counter; call in the transaction that revokes tokens.
pub fn bump_session_epoch(db: &Db) -> DbResult<()> {
    db.execute("UPDATE session_epoch SET epoch = epoch + 1", &[])?;
    Ok(())
}

pub fn delete(db: &Db, hash: &[u8]) -> DbResult<()> {
    db.execute("DELETE FROM tokens WHERE hash = ?1", &[&hash])?;
    Ok(())
}

/// Revokes every token of an owner except `keep` (e.g. the session changing a password);
/// returns the hashes revoked, so their held polls can be answered.
pub fn delete_for_owner(db: &Db, owner_id: &str, keep: Option<&[u8]>) -> DbResult<Vec<[u8; 32]>> {
    // `IS DISTINCT FROM` (SQLite's `IS NOT`): a `None` keep keeps nothing.
    db.query_map(
        "DELETE FROM tokens WHERE owner_id = ?1 AND hash IS DISTINCT FROM ?2 RETURNING hash",
        &[&owner_id, &keep],
        |row| {
            let hash: Vec<u8> = row.get(0)?;
            <[u8; 32]>::try_from(hash).map_err(|hash| {
                DbError::Other(format!("a token hash has {} bytes, not 32", hash.len()))
            })
        },
    )
}
