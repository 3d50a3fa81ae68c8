//! Tasks as rows of the `tasks` table: what a task is (its options and states), the checks
//! every enqueue goes through, and the insert both enqueue paths use — the queue's own, and
//! KV atomic operations that enqueue in the same commit. `kv` and `queue` both build on
//! this module, so neither imports the other.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::{Connection, params};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Notify;
use utoipa::ToSchema;

use crate::storage::error::{Result, StorageError};
use crate::storage::key::{self, Key};
use crate::storage::key_json::{KeyJson, key_at};

/// The kind a task gets when its spec names none: a call to one of this instance's own
/// routes (see `routes/queue/http_task.rs`).
pub const DEFAULT_KIND: &str = "http";

/// Deno's default backoff schedule (milliseconds before attempts 2, 3, …).
pub const DEFAULT_BACKOFF_MS: [u64; 5] = [100, 1000, 5000, 30000, 60000];
/// The longest delay before a first attempt, as in Deno: 30 days.
pub const MAX_DELAY_MS: u64 = 30 * 24 * 3600 * 1000;
/// At most this many backoff entries, each at most one day.
pub const MAX_BACKOFF_ENTRIES: usize = 20;
pub const MAX_BACKOFF_MS: u64 = 24 * 3600 * 1000;
/// At most this many attempts in all.
pub const MAX_ATTEMPTS: u32 = 100;
/// How long one attempt may run unless the task says otherwise, and the most it may ask.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
pub const MAX_TIMEOUT_MS: u64 = 3600 * 1000;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Running,
    Succeeded,
    Retrying,
    Dead,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Running,
        Status::Succeeded,
        Status::Retrying,
        Status::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Retrying => "retrying",
            Status::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A task to enqueue.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub kind: String,
    pub payload: Value,
    /// Wait this long before the first attempt.
    pub delay_ms: u64,
    /// Waits between attempts; `None` takes [`DEFAULT_BACKOFF_MS`].
    pub backoff_schedule_ms: Option<Vec<u64>>,
    /// Where the payload is written if the task dies.
    pub keys_if_undelivered: Vec<Key>,
    /// Attempts in all; `None` means one more than the backoff schedule has entries.
    pub max_attempts: Option<u32>,
    /// How long one attempt may run.
    pub timeout_ms: Option<u64>,
    /// The caller that enqueued it (its token's fingerprint), whose rights it runs with;
    /// `None` on an instance without tokens.
    pub created_by: Option<String>,
}

impl NewTask {
    /// A task with Deno's defaults.
    pub fn new(kind: impl Into<String>, payload: Value) -> NewTask {
        NewTask {
            kind: kind.into(),
            payload,
            delay_ms: 0,
            backoff_schedule_ms: None,
            keys_if_undelivered: Vec::new(),
            max_attempts: None,
            timeout_ms: None,
            created_by: None,
        }
    }

    /// Refuses out-of-range options with a message naming the limit.
    pub fn validate(&self) -> Result<()> {
        self.prepare(usize::MAX).map(|_| ())
    }

    /// Checks every option and the payload's size, and serializes the task for storage:
    /// the one place both enqueue paths (the queue's and KV atomic operations') go through.
    pub(crate) fn prepare(&self, max_payload_bytes: usize) -> Result<PreparedTask> {
        if self.kind.is_empty() || self.kind.len() > 64 {
            return Err(StorageError::invalid("kind must be 1 to 64 characters"));
        }
        if self.delay_ms > MAX_DELAY_MS {
            return Err(StorageError::invalid(format!(
                "delay_ms must be at most {MAX_DELAY_MS} (30 days)"
            )));
        }
        if let Some(schedule) = &self.backoff_schedule_ms
            && (schedule.len() > MAX_BACKOFF_ENTRIES
                || schedule.iter().any(|&ms| ms > MAX_BACKOFF_MS))
        {
            return Err(StorageError::invalid(format!(
                "backoff_schedule_ms takes at most {MAX_BACKOFF_ENTRIES} entries of at most {MAX_BACKOFF_MS} ms"
            )));
        }
        if self
            .max_attempts
            .is_some_and(|n| n == 0 || n > MAX_ATTEMPTS)
        {
            return Err(StorageError::invalid(format!(
                "max_attempts must be from 1 to {MAX_ATTEMPTS}"
            )));
        }
        if self
            .timeout_ms
            .is_some_and(|ms| ms == 0 || ms > MAX_TIMEOUT_MS)
        {
            return Err(StorageError::invalid(format!(
                "timeout_ms must be from 1 to {MAX_TIMEOUT_MS}"
            )));
        }
        let keys: Vec<String> = self
            .keys_if_undelivered
            .iter()
            .map(|k| Ok(URL_SAFE_NO_PAD.encode(key::encode(k)?)))
            .collect::<Result<_>>()?;
        let payload = json_text(&self.payload)?;
        if payload.len() > max_payload_bytes {
            return Err(StorageError::TooLarge(format!(
                "payload is {} bytes; the limit is {max_payload_bytes}",
                payload.len()
            )));
        }
        let backoff = self
            .backoff_schedule_ms
            .clone()
            .unwrap_or_else(|| DEFAULT_BACKOFF_MS.to_vec());
        let max_attempts = self
            .max_attempts
            .unwrap_or_else(|| u32::try_from(backoff.len() + 1).unwrap_or(MAX_ATTEMPTS));
        Ok(PreparedTask {
            kind: self.kind.clone(),
            payload,
            max_attempts,
            backoff: json_text(&Value::from(backoff))?,
            keys: json_text(&Value::from(keys))?,
            timeout_ms: to_i64(self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
            delay_ms: to_i64(self.delay_ms),
            created_by: self.created_by.clone(),
        })
    }
}

/// A checked task, serialized as it is stored.
#[derive(Debug, Clone)]
pub(crate) struct PreparedTask {
    kind: String,
    payload: String,
    max_attempts: u32,
    backoff: String,
    keys: String,
    timeout_ms: i64,
    delay_ms: i64,
    created_by: Option<String>,
}

/// A task to enqueue, as both HTTP faces take it (`POST /api/queue/tasks`, and the
/// `enqueues` of `POST /api/kv/atomic`): keys in their JSON form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "http",
    "payload": {"method": "PUT", "path": "/api/kv/entries/greetings/hello",
                "headers": {"content-type": "application/json"}, "body": {"value": "world"}},
    "delay_ms": 0,
    "backoff_schedule_ms": [1000, 5000, 10000],
    "keys_if_undelivered": [["failed", "greeting"]]
}))]
pub struct TaskSpec {
    /// The task kind; `http` (the default) calls one of this instance's own `/api` routes.
    pub kind: Option<String>,
    /// The kind's payload.
    #[schema(value_type = TaskPayloadJson)]
    pub payload: Value,
    /// Wait this long before the first attempt (at most 30 days).
    #[serde(default)]
    #[schema(maximum = 2_592_000_000_u64)]
    pub delay_ms: u64,
    /// Waits between attempts, in ms (at most 20, each at most a day); default Deno's
    /// `[100, 1000, 5000, 30000, 60000]`.
    #[schema(max_items = 20)]
    pub backoff_schedule_ms: Option<Vec<u64>>,
    /// KV keys (JSON form) that receive the payload if the task dies.
    #[serde(default)]
    #[schema(value_type = Vec<KeyJson>)]
    pub keys_if_undelivered: Vec<Value>,
    /// Attempts in all; default one more than the backoff schedule's entries.
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<u32>,
    /// How long one attempt may run, in ms (default 60000, at most an hour).
    #[schema(minimum = 1, maximum = 3_600_000)]
    pub timeout_ms: Option<u64>,
}

/// The OpenAPI schema of a task's payload: one of the built-in kinds' payloads, whose
/// schemas the queue's router documents (the store knows no kind).
pub struct TaskPayloadJson;

impl utoipa::PartialSchema for TaskPayloadJson {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name("HttpTaskPayload"))
            .item(utoipa::openapi::Ref::from_schema_name("WebhookPayload"))
            .description(Some(
                "The kind's payload: `http` takes an HttpTaskPayload, `webhook` a WebhookPayload",
            ))
            .into()
    }
}

impl ToSchema for TaskPayloadJson {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("TaskPayload")
    }
}

impl TaskSpec {
    /// The task it describes, enqueued by `created_by`; a bad key is named by its place,
    /// `at` first (`enqueues[0].keys_if_undelivered[1]`).
    pub fn into_task(self, at: &str, created_by: Option<String>) -> Result<NewTask> {
        let keys_if_undelivered = self
            .keys_if_undelivered
            .iter()
            .enumerate()
            .map(|(i, k)| key_at(k, &format!("{at}keys_if_undelivered[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        Ok(NewTask {
            kind: self.kind.unwrap_or_else(|| DEFAULT_KIND.to_owned()),
            payload: self.payload,
            delay_ms: self.delay_ms,
            backoff_schedule_ms: self.backoff_schedule_ms,
            keys_if_undelivered,
            max_attempts: self.max_attempts,
            timeout_ms: self.timeout_ms,
            created_by,
        })
    }
}

/// A task as stored.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: i64,
    pub kind: String,
    pub payload: Value,
    pub status: Status,
    pub attempts: u32,
    pub max_attempts: u32,
    /// When the next attempt may start (ms since the epoch).
    pub run_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_error: Option<String>,
    pub result: Option<Value>,
    /// Who enqueued it (a token fingerprint), if the instance has tokens.
    pub created_by: Option<String>,
}

/// Wakes the dispatch loop when there is new work; shared with the KV store, whose atomic
/// operations can enqueue.
#[derive(Clone, Default)]
pub struct QueueSignal(Arc<Notify>);

impl QueueSignal {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    pub async fn woken(&self) {
        self.0.notified().await;
    }
}

pub(crate) fn json_text(v: &Value) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StorageError::invalid(format!("not serialisable: {e}")))
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Inserts a prepared task inside the caller's write transaction; answers its id.
pub(crate) fn insert_task(conn: &Connection, now: i64, task: &PreparedTask) -> Result<i64> {
    let id = conn
        .prepare_cached(
            "INSERT INTO tasks (kind, payload, status, attempts, max_attempts, backoff_ms,
               keys_if_undelivered, timeout_ms, run_at, created_at, updated_at, created_by)
             VALUES (?1, ?2, 'pending', 0, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9) RETURNING id",
        )?
        .query_row(
            params![
                task.kind,
                task.payload,
                task.max_attempts,
                task.backoff,
                task.keys,
                task.timeout_ms,
                now.saturating_add(task.delay_ms),
                now,
                task.created_by,
            ],
            |r| r.get(0),
        )?;
    Ok(id)
}
