//! SQLite storage: the read pool, the single group-committing writer, migrations and queries.
//!
//! SQL stays synchronous. Handlers reach it only through [`Store::read`] (a pooled connection
//! on the blocking thread pool) and [`Store::write`] (a job for the writer thread), so no
//! connection is ever held across an `.await`.

pub mod agents;
pub mod attachments;
pub mod canned;
pub mod chats;
pub mod mail;
pub mod mentions;
pub mod messages;
pub mod postgres;
pub mod ratings;
pub mod search;
pub mod settings;
pub mod sql;
pub mod stats;
pub mod tokens;
mod values;
pub mod visitors;
pub mod webhooks;
mod writer;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::config::DbConfig;
use rusqlite::Connection;

use crate::domain::DomainError;
pub use sql::{Backend, Db, DbError, DbResult};
pub use writer::Writer;

/// The whole schema, applied to an empty database.
const SCHEMA: &str = include_str!("../../schema.sql");

/// `PRAGMA user_version` of a database that has [`SCHEMA`]; bump it with each migration.
pub const SCHEMA_VERSION: i64 = 14;

/// Ordered migrations: `MIGRATIONS[i]` takes a database from version `i + 1` to `i + 2`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/2_attachments.sql"),
    include_str!("migrations/3_webhooks.sql"),
    include_str!("migrations/4_unread_counts.sql"),
    include_str!("migrations/5_session_epoch.sql"),
    include_str!("migrations/6_agent_tools.sql"),
    include_str!("migrations/7_label_events.sql"),
    include_str!("migrations/8_mentions.sql"),
    include_str!("migrations/9_availability.sql"),
    include_str!("migrations/10_mail.sql"),
    include_str!("migrations/11_identity_ratings.sql"),
    include_str!("migrations/12_search_per_transaction.sql"),
    include_str!("migrations/13_checks_without_in_lists.sql"),
    include_str!("migrations/14_client_id_first.sql"),
];

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// SQLite read connections. Long polls hold none while they wait, but a woken poll that
/// missed the writer's hand-over reads, and with four readers those reads queued at 16
/// senders (delivery p50 3 ms became 35 ms). Their page caches are kept small instead.
pub const READERS: u32 = 8;

/// Handle to the database, cheap to clone.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(postgres::PgStore),
}

/// The embedded backend: a read pool beside one group-committing writer.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool,
    writer: Writer,
    /// One permit per pooled connection: a read waits here, on the async side, instead of
    /// parking a blocking thread on the pool (10,000 polls arriving at once would otherwise
    /// start hundreds of threads).
    read_permits: Arc<tokio::sync::Semaphore>,
}

/// Settings on every connection: WAL lets readers run beside the writer; NORMAL sync in WAL
/// mode still survives a process crash (only an OS crash can lose the last commits);
/// `secure_delete` overwrites what is deleted, so erased text does not linger in free pages.
fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA secure_delete = ON;",
    )?;
    // Query plans do not depend on bound values. Without this SQLite 3.50 plans a
    // `LIMIT ?` with the value bound and expires the statement whenever it is bound again:
    // every page of messages was parsed and planned anew (~165k instructions each).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL pages (4 KiB each: 64 MiB) after which the writer restarts the WAL (see [`WalRestart`]).
const WAL_RESTART_PAGES: i64 = 16_384;

/// Moves the WAL into the database file from a thread of its own. SQLite would otherwise
/// checkpoint inside the writer's commit every 1000 pages, and that commit — and every send
/// waiting on it — would pay for the copy and its fsync. A PASSIVE checkpoint never blocks
/// the writer or the readers.
///
/// But a PASSIVE checkpoint alone cannot stop the WAL file from growing: SQLite writes from
/// the start of the file again only when a transaction begins with the whole WAL copied
/// back, and under a steady stream of commits that moment never comes (a 10 s run of 64
/// senders left a 1.9 GB WAL). So when the WAL passes `restart_pages`, this thread asks
/// the writer, between two of its transactions, for a RESTART checkpoint (see
/// `writer::writer_loop`).
fn start_checkpointer(path: &Path, every: Duration, restart: WalRestart) -> rusqlite::Result<()> {
    let conn = open(path)?;
    std::thread::Builder::new()
        .name("parley-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1)) {
                Ok(wal_pages) => restart.note_wal_size(wal_pages),
                Err(e) => log::warn!("checkpoint failed: {e}"),
            }
        })
        .expect("the OS can start one more thread at startup");
    Ok(())
}

/// Copies every WAL frame back and cuts the file to nothing, waiting for readers (the
/// connection's busy timeout) and for another checkpoint that is running (the checkpointer
/// thread's, every 500 ms). SQLite reports that last case only in the pragma's `busy`
/// column, not as an error, so the checkpoint is tried again, 10 ms apart, up to a second.
/// An erasure relies on it: until then the WAL holds old copies of the erased pages.
fn truncate_wal(conn: &Connection) -> rusqlite::Result<()> {
    const TRIES: u32 = 100;
    for _ in 0..TRIES {
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    log::warn!("the WAL is still in use after {TRIES} tries to empty it");
    Ok(())
}

/// Requests to the writer, between two of its transactions, to restart the WAL (it grew
/// too long) or to empty it (deleted data must leave the disk).
#[derive(Clone)]
pub struct WalRestart {
    wanted: Arc<AtomicBool>,
    truncate_wanted: Arc<AtomicBool>,
    restart_pages: i64,
}

impl WalRestart {
    fn new(restart_pages: i64) -> Self {
        Self {
            wanted: Arc::new(AtomicBool::new(false)),
            truncate_wanted: Arc::new(AtomicBool::new(false)),
            restart_pages,
        }
    }

    fn note_wal_size(&self, wal_pages: i64) {
        if wal_pages >= self.restart_pages {
            self.wanted.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a restart was asked for since the last call.
    pub fn take(&self) -> bool {
        self.wanted.swap(false, Ordering::Relaxed)
    }

    fn request_truncate(&self) {
        self.truncate_wanted.store(true, Ordering::SeqCst);
    }

    /// Whether emptying the WAL was asked for since the last call.
    pub fn take_truncate(&self) -> bool {
        self.truncate_wanted.swap(false, Ordering::SeqCst)
    }
}

/// Opens one configured connection (for the writer, the CLI and backups). The database
/// holds password hashes, webhook secrets, every chat and file: it and its `-wal`/`-shm`
/// (which SQLite creates with the database's mode) are readable by their owner only.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    keep_private(path).map_err(|e| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("cannot secure {}: {e}", path.display())),
        )
    })?;
    let mut conn = Connection::open(path)?;
    configure(&mut conn)?;
    Ok(conn)
}

/// Creates `path` with mode 0600 if it does not exist, and takes group and other access
/// away from it and its `-wal` and `-shm` if they do.
pub fn keep_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    // Only a missing file is opened (to create it): closing a descriptor of the database
    // drops every lock this process holds on it (POSIX record locks belong to the process),
    // and a `parley stats` run beside the server would then find the database unused and
    // delete the WAL the server still writes to.
    match std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = Path::new(&file);
        match std::fs::metadata(file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?
            }
            _ => {}
        }
    }
    Ok(())
}

/// Brings the database to [`SCHEMA_VERSION`], with incremental auto-vacuum so the space
/// of deleted data can be given back to the file system.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let auto_vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if auto_vacuum != 2 {
        // Takes effect only through a VACUUM once the file has a header (WAL mode writes
        // one): instant on a new database, a one-time rebuild of an older one.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.execute_batch("VACUUM")?;
    }
    // Off while tables are rebuilt (SQLite's procedure for schema changes): dropping the old
    // table would otherwise delete, by cascade, the rows that reference it. Checked below.
    let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    let migrated = migrate_in_transaction(conn);
    conn.pragma_update(None, "foreign_keys", enforced)?;
    migrated
}

fn migrate_in_transaction(conn: &mut Connection) -> rusqlite::Result<()> {
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
    } else if version < SCHEMA_VERSION {
        apply_migrations(&tx, &MIGRATIONS[(version - 1) as usize..])?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

/// Runs `migrations` in order, and fails if they left a row without its parent that had
/// one before: tables are rebuilt with foreign keys off (see [`migrate`]), so a rebuild
/// that dropped referenced rows would otherwise pass unnoticed.
fn apply_migrations(conn: &Connection, migrations: &[&str]) -> rusqlite::Result<()> {
    let before = orphans(conn)?;
    for migration in migrations {
        conn.execute_batch(migration)?;
    }
    for ((table, parent), count) in orphans(conn)? {
        let had = before
            .get(&(table.clone(), parent.clone()))
            .copied()
            .unwrap_or(0);
        if count > had {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
                Some(format!(
                    "a migration left rows of {table} without their row in {parent}"
                )),
            ));
        }
    }
    Ok(())
}

/// How many rows of each table miss their parent in each table they reference.
fn orphans(conn: &Connection) -> rusqlite::Result<BTreeMap<(String, String), i64>> {
    conn.prepare(r#"SELECT "table", parent, COUNT(*) FROM pragma_foreign_key_check GROUP BY 1, 2"#)?
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?
        .collect()
}

impl Store {
    /// Opens the database `config` names: PostgreSQL when a URL is set, else the SQLite file.
    pub async fn open_configured(
        config: &crate::config::Config,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        match &config.database_url {
            Some(url) => {
                let (url, connections) = (url.clone(), config.database_connections);
                // The PostgreSQL client blocks: connect and migrate off the async threads.
                let opened = tokio::task::spawn_blocking(move || {
                    postgres::PgStore::open(&url, connections).map_err(|e| e.to_string())
                })
                .await?;
                Ok(Store::Postgres(opened?))
            }
            None => Self::open(&config.db, READERS),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// Opens (creating if needed) and migrates the SQLite file, then starts the writer.
    pub fn open(path: &Path, readers: u32) -> Result<Self, Box<dyn std::error::Error>> {
        Self::open_with_wal_policy(path, readers, CHECKPOINT_EVERY, WAL_RESTART_PAGES)
    }

    /// [`Store::open`] with how often to checkpoint and the WAL size (in pages) at which the
    /// writer restarts the WAL.
    fn open_with_wal_policy(
        path: &Path,
        readers: u32,
        checkpoint_every: Duration,
        wal_restart_pages: i64,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let mut conn = open(path)?;
        migrate(&mut conn)?;
        let manager = SqliteConnectionManager::file(path).with_init(|conn| {
            configure(conn)?;
            // Each reader caches its own pages: 1 MiB each (not SQLite's 2 MiB) keeps eight
            // of them at 8 MiB; the hot pages of a chat server (recent messages, open chats)
            // fit, and the rest comes from the OS's page cache.
            conn.pragma_update(None, "cache_size", -1024)?;
            // Readers never write: a bug that tries is caught here, not in the data.
            conn.pragma_update(None, "query_only", true)
        });
        let pool = r2d2::Pool::builder()
            .max_size(readers)
            .min_idle(Some(1))
            .build(manager)?;
        // Checkpoints run beside the writer, never inside a commit (see `checkpointer`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the writer starts the WAL over, it also cuts the file back to the limit.
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        conn.pragma_update(None, "journal_size_limit", wal_restart_pages * page_size)?;
        let restart = WalRestart::new(wal_restart_pages);
        start_checkpointer(path, checkpoint_every, restart.clone())?;
        Ok(Store::Sqlite(SqliteStore {
            pool,
            writer: Writer::start(conn, restart),
            read_permits: Arc::new(tokio::sync::Semaphore::new(readers as usize)),
        }))
    }

    /// Runs a read-only query, off the async threads.
    pub async fn read<T, F>(&self, query: F) -> Result<T, DomainError>
    where
        F: FnOnce(&Db) -> Result<T, DomainError> + Send + 'static,
        T: Send + 'static,
    {
        match self {
            Store::Sqlite(store) => store.read(query).await,
            Store::Postgres(store) => store.run(true, query).await,
        }
    }

    /// Runs `job` in a write transaction; resolves once that transaction has committed. An
    /// `Err` from the job undoes the job's own changes.
    pub async fn write<T, F>(&self, job: F) -> Result<T, DomainError>
    where
        F: FnOnce(&Db) -> Result<T, DomainError> + Send + 'static,
        T: Send + 'static,
    {
        match self {
            Store::Sqlite(store) => store.writer.run(job).await,
            Store::Postgres(store) => store.run(false, job).await,
        }
    }

    /// Resolves once every message stored before the call can be found by search. SQLite's
    /// index is filled by the writer behind the messages (see `writer::SearchIndexing`);
    /// PostgreSQL's is part of each row.
    pub async fn catch_up_search_index(&self) -> Result<(), DomainError> {
        match self {
            Store::Sqlite(store) => store.writer.index_now().await,
            Store::Postgres(_) => Ok(()),
        }
    }

    /// Makes deleted data leave the disk (see [`SqliteStore::scrub`]). On PostgreSQL that
    /// is the server's (auto)vacuum's work, and this does nothing.
    pub async fn scrub(&self) -> Result<(), DomainError> {
        match self {
            Store::Sqlite(store) => store.scrub().await,
            Store::Postgres(_) => Ok(()),
        }
    }

    /// Sends `payload` to every instance's listener now (see [`Db::notify`] for one tied to
    /// a transaction). One SQLite server is the only instance: nothing to send.
    pub async fn notify(&self, payloads: Vec<String>) -> Result<(), DomainError> {
        match self {
            Store::Sqlite(_) => Ok(()),
            Store::Postgres(store) => store.notify(payloads).await,
        }
    }

    /// Passes other instances' notifications to `deliver` (and `None` after each
    /// reconnect, when some may have been lost) until `stop`. Nothing arrives on SQLite.
    pub fn listen(
        &self,
        deliver: impl Fn(Option<&str>) + Send + 'static,
        stop: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<()> {
        match self {
            Store::Sqlite(_) => Ok(()),
            Store::Postgres(store) => {
                postgres::start_listener(store.config().clone(), deliver, stop)
            }
        }
    }
}

/// One connection of the configured database, for the command line: synchronous, with a
/// transaction per job.
pub enum Direct {
    Sqlite(Connection),
    Postgres(::postgres::Client),
}

impl Direct {
    /// Opens and migrates the configured database. Without `create`, a missing SQLite file
    /// is an error (reading commands never create one).
    pub fn open(
        config: &crate::config::Config,
        create: bool,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        match &config.database_url {
            Some(url) => {
                let mut client = postgres::connect(&postgres::parse_url(url)?)?;
                postgres::migrate(&mut client)?;
                Ok(Direct::Postgres(client))
            }
            None => {
                if !create && !config.db.exists() {
                    return Err(format!("no database at {}", config.db.display()).into());
                }
                let mut conn = open(&config.db)?;
                migrate(&mut conn)?;
                Ok(Direct::Sqlite(conn))
            }
        }
    }

    /// Runs `job` in a transaction that takes the write lock at once (SQLite) and commits
    /// it if the job succeeds.
    pub fn write<T>(
        &mut self,
        job: impl FnOnce(&Db) -> Result<T, DomainError>,
    ) -> Result<T, Box<dyn std::error::Error>> {
        match self {
            Direct::Sqlite(conn) => {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let value = job(&Db::Sqlite(&tx))?;
                tx.commit()?;
                Ok(value)
            }
            Direct::Postgres(client) => {
                let db = Db::postgres(client.transaction()?);
                let value = job(&db)?;
                db.into_postgres()
                    .expect("a PostgreSQL job runs on PostgreSQL")
                    .commit()?;
                Ok(value)
            }
        }
    }

    /// Makes deleted data leave the disk, as [`Store::scrub`] does for a running server:
    /// merges the search index, frees the deleted pages and empties the write-ahead log.
    /// With a server running beside it, the log is emptied only if no reader holds it, and
    /// the server's own checkpoints finish the work within a second. On PostgreSQL that is
    /// the server's (auto)vacuum's work.
    pub fn scrub(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        let Direct::Sqlite(conn) = self else {
            return Ok(());
        };
        conn.execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")?;
        {
            let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
            let mut rows = vacuum.query([])?;
            while rows.next()?.is_some() {}
        }
        truncate_wal(conn)?;
        Ok(())
    }

    /// Runs a read-only `job`.
    pub fn read<T>(
        &mut self,
        job: impl FnOnce(&Db) -> Result<T, DomainError>,
    ) -> Result<T, Box<dyn std::error::Error>> {
        match self {
            Direct::Sqlite(conn) => Ok(job(&Db::Sqlite(conn))?),
            Direct::Postgres(client) => {
                let db = Db::postgres(client.build_transaction().read_only(true).start()?);
                Ok(job(&db)?)
            }
        }
    }
}

impl SqliteStore {
    /// Runs a read-only query on a pooled connection, off the async threads.
    async fn read<T, F>(&self, query: F) -> Result<T, DomainError>
    where
        F: FnOnce(&Db) -> Result<T, DomainError> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .read_permits
            .acquire()
            .await
            .map_err(|_| DomainError::Unavailable)?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            let answer = query(&Db::Sqlite(&conn));
            answer
        })
        .await
        .map_err(|e| DomainError::Internal(Box::new(e)))?
    }

    /// Makes deleted data leave the disk: frees its pages from the file (they were already
    /// overwritten, see `secure_delete`) and empties the write-ahead log, which still holds
    /// earlier copies of those pages. Resolves once both are done.
    async fn scrub(&self) -> Result<(), DomainError> {
        // Each step of the pragma frees one page: step it to the end.
        self.write(|db| {
            let Some(conn) = db.sqlite() else {
                return Ok(());
            };
            // The search index only marks deleted rows until its segments are merged: merge
            // them now, so the deleted words leave its pages too.
            conn.execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")?;
            let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
            let mut rows = vacuum.query([])?;
            while rows.next()?.is_some() {}
            Ok(())
        })
        .await?;
        self.writer.request_truncate();
        // The writer empties the WAL after the transaction of this job: a second job is
        // answered only once that has happened.
        self.write(|_| Ok(())).await?;
        self.write(|_| Ok(())).await
    }

    async fn write<T, F>(&self, job: F) -> Result<T, DomainError>
    where
        F: FnOnce(&Db) -> Result<T, DomainError> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.run(job).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table's columns (name, type, not-null, default, pk) and every index's columns
    /// in order: an index whose columns a migration reordered differs from the fresh one.
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
            } else if kind == "index" {
                let columns: Vec<String> = conn
                    .prepare(&format!("PRAGMA index_info({name})"))
                    .unwrap()
                    .query_map([], |r| {
                        Ok(format!("  {:?}", r.get::<_, Option<String>>(2)?))
                    })
                    .unwrap()
                    .collect::<rusqlite::Result<_>>()
                    .unwrap();
                shape.extend(columns);
            }
        }
        shape
    }

    /// An in-memory database as a release with schema `version` left it: the first schema,
    /// then the migrations up to that version.
    fn database_at(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("testdata/schema_v1.sql"))
            .unwrap();
        for migration in &MIGRATIONS[..version - 1] {
            conn.execute_batch(migration).unwrap();
        }
        conn.pragma_update(None, "user_version", version).unwrap();
        conn
    }

    #[test]
    fn a_version_1_database_migrates_to_the_shape_of_a_fresh_one() {
        let mut old = database_at(1);
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
    fn rebuilding_messages_keeps_every_seq_the_high_water_mark_and_the_search_index() {
        let mut conn = database_at(6);
        // The rows need no chat: only the messages table is under test.
        conn.pragma_update(None, "foreign_keys", false).unwrap();
        let insert = "INSERT INTO messages (id, chat_id, sender, body, event, created_at)
                      VALUES (?1, 'c', 'visitor', ?2, ?3, 't')";
        for (id, body) in [("m1", "alpha"), ("m2", "bravo"), ("m3", "charlie")] {
            conn.execute(insert, (id, body, None::<String>)).unwrap();
        }
        // The newest message is gone: its seq must never come back.
        conn.execute("DELETE FROM messages WHERE id = 'm3'", [])
            .unwrap();

        migrate(&mut conn).unwrap();

        let seqs: Vec<i64> = conn
            .prepare("SELECT seq FROM messages ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(seqs, [1, 2]);
        conn.execute(insert, ("m4", "delta", None::<String>))
            .unwrap();
        search::index_after(&conn, search::indexed_up_to(&conn).unwrap()).unwrap();
        let seq: i64 = conn
            .query_row("SELECT seq FROM messages WHERE id = 'm4'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seq, 4);
        let found: Vec<i64> = conn
            .prepare("SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1 ORDER BY rowid")
            .unwrap()
            .query_map(["bravo OR delta OR charlie"], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(found, [2, 4]);
        conn.execute(insert, ("m5", "Ana added vip", Some("labeled")))
            .unwrap();
        assert!(conn
            .execute(insert, ("m6", "no such event", Some("bogus")))
            .is_err());
    }

    #[test]
    fn a_migration_that_leaves_rows_without_their_parent_fails_but_older_orphans_pass() {
        let conn = database_at(SCHEMA_VERSION as usize);
        conn.pragma_update(None, "foreign_keys", false).unwrap();
        // Already without its chat before any migration: not the migration's doing.
        conn.execute_batch(
            "INSERT INTO messages (id, chat_id, sender, body, created_at, private)
                 VALUES ('m1', 'gone', 'agent', 'note for @ana', 't', 1);
             INSERT INTO mentions (message_id, chat_id, agent_id, seq)
                 VALUES ('m1', 'gone', 'a', 1);",
        )
        .unwrap();
        apply_migrations(&conn, &["UPDATE messages SET body = 'edited'"]).unwrap();

        let lost = apply_migrations(&conn, &["DELETE FROM messages"]).unwrap_err();
        assert!(
            lost.to_string()
                .contains("rows of mentions without their row in messages"),
            "{lost}"
        );
    }

    #[test]
    fn rebuilding_messages_keeps_their_mentions_and_its_checks_hold_no_in_lists() {
        let mut conn = database_at(12);
        // Rows without their agent and chat: only the reference to the message is under test.
        conn.pragma_update(None, "foreign_keys", false).unwrap();
        conn.execute_batch(
            "INSERT INTO messages (id, chat_id, sender, body, created_at, private)
                 VALUES ('m1', 'c', 'agent', 'note for @ana', 't', 1);
             INSERT INTO mentions (message_id, chat_id, agent_id, seq) VALUES ('m1', 'c', 'a', 1);
             INSERT INTO mail_schedule (chat_id, side, due_at) VALUES ('c', 'visitor', 5);",
        )
        .unwrap();
        // Enforced as the server runs: dropping the old table must not cascade.
        conn.pragma_update(None, "foreign_keys", true).unwrap();

        migrate(&mut conn).unwrap();

        let mentions: i64 = conn
            .query_row("SELECT COUNT(*) FROM mentions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mentions, 1);
        let due: i64 = conn
            .query_row("SELECT due_at FROM mail_schedule", [], |r| r.get(0))
            .unwrap();
        assert_eq!(due, 5);
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        for db in [&conn, &fresh] {
            let sql: String = db
                .query_row(
                    "SELECT group_concat(sql) FROM sqlite_master
                     WHERE name IN ('messages', 'mail_schedule')",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(sql.contains("CHECK"), "{sql}");
            assert!(!sql.contains(" IN ("), "{sql}");
            db.pragma_update(None, "foreign_keys", false).unwrap();
            assert!(db
                .execute(
                    "INSERT INTO messages (id, chat_id, sender, body, created_at)
                     VALUES ('bad', 'c', 'robot', 'x', 't')",
                    [],
                )
                .is_err());
            assert!(db
                .execute(
                    "INSERT INTO mail_schedule (chat_id, side) VALUES ('c', 'everyone')",
                    [],
                )
                .is_err());
        }
    }

    #[test]
    fn a_page_query_is_planned_once_whatever_limit_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("plan.db")).unwrap();
        migrate(&mut conn).unwrap();
        let sql = "SELECT seq FROM messages WHERE chat_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
        for limit in [10, 51, 501] {
            let mut statement = conn.prepare_cached(sql).unwrap();
            let rows = statement
                .query_map(rusqlite::params!["c", 0, limit], |r| r.get::<_, i64>(0))
                .unwrap()
                .count();
            assert_eq!(rows, 0);
        }
        let statement = conn.prepare_cached(sql).unwrap();
        assert_eq!(
            statement.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "a new LIMIT made SQLite prepare the statement again"
        );
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let before = shape(&conn);
        migrate(&mut conn).unwrap();
        assert_eq!(shape(&conn), before);
    }

    /// Writers that never pause and readers that never stop: the situation in which a WAL
    /// checkpointed only PASSIVEly grows without end (it reached 300 MB here without the
    /// restart). The policy is scaled down: restart past 64 pages, checkpoint every 20 ms.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_writes_that_never_pause() {
        const ROWS_PER_WRITER: usize = 200;
        const ROW_BYTES: u64 = 8_000;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let store = Store::open_with_wal_policy(&path, 2, Duration::from_millis(20), 64).unwrap();
        store
            .write(|db| Ok(db.execute_batch("CREATE TABLE filler (bytes BLOB)")?))
            .await
            .unwrap();
        let writing = Arc::new(AtomicBool::new(true));
        let mut writers = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let store = store.clone();
            writers.spawn(async move {
                for _ in 0..ROWS_PER_WRITER {
                    store
                        .write(|conn| {
                            let sql = "INSERT INTO filler VALUES (randomblob(8000))";
                            Ok(conn.execute(sql, &[])?)
                        })
                        .await
                        .unwrap();
                }
            });
        }
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..2 {
            let (store, writing) = (store.clone(), writing.clone());
            readers.spawn(async move {
                while writing.load(Ordering::Relaxed) {
                    store
                        .read(|conn| {
                            let sql = "SELECT count(*) FROM filler";
                            Ok(conn.query_row(sql, &[], |row| row.get::<i64>(0))?)
                        })
                        .await
                        .unwrap();
                }
            });
        }
        let wal = dir.path().join("wal.db-wal");
        let mut largest_wal = 0;
        while !writers.is_empty() {
            largest_wal = largest_wal.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            tokio::select! {
                Some(done) = writers.join_next() => done.unwrap(),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
        writing.store(false, Ordering::Relaxed);
        while let Some(done) = readers.join_next().await {
            done.unwrap();
        }
        let written = 8 * ROWS_PER_WRITER as u64 * ROW_BYTES;
        // Unbounded, the WAL holds every byte written (and more). Half leaves room for a
        // checkpointer starved by a loaded machine (a quarter failed then) and still tells.
        assert!(
            largest_wal < written / 2,
            "the WAL reached {largest_wal} bytes for {written} bytes written"
        );
    }
}
