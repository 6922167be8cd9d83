//! One way to run a statement on either backend, so each query is written once where the
//! two dialects agree and twice (see [`Db::backend`]) where they do not.
//!
//! Statements use SQLite's numbered placeholders (`?1`, `?2`); on PostgreSQL they become
//! `$1`, `$2`. Values go in as [`Param`]s (anything both drivers can bind) and come out of a
//! [`Row`] as [`Column`]s (anything both can read). Integers are `i64` on both sides
//! (`INTEGER` / `BIGINT`), flags are `bool` (`INTEGER` 0/1 / `BOOLEAN`), bytes are `BYTEA`
//! on PostgreSQL. Neither `sqlx` (it links a second `sqlite3` beside `rusqlite`'s) nor an
//! ORM fits a store that already speaks plain SQL, so this adapter is the seam.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

/// The PostgreSQL channel every instance `LISTEN`s on and [`Db::notify`] sends to.
pub const CHANNEL: &str = "parley";

/// Which database a [`Db`] speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection inside a transaction (SQLite: the writer's, or a reader's connection;
/// PostgreSQL: one transaction on a pooled connection).
pub enum Db<'a> {
    Sqlite(&'a rusqlite::Connection),
    /// The transaction, and its connection's prepared statements when it keeps them.
    Postgres(
        RefCell<postgres::Transaction<'a>>,
        RefCell<Option<&'a mut Statements>>,
    ),
}

/// A PostgreSQL connection's prepared statements by their text: preparing is a round trip
/// of its own, so each statement is prepared once per pooled connection (as rusqlite's
/// `prepare_cached` does for SQLite). The set of statements is fixed by the code.
pub type Statements = HashMap<String, postgres::Statement>;

/// The prepared statement for `sql` (`?N` placeholders) on this transaction's connection.
fn prepared(
    tx: &mut postgres::Transaction<'_>,
    cache: &mut Option<&mut Statements>,
    sql: &str,
) -> DbResult<postgres::Statement> {
    if let Some(statement) = cache.as_ref().and_then(|c| c.get(sql)) {
        return Ok(statement.clone());
    }
    let statement = tx.prepare(to_postgres(sql).as_ref())?;
    if let Some(cache) = cache {
        cache.insert(sql.to_string(), statement.clone());
    }
    Ok(statement)
}

/// A value both drivers can bind.
pub trait Param: Sync {
    fn lite(&self) -> &dyn rusqlite::ToSql;
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync);
}

impl<T: rusqlite::ToSql + postgres::types::ToSql + Sync> Param for T {
    fn lite(&self) -> &dyn rusqlite::ToSql {
        self
    }
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
        self
    }
}

/// A value both drivers can read from a column.
pub trait Column: rusqlite::types::FromSql + for<'v> postgres::types::FromSql<'v> {}
impl<T: rusqlite::types::FromSql + for<'v> postgres::types::FromSql<'v>> Column for T {}

/// One row of a result.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// The value of column `index` (from 0).
    pub fn get<T: Column>(&self, index: usize) -> DbResult<T> {
        match self {
            Row::Sqlite(row) => Ok(row.get(index)?),
            Row::Postgres(row) => Ok(row.try_get(index)?),
        }
    }
}

/// A failure of either driver.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", describe_postgres(.0))]
    Postgres(#[from] postgres::Error),
    #[error("the query returned no row")]
    NoRow,
    #[error("{0}")]
    Other(String),
}

pub type DbResult<T> = Result<T, DbError>;

/// A PostgreSQL error with the server's own words (the driver's display says only "db error").
fn describe_postgres(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl From<DbError> for crate::domain::DomainError {
    fn from(e: DbError) -> Self {
        Self::Storage(Box::new(e))
    }
}

impl DbError {
    /// Whether a `UNIQUE` or primary-key constraint refused the row.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            DbError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }
}

/// `?1` → `$1` outside string literals: the statement as PostgreSQL numbers its parameters.
pub fn to_postgres(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut in_literal = false;
    for c in sql.chars() {
        match c {
            '\'' => in_literal = !in_literal,
            '?' if !in_literal => {
                out.push('$');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    Cow::Owned(out)
}

impl<'a> Db<'a> {
    /// A transaction that prepares each statement anew (one-off connections: the CLI).
    pub fn postgres(tx: postgres::Transaction<'a>) -> Self {
        Db::Postgres(RefCell::new(tx), RefCell::new(None))
    }

    /// A transaction on a pooled connection that keeps its prepared `statements`.
    pub fn postgres_cached(tx: postgres::Transaction<'a>, statements: &'a mut Statements) -> Self {
        Db::Postgres(RefCell::new(tx), RefCell::new(Some(statements)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(..) => Backend::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (blob I/O, pragmas).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Db::Sqlite(conn) => Some(conn),
            Db::Postgres(..) => None,
        }
    }

    /// The PostgreSQL transaction, once the job is done (to commit it).
    pub fn into_postgres(self) -> Option<postgres::Transaction<'a>> {
        match self {
            Db::Sqlite(_) => None,
            Db::Postgres(tx, _) => Some(tx.into_inner()),
        }
    }

    /// Runs a statement; returns the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Param]) -> DbResult<usize> {
        match self {
            Db::Sqlite(conn) => Ok(conn
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params.iter().map(|p| p.lite())))?),
            Db::Postgres(tx, cache) => {
                let params: Vec<_> = params.iter().map(|p| p.pg()).collect();
                let mut tx = tx.borrow_mut();
                let statement = prepared(&mut tx, &mut cache.borrow_mut(), sql)?;
                Ok(tx.execute(&statement, &params)? as usize)
            }
        }
    }

    /// Sends `payload` to every instance listening (PostgreSQL `NOTIFY`, delivered when this
    /// transaction commits and never if it rolls back). SQLite has one instance: nothing to do.
    pub fn notify(&self, payload: &str) -> DbResult<()> {
        match self {
            Db::Sqlite(_) => Ok(()),
            Db::Postgres(tx, _) => {
                tx.borrow_mut()
                    .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])?;
                Ok(())
            }
        }
    }

    /// Takes the lock named `key` until this transaction ends, if no other transaction
    /// holds it; returns whether it did. For periodic jobs that one instance at a time
    /// should run (PostgreSQL advisory lock); SQLite's one server always gets it.
    pub fn try_exclusive(&self, key: i64) -> DbResult<bool> {
        match self {
            Db::Sqlite(_) => Ok(true),
            Db::Postgres(tx, _) => Ok(tx
                .borrow_mut()
                .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&key])?
                .try_get(0)?),
        }
    }

    /// Runs statements separated by `;` that take no parameters.
    pub fn execute_batch(&self, sql: &str) -> DbResult<()> {
        match self {
            Db::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Db::Postgres(tx, _) => Ok(tx.borrow_mut().batch_execute(sql)?),
        }
    }

    /// Every row of a query, each mapped by `map`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut map: impl FnMut(&Row) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        match self {
            Db::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let mut rows =
                    statement.query(rusqlite::params_from_iter(params.iter().map(|p| p.lite())))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(map(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            Db::Postgres(tx, cache) => {
                let params: Vec<_> = params.iter().map(|p| p.pg()).collect();
                let mut tx = tx.borrow_mut();
                let statement = prepared(&mut tx, &mut cache.borrow_mut(), sql)?;
                let rows = tx.query(&statement, &params)?;
                rows.iter().map(|row| map(&Row::Postgres(row))).collect()
            }
        }
    }

    /// The first row of a query, if any, mapped by `map`.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl FnOnce(&Row) -> DbResult<T>,
    ) -> DbResult<Option<T>> {
        match self {
            Db::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let mut rows =
                    statement.query(rusqlite::params_from_iter(params.iter().map(|p| p.lite())))?;
                match rows.next()? {
                    Some(row) => Ok(Some(map(&Row::Sqlite(row))?)),
                    None => Ok(None),
                }
            }
            Db::Postgres(tx, cache) => {
                let params: Vec<_> = params.iter().map(|p| p.pg()).collect();
                let mut tx = tx.borrow_mut();
                let statement = prepared(&mut tx, &mut cache.borrow_mut(), sql)?;
                let row = tx.query_opt(&statement, &params)?;
                row.map(|row| map(&Row::Postgres(&row))).transpose()
            }
        }
    }

    /// The one row a query must return, mapped by `map`.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl FnOnce(&Row) -> DbResult<T>,
    ) -> DbResult<T> {
        self.query_opt(sql, params, map)?.ok_or(DbError::NoRow)
    }

    /// Whether a query returns any row.
    pub fn exists(&self, sql: &str, params: &[&dyn Param]) -> DbResult<bool> {
        Ok(self.query_opt(sql, params, |_| Ok(()))?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_for_postgres_outside_literals() {
        assert_eq!(
            to_postgres("SELECT '?' || ?1 WHERE a = ?2 AND b = 'x?y'"),
            "SELECT '?' || $1 WHERE a = $2 AND b = 'x?y'"
        );
        assert!(matches!(to_postgres("SELECT 1"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_duplicate_key_is_recognised_on_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let db = Db::Sqlite(&conn);
        db.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .unwrap();
        db.execute("INSERT INTO t VALUES (?1)", &[&"a"]).unwrap();
        let error = db
            .execute("INSERT INTO t VALUES (?1)", &[&"a"])
            .unwrap_err();
        assert!(error.is_unique_violation(), "{error}");
        let value: Option<String> = db
            .query_opt("SELECT k FROM t WHERE k = ?1", &[&"a"], |row| row.get(0))
            .unwrap();
        assert_eq!(value.as_deref(), Some("a"));
    }
}
