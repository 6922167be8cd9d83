//! The PostgreSQL backend: a pool of connections, one transaction per job, migrations taken
//! under an advisory lock, and the `LISTEN` connection that carries other instances' news.
//!
//! Several Parley instances may share one database. What orders their writes is the
//! database itself: each write job is one READ COMMITTED transaction, and message `seq`s
//! come from a locked counter row (see `store::messages::next_seq`), so seq order is commit
//! order across every instance.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, IsolationLevel};
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_util::sync::CancellationToken;

use crate::domain::DomainError;
use crate::store::sql::{Db, DbError, DbResult, Statements, CHANNEL};

/// The whole schema, applied to an empty database.
const SCHEMA: &str = include_str!("../../schema.postgres.sql");

/// Ordered migrations: `MIGRATIONS[i]` takes a database from version `i + 1` to `i + 2`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations_postgres/2_agent_tools.sql"),
    include_str!("migrations_postgres/3_label_events.sql"),
    include_str!("migrations_postgres/4_mentions.sql"),
    include_str!("migrations_postgres/5_availability.sql"),
    include_str!("migrations_postgres/6_mail.sql"),
    include_str!("migrations_postgres/7_identity_ratings.sql"),
    include_str!("migrations_postgres/8_client_id_first.sql"),
];

/// The version a migrated database has.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64 + 1;

/// Held while migrating, so instances starting at once never migrate twice (an arbitrary
/// constant: "parley" in ASCII).
const MIGRATION_LOCK: i64 = 0x7061_726c_6579;

/// How long a connection may take to open before the store gives up on it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Pool = r2d2::Pool<Manager>;

/// A pooled connection with the statements prepared on it.
pub struct PooledClient {
    client: Client,
    statements: Statements,
}

/// Opens pooled connections. A checkout is not tested with a round trip (r2d2's default):
/// that would add one to every job. A connection that broke is seen by `has_broken` when it
/// comes back, or fails the one job it is given, and the pool opens a new one.
pub struct Manager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PooledClient;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PooledClient, postgres::Error> {
        Ok(PooledClient {
            client: self.config.connect(tls())?,
            statements: Statements::new(),
        })
    }

    fn is_valid(&self, conn: &mut PooledClient) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(drop)
    }

    fn has_broken(&self, conn: &mut PooledClient) -> bool {
        conn.client.is_closed()
    }
}

/// TLS for connections over the network, verified against the Mozilla roots: used as the
/// URL's `sslmode` says (`prefer` by default, `require` to insist; a Unix socket never
/// needs it). The crypto provider is named, since the binary links more than one.
fn tls() -> Tls {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Tls(MakeRustlsConnect::new(config))
}

/// [`MakeRustlsConnect`] that connects over a Unix socket too: there the driver asks for a
/// TLS connector for an empty host name, which rustls refuses as no DNS name, though it
/// never uses it (PostgreSQL offers no TLS on a Unix socket).
#[derive(Clone)]
pub struct Tls(MakeRustlsConnect);

impl postgres::tls::MakeTlsConnect<postgres::Socket> for Tls {
    type Stream = <MakeRustlsConnect as postgres::tls::MakeTlsConnect<postgres::Socket>>::Stream;
    type TlsConnect =
        <MakeRustlsConnect as postgres::tls::MakeTlsConnect<postgres::Socket>>::TlsConnect;
    type Error = <MakeRustlsConnect as postgres::tls::MakeTlsConnect<postgres::Socket>>::Error;

    fn make_tls_connect(&mut self, hostname: &str) -> Result<Self::TlsConnect, Self::Error> {
        let name = if hostname.is_empty() {
            "localhost"
        } else {
            hostname
        };
        postgres::tls::MakeTlsConnect::<postgres::Socket>::make_tls_connect(&mut self.0, name)
    }
}

/// Handle to a PostgreSQL database, cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// For the listener's own connection (boxed: the store is cloned into every service).
    config: Arc<postgres::Config>,
    /// One permit per pooled connection: jobs wait here, on the async side, instead of
    /// parking blocking threads on the pool.
    permits: Arc<tokio::sync::Semaphore>,
}

/// Parses a `postgres://` URL into a connection configuration.
pub fn parse_url(url: &str) -> Result<postgres::Config, DbError> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("parley");
    }
    Ok(config)
}

/// Opens one connection (for migrations, the CLI and the listener).
pub fn connect(config: &postgres::Config) -> DbResult<Client> {
    Ok(config.connect(tls())?)
}

/// Brings the database to [`SCHEMA_VERSION`] under an advisory lock: a second instance
/// starting at the same moment waits, then finds nothing left to do.
pub fn migrate(client: &mut Client) -> DbResult<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let result = migrate_locked(client);
    // Released even when a migration failed; the session ends with the lock anyway.
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    result?;
    unlocked?;
    Ok(())
}

fn migrate_locked(client: &mut Client) -> DbResult<()> {
    // "already exists, skipping" is not news on every start.
    client.batch_execute(
        "SET client_min_messages = warning;
         CREATE TABLE IF NOT EXISTS parley_schema (version BIGINT NOT NULL);
         INSERT INTO parley_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM parley_schema)",
    )?;
    let version: i64 = client
        .query_one("SELECT version FROM parley_schema", &[])?
        .get(0);
    if version > SCHEMA_VERSION {
        // Written by a newer Parley: running on it could corrupt what this one does not know.
        return Err(DbError::Other(format!(
            "the database has schema version {version}, newer than this binary's {SCHEMA_VERSION}"
        )));
    }
    let mut tx = client.transaction()?;
    if version == 0 {
        tx.batch_execute(SCHEMA)?;
    } else {
        for migration in MIGRATIONS.iter().skip((version - 1) as usize) {
            tx.batch_execute(migration)?;
        }
    }
    tx.execute("UPDATE parley_schema SET version = $1", &[&SCHEMA_VERSION])?;
    tx.commit()?;
    Ok(())
}

impl PgStore {
    /// Connects, migrates, and opens a pool of at most `connections`.
    pub fn open(url: &str, connections: u32) -> Result<Self, Box<dyn std::error::Error>> {
        let config = parse_url(url)?;
        let mut client = connect(&config)?;
        migrate(&mut client)?;
        drop(client);
        let manager = Manager {
            config: config.clone(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(connections)
            .test_on_check_out(false)
            .min_idle(Some(1))
            .connection_timeout(CONNECT_TIMEOUT)
            .build(manager)?;
        Ok(Self {
            pool,
            config: Arc::new(config),
            permits: Arc::new(tokio::sync::Semaphore::new(connections as usize)),
        })
    }

    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// Runs `job` in one transaction on a pooled connection, off the async threads, and
    /// commits it if the job succeeds (`read_only` jobs are never committed: they only
    /// read). An `Err` or a panic rolls the whole job back.
    pub async fn run<T, F>(&self, read_only: bool, job: F) -> Result<T, DomainError>
    where
        F: FnOnce(&Db) -> Result<T, DomainError> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| DomainError::Unavailable)?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut pooled = pool.get()?;
            let PooledClient { client, statements } = &mut *pooled;
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .read_only(read_only)
                .start()
                .map_err(DbError::from)?;
            let db = Db::postgres_cached(tx, statements);
            let result = catch_unwind(AssertUnwindSafe(|| job(&db)))
                .unwrap_or_else(|_| Err(DomainError::internal("a database job panicked")));
            let tx = db
                .into_postgres()
                .expect("a PostgreSQL job runs on PostgreSQL");
            match result {
                Ok(value) if !read_only => {
                    tx.commit().map_err(DbError::from)?;
                    Ok(value)
                }
                // Dropping the transaction rolls it back.
                other => other,
            }
        })
        .await
        .map_err(|e| DomainError::Internal(Box::new(e)))?
    }

    /// Sends each payload, in order, to every instance's listener (not tied to a change).
    pub async fn notify(&self, payloads: Vec<String>) -> Result<(), DomainError> {
        self.run(false, move |db| {
            for payload in &payloads {
                db.notify(payload)?;
            }
            Ok(())
        })
        .await
    }
}

/// Starts the thread that `LISTEN`s for other instances' notifications and hands each
/// payload to `deliver`, until `stop`. On every (re)connect it calls `deliver(None)`:
/// notifications sent while it was away are lost, so everything waiting must look again.
pub fn start_listener(
    config: postgres::Config,
    deliver: impl Fn(Option<&str>) + Send + 'static,
    stop: CancellationToken,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("parley-listen".into())
        .spawn(move || {
            while !stop.is_cancelled() {
                if let Err(e) = listen(&config, &deliver, &stop) {
                    log::warn!("notification listener lost its connection: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        })
        .map(|_| ())
}

/// How often the listener looks up from its connection to see whether it should stop.
const LISTEN_TICK: Duration = Duration::from_millis(500);

/// One connection's life: LISTEN, announce the (re)connect, then pass on notifications
/// until the connection fails or `stop`.
fn listen(
    config: &postgres::Config,
    deliver: &impl Fn(Option<&str>),
    stop: &CancellationToken,
) -> DbResult<()> {
    let mut client = connect(config)?;
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    deliver(None);
    while !stop.is_cancelled() {
        {
            let mut notifications = client.notifications();
            let mut iter = notifications.timeout_iter(LISTEN_TICK);
            while let Some(notification) = iter.next()? {
                deliver(Some(notification.payload()));
            }
        }
        if client.is_closed() {
            return Err(DbError::Other("the listen connection closed".into()));
        }
    }
    Ok(())
}
