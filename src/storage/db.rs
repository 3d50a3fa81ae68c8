//! The SQLite engine under the store: one writer thread with group commit, and a few
//! reader connections.
//!
//! Why this shape: SQLite allows one writer at a time. A dedicated thread owns the write
//! connection and takes every write job waiting in its channel into one transaction, so
//! thousands of concurrent writes share one commit (group commit). Each job of a batch runs
//! inside its own savepoint, so one job failing (a failed check, a bad key) never undoes
//! its neighbours; a job alone in its batch needs none (a rollback undoes it). A job's
//! caller hears back only after the transaction has committed: an acknowledged write is in
//! the WAL. Readers have their own connections (WAL lets them read
//! while the writer writes) on reader threads of their own that share one queue, so a slow
//! query never stalls the threads that serve requests.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use crate::storage::error::{Result, StorageError};
use crate::storage::schema;

/// How many write jobs share one transaction at most.
const MAX_BATCH: usize = 2048;
/// Reader threads, each with its connection; reads are short, a few suffice for two cores.
const READERS: usize = 4;
/// Prepared statements kept per connection; the store uses a few dozen.
const STATEMENT_CACHE: usize = 64;

/// When a commit is flushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a commit survives a crash of the process; only a power
    /// loss or OS crash can lose the last commits.
    Normal,
    /// `synchronous=FULL`: every commit is fsynced before it is acknowledged.
    Full,
}

/// What a write job sees: the write connection inside the batch transaction, and the clock
/// and versionstamp of its commit.
pub struct WriteCtx<'a> {
    pub conn: &'a Connection,
    next_version: &'a mut u64,
    version: Option<u64>,
    /// Milliseconds since the Unix epoch when the batch started.
    pub now_ms: i64,
}

impl WriteCtx<'_> {
    /// The versionstamp of this job's commit: increasing across the whole store, shared by
    /// every mutation of the job.
    pub fn version(&mut self) -> u64 {
        if let Some(v) = self.version {
            return v;
        }
        *self.next_version += 1;
        self.version = Some(*self.next_version);
        *self.next_version
    }
}

/// A job the writer runs, type-erased so one channel carries every kind.
trait WriteJob: Send {
    fn run(&mut self, ctx: &mut WriteCtx<'_>) -> bool;
    fn finish(self: Box<Self>, committed: std::result::Result<(), String>);
}

struct Job<T, F> {
    work: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send,
    F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send,
{
    fn run(&mut self, ctx: &mut WriteCtx<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = work(ctx);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, committed: std::result::Result<(), String>) {
        let outcome = match (committed, self.outcome) {
            // A job that failed was rolled back whatever became of the batch.
            (_, Some(Err(job_err))) => Err(job_err),
            (Ok(()), Some(Ok(value))) => Ok(value),
            (Err(e), _) => Err(StorageError::Commit(e)),
            (Ok(()), None) => Err(StorageError::Closed),
        };
        // The caller may have gone away (request cancelled); the write stands regardless.
        let _ = self.reply.send(outcome);
    }
}

/// A read the reader threads run: the caller's work with its reply.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// A handle on the database: cheap to share behind an `Arc`. Dropping it ends the writer
/// and reader threads once their queues are empty.
pub struct Db {
    jobs: mpsc::UnboundedSender<Box<dyn WriteJob>>,
    reads: crossbeam_channel::Sender<ReadJob>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn configure(conn: &Connection, durability: Durability) -> Result<()> {
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON;"
    ))?;
    Ok(())
}

impl Db {
    /// Opens (creating if needed) the database file and starts the writer thread.
    pub fn open(path: &Path, durability: Durability) -> Result<Db> {
        let writer = Connection::open(path)?;
        configure(&writer, durability)?;
        // Checkpoint every 64 MB of WAL, not every 4 MB: a page written by several commits
        // in between is copied into the database once (docs/PERFORMANCE.md, "Facts").
        writer.execute_batch("PRAGMA wal_autocheckpoint=16384;")?;
        schema::migrate(&writer)?;
        let next_version: u64 = writer
            .query_row("SELECT v FROM meta WHERE k = 'version'", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .map(|v| u64::try_from(v).unwrap_or(0))
            .unwrap_or(0);

        // Readers share one queue, so a slow read holds up only its own thread.
        let (reads, queued) = crossbeam_channel::unbounded::<ReadJob>();
        for n in 0..READERS {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            let queued = queued.clone();
            std::thread::Builder::new()
                .name(format!("toolshed-db-reader-{n}"))
                .spawn(move || {
                    for job in queued {
                        // A panicking read fails alone (its caller hears `Closed`).
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&conn)));
                    }
                })
                .map_err(|e| {
                    StorageError::Internal(format!("cannot start a reader thread: {e}"))
                })?;
        }

        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("toolshed-db-writer".into())
            .spawn(move || writer_loop(writer, rx, next_version))
            .map_err(|e| StorageError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Db { jobs: tx, reads })
    }

    /// Runs `work` in the writer's next transaction and answers once it has committed.
    /// An `Err` from `work` rolls back only this job.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work: Some(work),
            outcome: None,
            reply,
        };
        self.jobs
            .send(Box::new(job))
            .map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }

    /// Runs `work` on a reader thread's connection, off the async threads: a slow query
    /// must not stall the threads that serve requests.
    pub async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = reply.send(work(conn));
        });
        self.reads.send(job).map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }
}

fn writer_loop(
    conn: Connection,
    mut jobs: mpsc::UnboundedReceiver<Box<dyn WriteJob>>,
    mut next_version: u64,
) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = run_batch(&conn, &mut batch, &mut next_version);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
            // Versions handed out in a failed batch are skipped, never reused.
        }
        for job in batch.drain(..) {
            job.finish(committed.clone());
        }
    }
}

fn run_batch(
    conn: &Connection,
    batch: &mut [Box<dyn WriteJob>],
    next_version: &mut u64,
) -> std::result::Result<(), String> {
    exec_cached(conn, "BEGIN IMMEDIATE")?;
    let now_ms = now_ms();
    // A savepoint copies the original of every page a job changes into a sub-journal, so
    // that the job alone can be undone; a job alone in its batch is undone by ROLLBACK
    // (a fact load went 30 % faster without the copies: docs/PERFORMANCE.md, "Facts").
    let alone = batch.len() == 1;
    for job in batch.iter_mut() {
        if !alone {
            exec_cached(conn, "SAVEPOINT job")?;
        }
        let mut ctx = WriteCtx {
            conn,
            next_version,
            version: None,
            now_ms,
        };
        // A panicking job must not take the only writer down with it: it fails alone.
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&mut ctx)))
            .unwrap_or(false);
        if alone {
            if !ok {
                // Nothing was committed, so nothing is announced: the job hears its error.
                exec_cached(conn, "ROLLBACK")?;
                return Ok(());
            }
            continue;
        }
        if !ok {
            exec_cached(conn, "ROLLBACK TO job")?;
        }
        exec_cached(conn, "RELEASE job")?;
    }
    conn.prepare_cached("INSERT INTO meta (k, v) VALUES ('version', ?1) ON CONFLICT(k) DO UPDATE SET v = excluded.v")
        .and_then(|mut s| s.execute([i64::try_from(*next_version).unwrap_or(i64::MAX)]))
        .map_err(|e| e.to_string())?;
    exec_cached(conn, "COMMIT")
}

/// Runs a fixed statement through the statement cache: the batch loop runs a few per job,
/// and parsing them each time would cost more than the work.
fn exec_cached(conn: &Connection, sql: &str) -> std::result::Result<(), String> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use tempfile::TempDir;

    fn temp_db() -> (TempDir, Db) {
        let dir = TempDir::new().expect("temp dir");
        let db = Db::open(&dir.path().join("t.db"), Durability::Normal).expect("open");
        (dir, db)
    }

    /// The one-letter keys the tests below write into `meta`.
    async fn test_keys(db: &Db) -> Vec<String> {
        db.read(|c| {
            let mut s = c.prepare("SELECT k FROM meta WHERE length(k) = 1 ORDER BY k")?;
            let rows = s.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .await
        .expect("read")
    }

    #[tokio::test]
    async fn a_failed_job_does_not_undo_its_batch_neighbours() {
        let (_dir, db) = temp_db();
        let ok = db.write(|ctx| {
            ctx.conn
                .execute("INSERT INTO meta (k, v) VALUES ('a', 1)", [])?;
            Ok(())
        });
        let failing = db.write(|ctx| -> Result<()> {
            ctx.conn
                .execute("INSERT INTO meta (k, v) VALUES ('b', 1)", [])?;
            Err(StorageError::invalid("no"))
        });
        let (ok, failing) = tokio::join!(ok, failing);
        assert!(ok.is_ok());
        assert!(failing.is_err());
        assert_eq!(test_keys(&db).await, ["a"]);
    }

    #[tokio::test]
    async fn a_failed_job_alone_leaves_nothing_and_the_writer_goes_on() {
        let (_dir, db) = temp_db();
        let failing = db
            .write(|ctx| -> Result<()> {
                ctx.conn
                    .execute("INSERT INTO meta (k, v) VALUES ('b', 1)", [])?;
                Err(StorageError::invalid("no"))
            })
            .await;
        assert!(failing.is_err());
        let panicking = db
            .write(|ctx| -> Result<()> {
                ctx.conn
                    .execute("INSERT INTO meta (k, v) VALUES ('c', 1)", [])?;
                panic!("a job that panics")
            })
            .await;
        assert!(panicking.is_err());
        db.write(|ctx| {
            ctx.conn
                .execute("INSERT INTO meta (k, v) VALUES ('a', 1)", [])?;
            Ok(())
        })
        .await
        .expect("the next job commits");
        assert_eq!(test_keys(&db).await, ["a"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_read_does_not_stall_the_runtime() {
        let (_dir, db) = temp_db();
        let slow = db.read(|_| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            Ok(std::time::Instant::now())
        });
        let tick = async {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            std::time::Instant::now()
        };
        // One runtime thread: had the read run on it, the timer could not fire before it.
        let (read_done, ticked) = tokio::join!(slow, tick);
        assert!(
            ticked < read_done.expect("read"),
            "the timer waited for the read"
        );
    }

    #[tokio::test]
    async fn versions_increase_and_survive_reopen() {
        let dir = TempDir::new().expect("temp dir");
        let path = dir.path().join("t.db");
        let first = {
            let db = Db::open(&path, Durability::Normal).expect("open");
            db.write(|ctx| Ok(ctx.version())).await.expect("write")
        };
        let db = Db::open(&path, Durability::Normal).expect("reopen");
        let second = db.write(|ctx| Ok(ctx.version())).await.expect("write");
        assert!(second > first, "{second} > {first}");
    }
}
