//! The queue service's request and response bodies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::storage::task::{Status, Task};

/// `{method, path, headers, body}` of an `http` task.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpTaskPayload {
    /// GET, POST, PUT, PATCH, DELETE …
    pub method: String,
    /// A path of this instance under `/api/`, with its query string if any.
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as JSON when present.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub body: Option<Value>,
}

/// The answer to an enqueue: the task is durable.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 17, "status": "pending", "run_at": 1795487569255_i64}))]
pub struct Enqueued {
    pub id: i64,
    pub status: &'static str,
    /// When the first attempt may start (ms since the epoch).
    pub run_at: i64,
}

/// A task as stored.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 17, "kind": "http", "status": "succeeded", "attempts": 1, "max_attempts": 6,
    "run_at": 1795487569255_i64, "created_at": 1795487569255_i64, "updated_at": 1795487569260_i64,
    "last_error": null,
    "result": {"status": 200, "headers": {"content-type": "application/json"}, "body": {"versionstamp": "00000000000000090000"}},
    "payload": {"method": "PUT", "path": "/api/kv/entries/greetings/hello", "body": {"value": "world"}},
    "created_by": "tok_1a2b3c4d"
}))]
pub struct TaskBody {
    pub id: i64,
    pub kind: String,
    /// pending | running | succeeded | retrying | dead
    pub status: &'static str,
    pub attempts: u32,
    pub max_attempts: u32,
    /// When the next attempt may start (ms since the epoch).
    pub run_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_error: Option<String>,
    /// For `http` tasks: `{status, headers, body}` of the last answer.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Who enqueued it: the fingerprint of the caller's API token (`tok_` and eight hex
    /// digits), whose rights the task runs with; `null` on an instance without tokens.
    pub created_by: Option<String>,
}

impl From<Task> for TaskBody {
    fn from(t: Task) -> Self {
        TaskBody {
            id: t.id,
            kind: t.kind,
            status: t.status.as_str(),
            attempts: t.attempts,
            max_attempts: t.max_attempts,
            run_at: t.run_at,
            created_at: t.created_at,
            updated_at: t.updated_at,
            last_error: t.last_error,
            result: t.result,
            payload: t.payload,
            created_by: t.created_by,
        }
    }
}

/// Query of `GET /api/queue/tasks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only tasks with this status.
    #[param(inline)]
    pub status: Option<StatusName>,
    /// Tasks per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// From the previous page's `cursor`.
    #[param(pattern = "^[0-9]*$")]
    pub cursor: Option<String>,
}

/// A task's status, as a filter.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusName {
    Pending,
    Running,
    Succeeded,
    Retrying,
    Dead,
}

impl From<StatusName> for Status {
    fn from(name: StatusName) -> Status {
        match name {
            StatusName::Pending => Status::Pending,
            StatusName::Running => Status::Running,
            StatusName::Succeeded => Status::Succeeded,
            StatusName::Retrying => Status::Retrying,
            StatusName::Dead => Status::Dead,
        }
    }
}

/// A page of tasks, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    pub tasks: Vec<TaskBody>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub cursor: Option<String>,
}

/// Counts per status and the wait of the oldest due task.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"counts": {"pending": 2, "running": 1, "succeeded": 40, "retrying": 0, "dead": 1}, "total": 44, "oldest_pending_age_ms": 12}))]
pub struct StatsBody {
    pub counts: BTreeMap<&'static str, u64>,
    pub total: u64,
    /// How long the oldest due task has waited to start (0 when none is waiting).
    pub oldest_pending_age_ms: i64,
}
