//! The single writer: one thread, one connection, group commit.
//!
//! Every write of the server is a job sent to this thread. The thread takes all jobs that
//! are waiting, runs each in its own SAVEPOINT inside one `BEGIN IMMEDIATE` transaction,
//! commits once, and only then answers each job. So a `201` always means "on disk", one
//! fsync serves a whole batch, and seq order is commit order.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Instant;

use rusqlite::Connection;

use crate::store::sql::Db;
use tokio::sync::oneshot;

use crate::domain::DomainError;
use crate::store::WalRestart;

/// Most jobs committed in one transaction; bounds the latency of the first job in a batch.
const MAX_BATCH: usize = 512;

/// Called once the batch's transaction has ended, with `Ok` when it committed.
type Reply = Box<dyn FnOnce(Result<(), &rusqlite::Error>) + Send>;
/// Runs against the transaction's connection, or is told (`None`) that none could be opened.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Reply + Send>;

/// Sends jobs to the writer thread. The thread ends when every clone is dropped.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    wal_restart: WalRestart,
}

impl Writer {
    /// Asks the writer to empty the WAL after its current transaction.
    pub fn request_truncate(&self) {
        self.wal_restart.request_truncate();
    }

    pub fn start(conn: Connection, wal_restart: WalRestart) -> Self {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("parley-writer".into())
            .spawn({
                let wal_restart = wal_restart.clone();
                move || writer_loop(conn, queue, wal_restart)
            })
            .expect("the OS can start one more thread at startup");
        Self { jobs, wal_restart }
    }

    /// Runs `job` in the next transaction and waits for its commit.
    pub async fn run<T, F>(&self, job: F) -> Result<T, DomainError>
    where
        F: FnOnce(&Db) -> Result<T, DomainError> + Send + 'static,
        T: Send + 'static,
    {
        let (done, outcome) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => in_savepoint(conn, |conn| job(&Db::Sqlite(conn))),
                None => Err(DomainError::Unavailable),
            };
            Box::new(move |commit: Result<(), &rusqlite::Error>| {
                let answer = match commit {
                    Ok(()) => result,
                    Err(e) => Err(DomainError::Storage(format!("commit failed: {e}").into())),
                };
                // The caller may have gone away (client disconnected): nothing to do then.
                let _ = done.send(answer);
            })
        });
        self.jobs.send(job).map_err(|_| DomainError::Unavailable)?;
        outcome.await.map_err(|_| DomainError::Unavailable)?
    }
}

/// Runs one job so that its failure (an error or a panic) undoes only its own changes.
fn in_savepoint<T>(
    conn: &Connection,
    job: impl FnOnce(&Connection) -> Result<T, DomainError>,
) -> Result<T, DomainError> {
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    let result = catch_unwind(AssertUnwindSafe(|| job(conn)))
        .unwrap_or_else(|_| Err(DomainError::internal("a write job panicked")));
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    conn.prepare_cached("RELEASE job")?.execute([])?;
    result
}

fn writer_loop(conn: Connection, queue: mpsc::Receiver<Job>, wal_restart: WalRestart) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            log::error!("writer could not begin a transaction: {e}");
            for job in batch.drain(..) {
                job(None)(Err(&e));
            }
            continue;
        }
        let replies: Vec<Reply> = batch.drain(..).map(|job| job(Some(&conn))).collect();
        let commit = conn.execute_batch("COMMIT");
        if let Err(e) = &commit {
            log::error!("writer could not commit: {e}");
            let _ = conn.execute_batch("ROLLBACK");
        }
        crate::metrics::write_batch(replies.len(), started.elapsed());
        for reply in replies {
            reply(commit.as_ref().map(|_| ()));
        }
        // Here no transaction is open, so the checkpoint can copy the whole WAL back and,
        // once the readers still on it finish (milliseconds), the next commit starts the
        // file over. Sends wait meanwhile: a short pause beats a WAL that grows for good.
        if wal_restart.take_truncate() {
            // Copies every frame back and cuts the file to nothing (waits for readers).
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                log::warn!("WAL truncate failed: {e}");
            }
        } else if wal_restart.take() {
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
                log::warn!("WAL restart failed: {e}");
            }
        }
    }
    log::debug!("writer stopped: every store handle is gone");
}
