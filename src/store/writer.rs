//! The single writer: one thread, one connection, group commit.
//!
//! Every write of the server is a job sent to this thread. The thread takes all jobs that
//! are waiting, runs each in its own SAVEPOINT inside one `BEGIN IMMEDIATE` transaction (a
//! job alone in its batch needs none: its failure rolls the transaction back), commits
//! once, and only then answers each job. So a `201` always means "on disk", one fsync
//! serves a whole batch, and seq order is commit order.
//!
//! The search index is filled behind the messages, a few times a second (see
//! [`SearchIndexing`]), and at once when a search asks for it ([`Writer::index_now`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

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
    /// Set by [`Writer::index_now`]: the next transaction fills the search index.
    index_wanted: Arc<AtomicBool>,
}

impl Writer {
    /// Asks the writer to empty the WAL after its current transaction.
    pub fn request_truncate(&self) {
        self.wal_restart.request_truncate();
    }

    pub fn start(conn: Connection, wal_restart: WalRestart) -> Self {
        let (jobs, queue) = mpsc::channel();
        let index_wanted = Arc::new(AtomicBool::new(false));
        std::thread::Builder::new()
            .name("parley-writer".into())
            .spawn({
                let wal_restart = wal_restart.clone();
                let indexing = SearchIndexing::new(index_wanted.clone());
                move || writer_loop(conn, queue, wal_restart, indexing)
            })
            .expect("the OS can start one more thread at startup");
        Self {
            jobs,
            wal_restart,
            index_wanted,
        }
    }

    /// Resolves once every message committed before the call is in the search index.
    pub async fn index_now(&self) -> Result<(), DomainError> {
        // Set before the job is sent: the batch that takes the job sees it.
        self.index_wanted.store(true, Ordering::SeqCst);
        self.run(|_| Ok(())).await
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

/// When the writer fills the search index. Per commit, FTS5 writes a new index segment
/// (and merges segments as they pile up): at one message per transaction, the usual batch
/// at a steady rate, that was a segment, its merges and their WAL pages per message. So
/// messages are indexed together, a few times a second or every few hundred jobs, in the
/// transaction of the batch at hand or, when no job comes, in one of their own; and at
/// once when a search wants them ([`Writer::index_now`]), so a search still finds every
/// message stored before it.
struct SearchIndexing {
    /// The seq up to which messages are looked at; `None` after a failed transaction
    /// (looked up again).
    indexed: Option<i64>,
    /// Jobs committed since the index was last filled (each may have stored messages).
    /// Starts at 1, so messages a previous run left unindexed are indexed soon after start.
    jobs_behind: usize,
    last_filled: Instant,
    wanted: Arc<AtomicBool>,
}

impl SearchIndexing {
    /// How long a message may wait for the index while the writer is busy or idle.
    const EVERY: Duration = Duration::from_millis(250);
    /// How many jobs may wait for it: bounds the size, and so the time, of one filling.
    const AFTER_JOBS: usize = 256;

    fn new(wanted: Arc<AtomicBool>) -> Self {
        Self {
            indexed: None,
            jobs_behind: 1,
            last_filled: Instant::now(),
            wanted,
        }
    }

    /// Whether the transaction of a batch of `jobs` should fill the index before it commits.
    fn due_with(&mut self, jobs: usize) -> bool {
        let asked = self.wanted.swap(false, Ordering::SeqCst);
        asked
            || self.jobs_behind + jobs >= Self::AFTER_JOBS
            || (self.jobs_behind > 0 && self.last_filled.elapsed() >= Self::EVERY)
    }

    /// How long the writer may wait for a job before it fills the index on its own.
    fn idle_wait(&self) -> Option<Duration> {
        (self.jobs_behind > 0).then(|| Self::EVERY.saturating_sub(self.last_filled.elapsed()))
    }

    /// Fills the index inside the open transaction; returns the seq looked at up to.
    fn fill(&self, conn: &Connection) -> rusqlite::Result<i64> {
        let after = match self.indexed {
            Some(seq) => seq,
            None => search::indexed_up_to(conn)?,
        };
        search::index_after(conn, after)
    }

    /// After a commit: `filled` is what [`SearchIndexing::fill`] returned, if it ran.
    fn committed(&mut self, jobs: usize, filled: Option<i64>) {
        match filled {
            Some(up_to) => {
                self.indexed = Some(up_to);
                self.jobs_behind = 0;
                self.last_filled = Instant::now();
            }
            None => self.jobs_behind += jobs,
        }
    }

    /// After a transaction that failed or was rolled back.
    fn rolled_back(&mut self, filling: bool) {
        if filling {
            // The index may or may not hold what the failed transaction added: look again.
            self.indexed = None;
            self.jobs_behind = self.jobs_behind.max(1);
        }
    }
}

fn writer_loop(
    conn: Connection,
    queue: mpsc::Receiver<Job>,
    wal_restart: WalRestart,
    mut indexing: SearchIndexing,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = match indexing.idle_wait() {
            None => queue.recv().map_err(|_| ()),
            Some(wait) => match queue.recv_timeout(wait) {
                Ok(job) => Ok(job),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    fill_index_alone(&conn, &mut indexing);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
            },
        };
        let Ok(first) = first else { break };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        if let Err(e) = control(&conn, "BEGIN IMMEDIATE") {
            log::error!("writer could not begin a transaction: {e}");
            for job in batch.drain(..) {
                job(None, Isolation::Alone).0(Err(&e));
            }
            continue;
        }
        let jobs = batch.len();
        let isolation = if jobs == 1 {
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
        let filling = !lone_failure && indexing.due_with(jobs);
        let commit = if lone_failure {
            // The one job failed: undo it as its savepoint would have. Its reply carries
            // its own error.
            control(&conn, "ROLLBACK").map(|()| None)
        } else {
            let filled = if filling {
                indexing.fill(&conn).map(Some)
            } else {
                Ok(None)
            };
            filled.and_then(|filled| {
                control(&conn, "COMMIT")?;
                Ok(filled)
            })
        };
        match &commit {
            Ok(filled) if !lone_failure => indexing.committed(jobs, *filled),
            Ok(_) => {}
            Err(e) => {
                log::error!("writer could not commit: {e}");
                let _ = control(&conn, "ROLLBACK");
                indexing.rolled_back(filling);
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

/// Runs a transaction statement (`BEGIN IMMEDIATE`, `COMMIT`, `ROLLBACK`) from the statement
/// cache: `execute_batch` would parse it again for every transaction.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Fills the search index in a transaction of its own (no job came for a while).
fn fill_index_alone(conn: &Connection, indexing: &mut SearchIndexing) {
    let filled = control(conn, "BEGIN IMMEDIATE").and_then(|()| {
        let up_to = indexing.fill(conn)?;
        control(conn, "COMMIT")?;
        Ok(up_to)
    });
    match filled {
        Ok(up_to) => indexing.committed(0, Some(up_to)),
        Err(e) => {
            log::error!("writer could not index messages for search: {e}");
            let _ = control(conn, "ROLLBACK");
            indexing.rolled_back(true);
            // Not again at once: the next try comes after the usual wait.
            indexing.last_filled = Instant::now();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A writer on a migrated in-memory database with a scratch table `t (x)` and a chat `c`.
    fn writer() -> Writer {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (x TEXT);
             INSERT INTO visitors (id, created_at) VALUES ('v', '2026-01-01T00:00:00.000Z');
             INSERT INTO chats (id, visitor_id, created_at)
             VALUES ('c', 'v', '2026-01-01T00:00:00.000Z');",
        )
        .unwrap();
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

    fn store_message(body: &'static str) -> impl FnOnce(&Db) -> Result<(), DomainError> + Send {
        move |db: &Db| {
            db.execute(
                "INSERT INTO messages (id, chat_id, sender, body, created_at)
                 VALUES (?1, 'c', 'visitor', ?2, '2026-01-01T00:00:00.000Z')",
                &[&crate::domain::new_id(), &body],
            )?;
            Ok(())
        }
    }

    /// The seqs FTS5 finds for `word`, oldest first.
    async fn found(writer: &Writer, word: &'static str) -> Vec<i64> {
        writer
            .run(move |db| {
                Ok(db.query_map(
                    "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1 ORDER BY rowid",
                    &[&word],
                    |r| r.get::<i64>(0),
                )?)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn messages_are_indexed_when_a_search_asks_and_soon_after_when_none_does() {
        let writer = writer();
        writer.run(store_message("hello there")).await.unwrap();
        writer.index_now().await.unwrap();
        assert_eq!(found(&writer, "hello").await, vec![1]);

        // No search: the idle writer indexes it within its interval.
        writer.run(store_message("hello again")).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while found(&writer, "again").await.is_empty() {
            assert!(Instant::now() < deadline, "never indexed while idle");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(found(&writer, "hello").await, vec![1, 2]);
    }

    #[test]
    fn the_index_is_filled_when_asked_after_its_interval_or_after_enough_jobs() {
        let wanted = Arc::new(AtomicBool::new(false));
        let mut indexing = SearchIndexing::new(wanted.clone());
        indexing.committed(1, Some(7));
        assert_eq!(
            indexing.idle_wait(),
            None,
            "nothing behind: the writer just waits"
        );
        assert!(!indexing.due_with(1));
        indexing.committed(1, None);
        assert!(indexing.idle_wait().is_some());

        wanted.store(true, Ordering::SeqCst);
        assert!(indexing.due_with(1), "a search asked");
        assert!(!wanted.load(Ordering::SeqCst), "and its ask is taken");

        assert!(!indexing.due_with(SearchIndexing::AFTER_JOBS - 2));
        assert!(
            indexing.due_with(SearchIndexing::AFTER_JOBS - 1),
            "enough jobs behind"
        );

        indexing.last_filled = Instant::now() - SearchIndexing::EVERY;
        assert!(indexing.due_with(1), "the interval passed");
        assert_eq!(indexing.idle_wait(), Some(Duration::ZERO));

        indexing.rolled_back(true);
        assert_eq!(
            indexing.indexed, None,
            "looked up again after a failed filling"
        );
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
