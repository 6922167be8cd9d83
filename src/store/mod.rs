//! SQLite storage: the read pool, the single group-committing writer, migrations and queries.
//!
//! SQL stays synchronous. Handlers reach it only through [`Store::read`] (a pooled connection
//! on the blocking thread pool) and [`Store::write`] (a job for the writer thread), so no
//! connection is ever held across an `.await`.

pub mod agents;
pub mod attachments;
pub mod chats;
pub mod messages;
pub mod stats;
pub mod tokens;
pub mod visitors;
pub mod webhooks;
mod writer;

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use crate::error::ApiError;
pub use writer::Writer;

/// The whole schema, applied to an empty database.
const SCHEMA: &str = include_str!("../../schema.sql");

/// `PRAGMA user_version` of a database that has [`SCHEMA`]; bump it with each migration.
pub const SCHEMA_VERSION: i64 = 4;

/// Ordered migrations: `MIGRATIONS[i]` takes a database from version `i + 1` to `i + 2`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/2_attachments.sql"),
    include_str!("migrations/3_webhooks.sql"),
    include_str!("migrations/4_unread_counts.sql"),
];

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// Handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    writer: Writer,
    /// One permit per pooled connection: a read waits here, on the async side, instead of
    /// parking a blocking thread on the pool (10,000 polls arriving at once would otherwise
    /// start hundreds of threads).
    read_permits: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Settings on every connection: WAL lets readers run beside the writer; NORMAL sync in WAL
/// mode still survives a process crash (only an OS crash can lose the last commits).
fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Moves the WAL into the database file from a thread of its own. SQLite would otherwise
/// checkpoint inside the writer's commit every 1000 pages, and that commit — and every send
/// waiting on it — would pay for the copy and its fsync. A PASSIVE checkpoint never blocks
/// the writer or the readers.
fn start_checkpointer(path: &Path) -> rusqlite::Result<()> {
    let conn = open(path)?;
    std::thread::Builder::new()
        .name("parley-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                log::warn!("checkpoint failed: {e}");
            }
        })
        .expect("the OS can start one more thread at startup");
    Ok(())
}

/// Opens one configured connection (for the writer, the CLI and backups).
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    configure(&mut conn)?;
    Ok(conn)
}

/// Brings the database to [`SCHEMA_VERSION`].
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        // Written by a newer Parley: running on it could corrupt what this one does not know.
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "the database has schema version {version}, newer than this binary's {SCHEMA_VERSION}"
            )),
        ));
    }
    if version == 0 {
        tx.execute_batch(SCHEMA)?;
    } else {
        for migration in MIGRATIONS.iter().skip((version - 1).max(0) as usize) {
            tx.execute_batch(migration)?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

impl Store {
    /// Opens (creating if needed) and migrates the database, then starts the writer.
    pub fn open(path: &Path, readers: u32) -> Result<Self, Box<dyn std::error::Error>> {
        let mut conn = open(path)?;
        migrate(&mut conn)?;
        let manager = SqliteConnectionManager::file(path).with_init(|conn| {
            configure(conn)?;
            // Readers never write: a bug that tries is caught here, not in the data.
            conn.pragma_update(None, "query_only", true)
        });
        let pool = r2d2::Pool::builder()
            .max_size(readers)
            .min_idle(Some(1))
            .build(manager)?;
        // Checkpoints run beside the writer, never inside a commit (see `checkpointer`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        start_checkpointer(path)?;
        Ok(Self {
            pool,
            writer: Writer::start(conn),
            read_permits: std::sync::Arc::new(tokio::sync::Semaphore::new(readers as usize)),
        })
    }

    /// Runs a read-only query on a pooled connection, off the async threads.
    pub async fn read<T, F>(&self, query: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .read_permits
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable)?;
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let conn = pool.get()?;
            query(&conn)
        })
        .await?
    }

    /// Runs `job` in the writer's transaction; resolves once that transaction has committed.
    /// An `Err` from the job rolls back only the job's own changes.
    pub async fn write<T, F>(&self, job: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.run(job).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table's columns (name, type, not-null, default, pk) and every index name.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut names: Vec<(String, String)> = conn
            .prepare(
                "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        names.sort();
        let mut shape = Vec::new();
        for (kind, name) in names {
            shape.push(format!("{kind} {name}"));
            if kind == "table" {
                let columns: Vec<String> = conn
                    .prepare(&format!("PRAGMA table_info({name})"))
                    .unwrap()
                    .query_map([], |r| {
                        Ok(format!(
                            "  {} {} {} {:?} {}",
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, i64>(5)?
                        ))
                    })
                    .unwrap()
                    .collect::<rusqlite::Result<_>>()
                    .unwrap();
                shape.extend(columns);
            }
        }
        shape
    }

    #[test]
    fn a_version_1_database_migrates_to_the_shape_of_a_fresh_one() {
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(include_str!("testdata/schema_v1.sql"))
            .unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        migrate(&mut old).unwrap();
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        let version: i64 = old
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(shape(&old), shape(&fresh));
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let before = shape(&conn);
        migrate(&mut conn).unwrap();
        assert_eq!(shape(&conn), before);
    }
}
