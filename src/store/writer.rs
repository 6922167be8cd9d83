//! The single writer: one thread, one connection, group commit.
//!
//! Every write of the server is a job sent to this thread. The thread takes all jobs that
//! are waiting, runs each in its own SAVEPOINT inside one `BEGIN IMMEDIATE` transaction (a
//! job alone in its batch needs none: its failure rolls the transaction back), commits
//! once, and only then answers each job. So a `201` always means "on disk", one fsync
//! serves a whole batch, and seq order is commit order. Before the commit it adds the
//! batch's new messages to the search index, once for the whole batch.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Instant;

use rusqlite::Connection;

use crate::store::sql::Db;
use tokio::sync::oneshot;

use crate::domain::DomainError;
use crate::store::{search, truncate_wal, WalRestart};

/// Most jobs committed in one transaction; bounds the latency of the first job in a batch.
const MAX_BATCH: usize = 512;

/// Called once the batch's transaction has ended: `Err` when it failed as a whole (its
/// begin or commit), else `Ok`, and the job's own outcome stands.
type Reply = Box<dyn FnOnce(Result<(), &rusqlite::Error>) + Send>;
/// Runs against the transaction's connection, or is told (`None`) that none could be opened;
/// in a savepoint of its own when it shares the transaction (`Isolation::Savepoint`). Gives
/// its reply and whether it failed.
type Job = Box<dyn FnOnce(Option<&Connection>, Isolation) -> (Reply, Failed) + Send>;

/// Whether a job failed (its changes are undone then).
type Failed = bool;

/// How a job's failure is kept from the other jobs of its transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// In a savepoint: the transaction holds other jobs.
    Savepoint,
    /// Alone in its transaction, which is rolled back if the job fails. A savepoint costs a
    /// copy of every page the job changes, and at a steady rate most batches hold one job.
    Alone,
}

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
        let job: Job = Box::new(move |conn, isolation| {
            let result = match (conn, isolation) {
                (Some(conn), Isolation::Savepoint) => {
                    in_savepoint(conn, |conn| job(&Db::Sqlite(conn)))
                }
                (Some(conn), Isolation::Alone) => catching_panics(|| job(&Db::Sqlite(conn))),
                (None, _) => Err(DomainError::Unavailable),
            };
            let failed = result.is_err();
            let reply: Reply = Box::new(move |commit: Result<(), &rusqlite::Error>| {
                let answer = match commit {
                    Ok(()) => result,
                    Err(e) => Err(DomainError::Storage(format!("commit failed: {e}").into())),
                };
                // The caller may have gone away (client disconnected): nothing to do then.
                let _ = done.send(answer);
            });
            (reply, failed)
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
    let result = catching_panics(|| job(conn));
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    conn.prepare_cached("RELEASE job")?.execute([])?;
    result
}

/// The job's outcome, a panic counted as its failure.
fn catching_panics<T>(job: impl FnOnce() -> Result<T, DomainError>) -> Result<T, DomainError> {
    catch_unwind(AssertUnwindSafe(job))
        .unwrap_or_else(|_| Err(DomainError::internal("a write job panicked")))
}

fn writer_loop(conn: Connection, queue: mpsc::Receiver<Job>, wal_restart: WalRestart) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The seq up to which messages are in the search index: known after each commit, looked
    // up again after a batch that failed.
    let mut indexed: Option<i64> = None;
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
                job(None, Isolation::Alone).0(Err(&e));
            }
            continue;
        }
        let isolation = if batch.len() == 1 {
            Isolation::Alone
        } else {
            Isolation::Savepoint
        };
        let mut lone_failure = false;
        let replies: Vec<Reply> = batch
            .drain(..)
            .map(|job| {
                let (reply, failed) = job(Some(&conn), isolation);
                lone_failure |= failed && isolation == Isolation::Alone;
                reply
            })
            .collect();
        let commit = if lone_failure {
            // The one job failed: undo it as its savepoint would have. Its reply carries
            // its own error.
            conn.execute_batch("ROLLBACK").map(|()| indexed)
        } else {
            index_new_messages(&conn, indexed).and_then(|up_to| {
                conn.execute_batch("COMMIT")?;
                Ok(Some(up_to))
            })
        };
        match &commit {
            Ok(up_to) => indexed = *up_to,
            Err(e) => {
                log::error!("writer could not commit: {e}");
                let _ = conn.execute_batch("ROLLBACK");
                indexed = None;
            }
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
            if let Err(e) = truncate_wal(&conn) {
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

/// Indexes the messages stored since `indexed` (unknown: looked up) for search, in the open
/// transaction; returns the seq indexed up to now.
fn index_new_messages(conn: &Connection, indexed: Option<i64>) -> rusqlite::Result<i64> {
    let after = match indexed {
        Some(seq) => seq,
        None => search::indexed_up_to(conn)?,
    };
    search::index_after(conn, after)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A writer on a migrated in-memory database with a scratch table `t (x)`.
    fn writer() -> Writer {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate(&mut conn).unwrap();
        conn.execute_batch("CREATE TABLE t (x TEXT)").unwrap();
        Writer::start(conn, WalRestart::new(1_000))
    }

    fn insert(x: &'static str) -> impl FnOnce(&Db) -> Result<(), DomainError> + Send {
        move |db: &Db| {
            db.execute("INSERT INTO t (x) VALUES (?1)", &[&x])?;
            Ok(())
        }
    }

    async fn rows(writer: &Writer) -> String {
        writer
            .run(|db| {
                Ok(db.query_row(
                    "SELECT COALESCE(group_concat(x, ','), '') FROM t",
                    &[],
                    |r| r.get::<String>(0),
                )?)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_job_alone_that_fails_or_panics_leaves_nothing_and_the_next_commits() {
        let writer = writer();
        let failed = writer
            .run(|db| {
                insert("lost")(db)?;
                Err::<(), _>(DomainError::invalid("no"))
            })
            .await;
        assert!(matches!(failed, Err(DomainError::Invalid(_))));
        let panicked = writer
            .run(|db| -> Result<(), DomainError> {
                insert("lost too")(db)?;
                panic!("a bug in a job")
            })
            .await;
        assert!(panicked.is_err());
        writer.run(insert("kept")).await.unwrap();
        assert_eq!(rows(&writer).await, "kept");
    }

    #[tokio::test]
    async fn a_failing_job_in_a_batch_undoes_only_its_own_changes() {
        let writer = writer();
        // Holds the writer, so the next three queue up and share one transaction.
        let hold = writer.run(|_db| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        });
        let (held, first, failing, last) = tokio::join!(
            hold,
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                writer.run(insert("a")).await
            },
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                writer
                    .run(|db| {
                        insert("lost")(db)?;
                        Err::<(), _>(DomainError::invalid("no"))
                    })
                    .await
            },
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                writer.run(insert("b")).await
            },
        );
        held.unwrap();
        first.unwrap();
        assert!(failing.is_err());
        last.unwrap();
        assert_eq!(rows(&writer).await, "a,b");
    }
}
