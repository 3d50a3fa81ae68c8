//! Schedules: named cron patterns that enqueue a queue task at each tick, kept in the
//! store (table `schedules`) so they survive restarts.
//!
//! A loop looks once a second for a schedule whose `next_run_at` has come (one indexed
//! read) and fires it in one write transaction with the task it enqueues, so a crash
//! never enqueues a tick twice nor loses one. Runs never overlap: a tick while the
//! previous run's task is still pending, retrying or running is skipped and counted.
//! After downtime the missed ticks are caught up once (not once per tick), or, with
//! `catch_up: false`, only counted. The next tick is always computed from now.

pub mod timing;

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::storage::db::{Db, now_ms};
use crate::storage::error::{Result, StorageError};
use crate::storage::task::{QueueSignal, TaskSpec, insert_task};
use timing::Timing;

/// A tick this late (ms) was missed (the instance was down), not merely served late.
const LATE_MS: i64 = 60_000;
/// How often the loop looks for a due schedule.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Schedules fired in one transaction at most.
const FIRE_BATCH: usize = 100;
/// Missed ticks counted one by one at most, per schedule and downtime: counting walks the
/// pattern inside the writer's transaction (a minutely schedule down for months).
const MAX_COUNTED_MISSES: u64 = 1_000;

/// What a caller asks for.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// Five fields or a nickname (`@hourly`).
    pub cron: String,
    /// IANA name (`Europe/Berlin`).
    pub timezone: String,
    /// The task to enqueue at each tick, as `POST /api/queue/tasks` takes it.
    pub task: Value,
    /// Run once after downtime that missed ticks.
    pub catch_up: bool,
}

/// A stored schedule with what became of it.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub task: Value,
    pub catch_up: bool,
    /// Who made it: its tasks run with that caller's rights.
    pub created_by: Option<String>,
    /// Ms since the epoch.
    pub next_run_at: i64,
    pub last_run_at: Option<i64>,
    pub last_task_id: Option<i64>,
    /// The status of the last task, while it is kept.
    pub last_task_status: Option<String>,
    pub runs: u64,
    /// Ticks skipped because the previous run had not finished.
    pub skipped: u64,
    /// Ticks that passed while the instance was down and were not run.
    pub missed: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The schedules of one store; cheap to clone.
#[derive(Clone)]
pub struct Schedules {
    db: Arc<Db>,
    signal: QueueSignal,
    max_payload_bytes: usize,
    /// Wakes the loop when a schedule changes.
    changed: Arc<Notify>,
}

/// Whether `name` may name a schedule: 1–64 of letters, digits, `.`, `_`, `-`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

const COLUMNS: &str = "s.name, s.cron, s.timezone, s.task, s.catch_up, s.created_by, s.next_run_at,
    s.last_run_at, s.last_task_id, t.status, s.runs, s.skipped, s.missed, s.created_at, s.updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(Schedule, String)> {
    let task: String = row.get(3)?;
    Ok((
        Schedule {
            name: row.get(0)?,
            cron: row.get(1)?,
            timezone: row.get(2)?,
            task: Value::Null,
            catch_up: row.get(4)?,
            created_by: row.get(5)?,
            next_run_at: row.get(6)?,
            last_run_at: row.get(7)?,
            last_task_id: row.get(8)?,
            last_task_status: row.get(9)?,
            runs: u64::try_from(row.get::<_, i64>(10)?).unwrap_or(0),
            skipped: u64::try_from(row.get::<_, i64>(11)?).unwrap_or(0),
            missed: u64::try_from(row.get::<_, i64>(12)?).unwrap_or(0),
            created_at: row.get(13)?,
            updated_at: row.get(14)?,
        },
        task,
    ))
}

fn finish((mut schedule, task): (Schedule, String)) -> Result<Schedule> {
    schedule.task = serde_json::from_str(&task)
        .map_err(|e| StorageError::Corrupt(format!("schedule {}: {e}", schedule.name)))?;
    Ok(schedule)
}

fn get_in(conn: &Connection, name: &str) -> Result<Option<Schedule>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM schedules s LEFT JOIN tasks t ON t.id = s.last_task_id WHERE s.name = ?1"
    );
    conn.prepare_cached(&sql)?
        .query_row([name], from_row)
        .optional()?
        .map(finish)
        .transpose()
}

/// Checks a spec: its pattern, zone and task. Answers the timing.
fn check(spec: &ScheduleSpec, max_payload_bytes: usize) -> Result<Timing> {
    let timing = Timing::parse(&spec.cron, &spec.timezone).map_err(StorageError::Invalid)?;
    task_of(&spec.task, None)?.prepare(max_payload_bytes)?;
    Ok(timing)
}

/// The task a schedule's stored spec describes.
fn task_of(task: &Value, created_by: Option<String>) -> Result<crate::storage::task::NewTask> {
    let spec: TaskSpec = serde_json::from_value(task.clone())
        .map_err(|e| StorageError::invalid(format!("task: {e}")))?;
    spec.into_task("task.", created_by)
}

impl Schedules {
    pub fn new(db: Arc<Db>, signal: QueueSignal, max_payload_bytes: usize) -> Schedules {
        Schedules {
            db,
            signal,
            max_payload_bytes,
            changed: Arc::default(),
        }
    }

    /// Creates or replaces schedule `name`; `true` when it was created. A replaced
    /// schedule keeps its history and counts, and its next tick unless the pattern or zone
    /// changed (so a tick missed while down is still caught up after a restart re-puts it).
    pub async fn put(
        &self,
        name: &str,
        spec: ScheduleSpec,
        created_by: Option<String>,
    ) -> Result<(Schedule, bool)> {
        if !valid_name(name) {
            return Err(StorageError::invalid(
                "a schedule name is 1 to 64 letters, digits, '.', '_' or '-'",
            ));
        }
        let timing = check(&spec, self.max_payload_bytes)?;
        let task = serde_json::to_string(&spec.task)
            .map_err(|e| StorageError::invalid(format!("task: {e}")))?;
        let name = name.to_owned();
        let put = self
            .db
            .write(move |ctx| {
                let now = ctx.now_ms;
                let next = timing.next_after(now).unwrap_or(i64::MAX);
                let existed = ctx
                    .conn
                    .prepare_cached("SELECT 1 FROM schedules WHERE name = ?1")?
                    .exists([&name])?;
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO schedules (name, cron, timezone, task, catch_up, created_by,
                           next_run_at, runs, skipped, missed, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0, 0, ?8, ?8)
                         ON CONFLICT (name) DO UPDATE SET cron = excluded.cron,
                           timezone = excluded.timezone, task = excluded.task,
                           catch_up = excluded.catch_up, created_by = excluded.created_by,
                           next_run_at = CASE WHEN cron = excluded.cron
                             AND timezone = excluded.timezone THEN next_run_at
                             ELSE excluded.next_run_at END,
                           updated_at = excluded.updated_at",
                    )?
                    .execute(params![
                        name,
                        spec.cron,
                        spec.timezone,
                        task,
                        spec.catch_up,
                        created_by,
                        next,
                        now
                    ])?;
                let schedule = get_in(ctx.conn, &name)?
                    .ok_or_else(|| StorageError::Internal("a schedule vanished".into()))?;
                Ok((schedule, !existed))
            })
            .await?;
        self.changed.notify_one();
        Ok(put)
    }

    pub async fn get(&self, name: &str) -> Result<Option<Schedule>> {
        let name = name.to_owned();
        self.db.read(move |conn| get_in(conn, &name)).await
    }

    /// Every schedule, by name.
    pub async fn list(&self) -> Result<Vec<Schedule>> {
        self.db
            .read(|conn| {
                let sql = format!(
                    "SELECT {COLUMNS} FROM schedules s LEFT JOIN tasks t ON t.id = s.last_task_id ORDER BY s.name"
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map([], from_row)?;
                rows.map(|row| finish(row?)).collect()
            })
            .await
    }

    /// Removes schedule `name`; `false` when there was none. Its tasks stay.
    pub async fn delete(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        let removed = self
            .db
            .write(move |ctx| {
                Ok(ctx
                    .conn
                    .prepare_cached("DELETE FROM schedules WHERE name = ?1")?
                    .execute([name])?
                    > 0)
            })
            .await?;
        self.changed.notify_one();
        Ok(removed)
    }

    /// Fires every schedule whose tick has come; answers how many tasks were enqueued.
    pub async fn fire_due(&self) -> Result<usize> {
        let due = self
            .db
            .read(|conn| {
                Ok(conn
                    .prepare_cached("SELECT MIN(next_run_at) FROM schedules")?
                    .query_row([], |r| r.get::<_, Option<i64>>(0))?)
            })
            .await?;
        if due.is_none_or(|at| at > now_ms()) {
            return Ok(0);
        }
        let max_payload_bytes = self.max_payload_bytes;
        let enqueued = self
            .db
            .write(move |ctx| fire_in(ctx.conn, ctx.now_ms, max_payload_bytes))
            .await?;
        if enqueued > 0 {
            self.signal.wake();
        }
        Ok(enqueued)
    }

    /// Fires due schedules until `shutdown`.
    pub fn spawn(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let schedules = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = schedules.fire_due().await {
                    tracing::warn!(error = %e, "cannot fire the due schedules");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(LOOK_EVERY) => {}
                    _ = schedules.changed.notified() => {}
                }
            }
        })
    }
}

/// Whether the task `id` is still to run or running.
fn unfinished(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM tasks WHERE id = ?1 AND status IN ('pending', 'retrying', 'running')",
        )?
        .exists([id])?)
}

/// Ticks of `timing` in `(after, until]`, counted up to a bound.
fn ticks_between(timing: &Timing, after: i64, until: i64) -> u64 {
    let mut count = 0;
    let mut cursor = after;
    while count < MAX_COUNTED_MISSES {
        match timing.next_after(cursor) {
            Some(next) if next <= until => {
                count += 1;
                cursor = next;
            }
            _ => break,
        }
    }
    count
}

/// A schedule whose tick has come, as the loop reads it.
struct Due {
    name: String,
    cron: String,
    timezone: String,
    task: String,
    catch_up: bool,
    created_by: Option<String>,
    next_run_at: i64,
    last_task_id: Option<i64>,
}

/// Fires the due schedules inside the writer's transaction.
fn fire_in(conn: &Connection, now: i64, max_payload_bytes: usize) -> Result<usize> {
    let due: Vec<Due> = conn
        .prepare_cached(
            "SELECT name, cron, timezone, task, catch_up, created_by, next_run_at, last_task_id
             FROM schedules WHERE next_run_at <= ?1 ORDER BY next_run_at LIMIT ?2",
        )?
        .query_map(params![now, FIRE_BATCH as i64], |r| {
            Ok(Due {
                name: r.get(0)?,
                cron: r.get(1)?,
                timezone: r.get(2)?,
                task: r.get(3)?,
                catch_up: r.get(4)?,
                created_by: r.get(5)?,
                next_run_at: r.get(6)?,
                last_task_id: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut enqueued = 0;
    for Due {
        name,
        cron,
        timezone,
        task,
        catch_up,
        created_by,
        next_run_at,
        last_task_id,
    } in due
    {
        let timing = match Timing::parse(&cron, &timezone) {
            Ok(timing) => timing,
            Err(e) => {
                // The zone left the tz database: look again in an hour, and say why.
                tracing::warn!(schedule = %name, error = %e, "a schedule cannot be read");
                conn.prepare_cached("UPDATE schedules SET next_run_at = ?2 WHERE name = ?1")?
                    .execute(params![name, now + 3_600_000])?;
                continue;
            }
        };
        let next = timing.next_after(now).unwrap_or(i64::MAX);
        let late = now - next_run_at > LATE_MS;
        // The ticks after the one due that also passed: missed while down.
        let passed = if late {
            ticks_between(&timing, next_run_at, now)
        } else {
            0
        };
        let overlapping = match last_task_id {
            Some(id) => unfinished(conn, id)?,
            None => false,
        };
        if overlapping || (late && !catch_up) {
            let (skipped, missed) = if overlapping {
                (1, passed)
            } else {
                (0, passed + 1)
            };
            conn.prepare_cached(
                "UPDATE schedules SET next_run_at = ?2, skipped = skipped + ?3,
                   missed = missed + ?4 WHERE name = ?1",
            )?
            .execute(params![name, next, skipped, missed as i64])?;
            continue;
        }
        let prepared = serde_json::from_str::<Value>(&task)
            .map_err(|e| StorageError::Corrupt(format!("schedule {name}: {e}")))
            .and_then(|spec| task_of(&spec, created_by))
            .and_then(|task| task.prepare(max_payload_bytes));
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                tracing::warn!(schedule = %name, error = %e, "a schedule's task cannot be made");
                conn.prepare_cached("UPDATE schedules SET next_run_at = ?2 WHERE name = ?1")?
                    .execute(params![name, next])?;
                continue;
            }
        };
        let task_id = insert_task(conn, now, &prepared)?;
        conn.prepare_cached(
            "UPDATE schedules SET next_run_at = ?2, last_run_at = ?3, last_task_id = ?4,
               runs = runs + 1, missed = missed + ?5 WHERE name = ?1",
        )?
        .execute(params![name, next, now, task_id, passed as i64])?;
        enqueued += 1;
    }
    Ok(enqueued)
}
