//! The durable task queue: tasks, their states and transitions, in SQLite.
//!
//! A task is `pending` until its first attempt, `running` while a worker holds its lease,
//! `retrying` while it waits for the next attempt after a failure, then `succeeded` or
//! `dead`. Every transition is one write through the group-committing writer, so an
//! acknowledged enqueue is durable and a task running when the process dies is put back at
//! the next start (the crash costs that attempt, as in Deno's queue). A worker holds a lease
//! token; a completion whose token no longer matches is ignored, so a worker whose lease
//! expired can never overwrite the task's fate. The dispatch loop lives in `worker.rs`.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::storage::db::{Db, WriteCtx, now_ms};
use crate::storage::entry::{KvValue, write_entry};
use crate::storage::error::{Result, StorageError};
use crate::storage::task::{
    DEFAULT_TIMEOUT_MS, NewTask, QueueSignal, Status, Task, insert_task, json_text, to_i64,
};

/// A lease outlives the attempt's timeout by this margin before the reaper takes it back.
pub const LEASE_MARGIN_MS: i64 = 5_000;

/// A task handed to a worker, with the lease that lets it report back.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub kind: String,
    pub payload: Value,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub lease: i64,
    pub timeout_ms: u64,
    /// Who enqueued it (a token fingerprint): the attempt runs with that caller's rights.
    pub created_by: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Succeeded(Value),
    /// Try again along the backoff schedule, if attempts remain.
    Retry(String),
    /// Give up now: the task is dead.
    Fatal(String),
}

/// Counts per status and the wait of the oldest due task.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub counts: Vec<(Status, u64)>,
    /// How long the oldest task that is due has waited to start, in ms (0 when none).
    pub oldest_pending_age_ms: i64,
}

const TASK_COLUMNS: &str = "id, kind, payload, status, attempts, max_attempts, run_at, created_at, updated_at, last_error, result, created_by";

fn parse_json(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| StorageError::Corrupt(format!("{what}: {e}")))
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn task_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Task, String, Option<String>)> {
    let status: String = r.get(3)?;
    let task = Task {
        id: r.get(0)?,
        kind: r.get(1)?,
        payload: Value::Null,
        status: Status::parse(&status).unwrap_or(Status::Dead),
        attempts: to_u32(r.get(4)?),
        max_attempts: to_u32(r.get(5)?),
        run_at: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        last_error: r.get(9)?,
        result: None,
        created_by: r.get(11)?,
    };
    Ok((task, r.get(2)?, r.get(10)?))
}

fn finish_task(parts: (Task, String, Option<String>)) -> Result<Task> {
    let (mut task, payload, result) = parts;
    task.payload = parse_json(&payload, "task payload")?;
    task.result = result.map(|r| parse_json(&r, "task result")).transpose()?;
    Ok(task)
}

/// How a recorded attempt left its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The lease was no longer held: the outcome was ignored.
    LeaseLost,
    Succeeded,
    /// Failed; it waits for its next attempt.
    Retrying,
    /// Failed for good.
    Dead,
}

/// Decides the fate of a task whose attempt failed (or was interrupted), inside a write;
/// answers whether it is dead.
fn fail(
    ctx: &mut WriteCtx<'_>,
    id: i64,
    error: &str,
    fatal: bool,
    retry_now: bool,
) -> Result<bool> {
    let (attempts, max_attempts, backoff, keys, payload): (i64, i64, String, String, String) = ctx
        .conn
        .prepare_cached(
            "SELECT attempts, max_attempts, backoff_ms, keys_if_undelivered, payload FROM tasks WHERE id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
    let now = ctx.now_ms;
    if !fatal && attempts < max_attempts {
        let schedule: Vec<u64> = serde_json::from_str(&backoff).unwrap_or_default();
        // Attempt n waits schedule[n-1]; past the end the last entry repeats.
        let index = usize::try_from(attempts.max(1) - 1).unwrap_or(0);
        let wait = schedule
            .get(index)
            .or(schedule.last())
            .copied()
            .unwrap_or(0);
        let run_at = if retry_now {
            now
        } else {
            now.saturating_add(to_i64(wait))
        };
        ctx.conn
            .prepare_cached(
                "UPDATE tasks SET status = 'retrying', run_at = ?2, last_error = ?3, lease = NULL,
                   lease_until = NULL, updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id, run_at, error, now])?;
        return Ok(false);
    }
    ctx.conn
        .prepare_cached(
            "UPDATE tasks SET status = 'dead', last_error = ?2, lease = NULL, lease_until = NULL,
               updated_at = ?3 WHERE id = ?1",
        )?
        .execute(params![id, error, now])?;
    // Dead letters: the payload goes to every key the task named, as in Deno.
    let keys: Vec<String> = serde_json::from_str(&keys).unwrap_or_default();
    if !keys.is_empty() {
        let value = KvValue::Json(parse_json(&payload, "task payload")?).encode()?;
        let version = ctx.version();
        for encoded in keys {
            let raw = URL_SAFE_NO_PAD
                .decode(encoded)
                .map_err(|_| StorageError::Corrupt("keys_if_undelivered".into()))?;
            write_entry(ctx.conn, &raw, &value, version, None)?;
        }
    }
    Ok(true)
}

/// The task queue's storage side.
#[derive(Clone)]
pub struct Queue {
    db: Arc<Db>,
    pub(crate) signal: QueueSignal,
    max_payload_bytes: usize,
}

impl Queue {
    pub fn new(db: Arc<Db>, signal: QueueSignal, max_payload_bytes: usize) -> Queue {
        Queue {
            db,
            signal,
            max_payload_bytes,
        }
    }

    /// Enqueues durably: answers once the task is committed.
    pub async fn enqueue(&self, task: NewTask) -> Result<Task> {
        let task = task.prepare(self.max_payload_bytes)?;
        let task = self
            .db
            .write(move |ctx| {
                let id = insert_task(ctx.conn, ctx.now_ms, &task)?;
                get_in(ctx.conn, id)?.ok_or_else(|| StorageError::NotFound("task vanished".into()))
            })
            .await?;
        self.signal.wake();
        Ok(task)
    }

    /// Reads one task.
    pub async fn get(&self, id: i64) -> Result<Option<Task>> {
        self.db.read(move |conn| get_in(conn, id)).await
    }

    /// Lists tasks in id order (oldest first), optionally of one status, after `after_id`.
    pub async fn list(
        &self,
        status: Option<Status>,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Task>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE (?1 IS NULL OR status = ?1) AND id > ?2 ORDER BY id LIMIT ?3"
        );
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(
                    params![status.map(Status::as_str), after_id, to_i64(limit as u64)],
                    task_from_row,
                )?;
                rows.map(|r| finish_task(r?)).collect()
            })
            .await
    }

    /// Counts per status and the wait of the oldest due task.
    pub async fn stats(&self) -> Result<Stats> {
        let now = now_ms();
        self.db
            .read(move |conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT status, COUNT(*) FROM tasks GROUP BY status")?;
                let rows =
                    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
                let mut counts: Vec<(Status, u64)> = Status::ALL.iter().map(|s| (*s, 0)).collect();
                for row in rows {
                    let (status, n) = row?;
                    if let Some(slot) = counts.iter_mut().find(|(s, _)| s.as_str() == status) {
                        slot.1 = u64::try_from(n).unwrap_or(0);
                    }
                }
                let oldest: Option<i64> = conn
                    .prepare_cached(
                        "SELECT MIN(run_at) FROM tasks WHERE status IN ('pending', 'retrying')",
                    )?
                    .query_row([], |r| r.get(0))?;
                Ok(Stats {
                    counts,
                    oldest_pending_age_ms: oldest.map_or(0, |t| (now - t).max(0)),
                })
            })
            .await
    }

    /// Puts a dead task back to pending with fresh attempts.
    pub async fn retry(&self, id: i64) -> Result<Task> {
        let task = self
            .db
            .write(move |ctx| {
                let task = get_in(ctx.conn, id)?
                    .ok_or_else(|| StorageError::NotFound(format!("no task {id}")))?;
                if task.status != Status::Dead {
                    return Err(StorageError::Conflict(format!(
                        "task {id} is {}; only dead tasks can be retried",
                        task.status.as_str()
                    )));
                }
                ctx.conn
                    .prepare_cached(
                        "UPDATE tasks SET status = 'pending', attempts = 0, run_at = ?2, result = NULL,
                           updated_at = ?2 WHERE id = ?1",
                    )?
                    .execute(params![id, ctx.now_ms])?;
                get_in(ctx.conn, id)?.ok_or_else(|| StorageError::NotFound(format!("no task {id}")))
            })
            .await?;
        self.signal.wake();
        Ok(task)
    }

    /// Deletes a task that is not running.
    pub async fn delete(&self, id: i64) -> Result<()> {
        self.db
            .write(move |ctx| {
                let task = get_in(ctx.conn, id)?
                    .ok_or_else(|| StorageError::NotFound(format!("no task {id}")))?;
                if task.status == Status::Running {
                    return Err(StorageError::Conflict(format!(
                        "task {id} is running; delete it once it has finished"
                    )));
                }
                ctx.conn
                    .prepare_cached("DELETE FROM tasks WHERE id = ?1")?
                    .execute([id])?;
                Ok(())
            })
            .await
    }

    /// Takes up to `limit` due tasks of `kind` and leases them to this process.
    pub async fn claim(&self, kind: &str, limit: usize, lease: i64) -> Result<Vec<Claimed>> {
        let kind = kind.to_owned();
        self.db
            .write(move |ctx| {
                let mut stmt = ctx.conn.prepare_cached(
                    "UPDATE tasks SET status = 'running', attempts = attempts + 1, lease = ?3,
                       lease_until = ?4 + timeout_ms + ?5, updated_at = ?4
                     WHERE id IN (SELECT id FROM tasks WHERE kind = ?1 AND status IN ('pending', 'retrying')
                                  AND run_at <= ?4 ORDER BY run_at, id LIMIT ?2)
                     RETURNING id, payload, attempts, timeout_ms, created_by",
                )?;
                let rows = stmt.query_map(
                    params![kind, to_i64(limit as u64), lease, ctx.now_ms, LEASE_MARGIN_MS],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, Option<String>>(4)?,
                        ))
                    },
                )?;
                let mut claimed = Vec::new();
                for row in rows {
                    let (id, payload, attempts, timeout_ms, created_by) = row?;
                    claimed.push(Claimed {
                        id,
                        kind: kind.clone(),
                        payload: parse_json(&payload, "task payload")?,
                        attempt: to_u32(attempts),
                        lease,
                        timeout_ms: u64::try_from(timeout_ms).unwrap_or(DEFAULT_TIMEOUT_MS),
                        created_by,
                    });
                }
                Ok(claimed)
            })
            .await
    }

    /// Records how an attempt ended, and answers how that left the task.
    pub async fn complete(&self, id: i64, lease: i64, outcome: Outcome) -> Result<Completion> {
        let result_text = match &outcome {
            Outcome::Succeeded(v) => Some(json_text(v)?),
            _ => None,
        };
        self.db
            .write(move |ctx| {
                let held: Option<i64> = ctx
                    .conn
                    .prepare_cached(
                        "SELECT id FROM tasks WHERE id = ?1 AND lease = ?2 AND status = 'running'",
                    )?
                    .query_row(params![id, lease], |r| r.get(0))
                    .optional()?;
                if held.is_none() {
                    return Ok(Completion::LeaseLost);
                }
                let died = match outcome {
                    Outcome::Succeeded(_) => {
                        ctx.conn
                            .prepare_cached(
                                "UPDATE tasks SET status = 'succeeded', result = ?2, last_error = NULL,
                                   lease = NULL, lease_until = NULL, updated_at = ?3 WHERE id = ?1",
                            )?
                            .execute(params![id, result_text, ctx.now_ms])?;
                        return Ok(Completion::Succeeded);
                    }
                    Outcome::Retry(error) => fail(ctx, id, &error, false, false)?,
                    Outcome::Fatal(error) => fail(ctx, id, &error, true, false)?,
                };
                Ok(if died {
                    Completion::Dead
                } else {
                    Completion::Retrying
                })
            })
            .await
    }

    /// Takes back tasks whose lease ran out (their worker hung or vanished); each such
    /// attempt counts as failed. Answers how many.
    pub async fn reap_expired_leases(&self) -> Result<usize> {
        self.db
            .write(|ctx| {
                let ids: Vec<i64> = {
                    let mut stmt = ctx.conn.prepare_cached(
                        "SELECT id FROM tasks WHERE status = 'running' AND lease_until < ?1",
                    )?;
                    let rows = stmt.query_map([ctx.now_ms], |r| r.get(0))?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for &id in &ids {
                    fail(
                        ctx,
                        id,
                        "the attempt's lease expired (timed out)",
                        false,
                        false,
                    )?;
                }
                Ok(ids.len())
            })
            .await
    }

    /// At start-up: every `running` task belongs to a process that died; the interrupted
    /// attempt counts, and the task runs again at once if attempts remain.
    pub async fn recover_interrupted(&self) -> Result<usize> {
        self.db
            .write(|ctx| {
                let ids: Vec<i64> = {
                    let mut stmt = ctx
                        .conn
                        .prepare_cached("SELECT id FROM tasks WHERE status = 'running'")?;
                    let rows = stmt.query_map([], |r| r.get(0))?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for &id in &ids {
                    fail(
                        ctx,
                        id,
                        "interrupted: the process stopped during the attempt",
                        false,
                        true,
                    )?;
                }
                Ok(ids.len())
            })
            .await
    }

    /// On graceful shutdown: attempts still running after the grace are handed back
    /// without counting, to run at the next start.
    pub async fn release(&self, ids: Vec<(i64, i64)>) -> Result<()> {
        self.db
            .write(move |ctx| {
                for (id, lease) in ids {
                    ctx.conn
                        .prepare_cached(
                            "UPDATE tasks SET status = CASE WHEN attempts > 1 THEN 'retrying' ELSE 'pending' END,
                               attempts = attempts - 1, lease = NULL, lease_until = NULL, run_at = ?3, updated_at = ?3
                             WHERE id = ?1 AND lease = ?2 AND status = 'running'",
                        )?
                        .execute(params![id, lease, ctx.now_ms])?;
                }
                Ok(())
            })
            .await
    }

    /// When the next pending task is due, if any.
    pub async fn next_due(&self, kinds: &[String]) -> Result<Option<i64>> {
        let kinds = kinds.to_vec();
        self.db.read(move |conn| {
            let mut soonest: Option<i64> = None;
            let mut stmt = conn.prepare_cached(
                "SELECT MIN(run_at) FROM tasks WHERE kind = ?1 AND status IN ('pending', 'retrying')",
            )?;
            for kind in &kinds {
                let t: Option<i64> = stmt.query_row([kind], |r| r.get(0))?;
                soonest = match (soonest, t) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            Ok(soonest)
        })
        .await
    }

    /// Deletes succeeded tasks last updated before `before_ms`, up to `limit`.
    pub async fn purge_succeeded(&self, before_ms: i64, limit: usize) -> Result<usize> {
        self.db
            .write(move |ctx| {
                Ok(ctx
                    .conn
                    .prepare_cached(
                        "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE status = 'succeeded'
                           AND updated_at < ?1 LIMIT ?2)",
                    )?
                    .execute(params![before_ms, to_i64(limit as u64)])?)
            })
            .await
    }
}

fn get_in(conn: &Connection, id: i64) -> Result<Option<Task>> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1");
    let row = conn
        .prepare_cached(&sql)?
        .query_row([id], task_from_row)
        .optional()?;
    row.map(finish_task).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::key::KeyPart;
    use crate::storage::task::{MAX_BACKOFF_MS, MAX_DELAY_MS};
    use crate::storage::{Store, StoreOptions};
    use serde_json::json;
    use tempfile::TempDir as Dir;

    fn store(dir: &Dir) -> Store {
        Store::open(dir.path(), StoreOptions::default()).expect("store")
    }

    fn quick(kind: &str) -> NewTask {
        NewTask {
            backoff_schedule_ms: Some(vec![0, 0]),
            keys_if_undelivered: vec![vec![
                KeyPart::String("dead".into()),
                KeyPart::String(kind.into()),
            ]],
            ..NewTask::new(kind, json!({"n": 1}))
        }
    }

    #[tokio::test]
    async fn failures_follow_the_schedule_then_the_task_dies_into_its_keys() {
        let dir = Dir::new().expect("temp dir");
        let store = store(&dir);
        let task = store.queue.enqueue(quick("k")).await.expect("enqueue");
        assert_eq!((task.status, task.max_attempts), (Status::Pending, 3));
        for attempt in 1..=3 {
            let claimed = store.queue.claim("k", 10, attempt).await.expect("claim");
            assert_eq!(claimed.len(), 1, "attempt {attempt}");
            assert_eq!(claimed[0].attempt, attempt as u32);
            let held = store
                .queue
                .complete(task.id, attempt, Outcome::Retry(format!("boom {attempt}")))
                .await
                .expect("complete");
            let expected = if attempt < 3 {
                Completion::Retrying
            } else {
                Completion::Dead
            };
            assert_eq!(held, expected);
        }
        let dead = store.queue.get(task.id).await.expect("get").expect("task");
        assert_eq!(dead.status, Status::Dead);
        assert_eq!(dead.attempts, 3);
        assert_eq!(dead.last_error.as_deref(), Some("boom 3"));
        let letter = store
            .kv
            .get(&[KeyPart::String("dead".into()), KeyPart::String("k".into())])
            .await
            .expect("get")
            .expect("dead letter written");
        assert_eq!(
            letter.value,
            crate::storage::entry::KvValue::Json(json!({"n": 1}))
        );
        assert!(
            store
                .queue
                .claim("k", 10, 9)
                .await
                .expect("claim")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn retries_wait_for_their_backoff() {
        let dir = Dir::new().expect("temp dir");
        let store = store(&dir);
        let task = store
            .queue
            .enqueue(NewTask {
                backoff_schedule_ms: Some(vec![60_000]),
                ..NewTask::new("k", json!(null))
            })
            .await
            .expect("enqueue");
        store.queue.claim("k", 1, 1).await.expect("claim");
        store
            .queue
            .complete(task.id, 1, Outcome::Retry("x".into()))
            .await
            .expect("complete");
        let waiting = store.queue.get(task.id).await.expect("get").expect("task");
        assert_eq!(waiting.status, Status::Retrying);
        assert!(waiting.run_at >= now_ms() + 50_000);
        assert!(
            store
                .queue
                .claim("k", 1, 2)
                .await
                .expect("claim")
                .is_empty(),
            "not due yet"
        );
    }

    #[tokio::test]
    async fn a_worker_whose_lease_expired_cannot_complete_the_task() {
        let dir = Dir::new().expect("temp dir");
        let store = store(&dir);
        let task = store.queue.enqueue(quick("k")).await.expect("enqueue");
        store.queue.claim("k", 1, 100).await.expect("claim");
        // The lease runs out (the worker hung): the reaper takes the task back.
        store
            .db
            .write(move |ctx| {
                ctx.conn
                    .execute("UPDATE tasks SET lease_until = 0 WHERE id = ?1", [task.id])?;
                Ok(())
            })
            .await
            .expect("expire");
        assert_eq!(store.queue.reap_expired_leases().await.expect("reap"), 1);
        let again = store.queue.claim("k", 1, 200).await.expect("claim");
        assert_eq!(again.len(), 1, "redelivered to a new worker");
        let stale = store
            .queue
            .complete(task.id, 100, Outcome::Succeeded(json!("stale")))
            .await
            .expect("complete");
        assert_eq!(stale, Completion::LeaseLost, "the old lease is refused");
        let current = store.queue.get(task.id).await.expect("get").expect("task");
        assert_eq!(current.status, Status::Running);
        assert_eq!(
            store
                .queue
                .complete(task.id, 200, Outcome::Succeeded(json!("ok")))
                .await
                .expect("complete"),
            Completion::Succeeded
        );
        let done = store.queue.get(task.id).await.expect("get").expect("task");
        assert_eq!(
            (done.status, done.result),
            (Status::Succeeded, Some(json!("ok")))
        );
    }

    #[tokio::test]
    async fn a_task_running_when_the_process_died_runs_again_after_restart() {
        let dir = Dir::new().expect("temp dir");
        let id = {
            let store = store(&dir);
            let task = store.queue.enqueue(quick("k")).await.expect("enqueue");
            store.queue.claim("k", 1, 1).await.expect("claim");
            task.id
            // Dropped without completing: as if the process had been killed.
        };
        let store = store(&dir);
        assert_eq!(store.queue.recover_interrupted().await.expect("recover"), 1);
        let task = store.queue.get(id).await.expect("get").expect("task");
        assert_eq!(task.status, Status::Retrying);
        assert!(
            task.last_error
                .as_deref()
                .is_some_and(|e| e.contains("interrupted"))
        );
        let claimed = store.queue.claim("k", 1, 2).await.expect("claim");
        assert_eq!(claimed.len(), 1, "due at once");
        assert_eq!(claimed[0].attempt, 2, "the interrupted attempt counted");
    }

    #[tokio::test]
    async fn released_tasks_keep_their_attempts() {
        let dir = Dir::new().expect("temp dir");
        let store = store(&dir);
        let task = store.queue.enqueue(quick("k")).await.expect("enqueue");
        store.queue.claim("k", 1, 7).await.expect("claim");
        store
            .queue
            .release(vec![(task.id, 7)])
            .await
            .expect("release");
        let task = store.queue.get(task.id).await.expect("get").expect("task");
        assert_eq!((task.status, task.attempts), (Status::Pending, 0));
    }

    #[tokio::test]
    async fn only_dead_tasks_retry_and_running_tasks_cannot_be_deleted() {
        let dir = Dir::new().expect("temp dir");
        let store = store(&dir);
        let task = store.queue.enqueue(quick("k")).await.expect("enqueue");
        assert!(matches!(
            store.queue.retry(task.id).await,
            Err(StorageError::Conflict(_))
        ));
        store.queue.claim("k", 1, 1).await.expect("claim");
        assert!(matches!(
            store.queue.delete(task.id).await,
            Err(StorageError::Conflict(_))
        ));
        store
            .queue
            .complete(task.id, 1, Outcome::Fatal("no".into()))
            .await
            .expect("complete");
        let revived = store.queue.retry(task.id).await.expect("retry");
        assert_eq!((revived.status, revived.attempts), (Status::Pending, 0));
        store.queue.delete(task.id).await.expect("delete");
        assert!(store.queue.get(task.id).await.expect("get").is_none());
        assert!(matches!(
            store.queue.delete(task.id).await,
            Err(StorageError::NotFound(_))
        ));
    }

    #[test]
    fn options_out_of_range_are_refused() {
        let mut task = NewTask::new("k", json!(1));
        task.delay_ms = MAX_DELAY_MS + 1;
        assert!(task.validate().is_err());
        let mut task = NewTask::new("k", json!(1));
        task.max_attempts = Some(0);
        assert!(task.validate().is_err());
        let mut task = NewTask::new("k", json!(1));
        task.backoff_schedule_ms = Some(vec![MAX_BACKOFF_MS + 1]);
        assert!(task.validate().is_err());
    }
}
