//! `/api/queue/schedules`: cron schedules that enqueue a task at each tick — a thin face
//! over `storage::schedule`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::{AppJson, AppPath, Caller};
use crate::platform::state::AppState;
use crate::storage::schedule::{Schedule, ScheduleSpec, valid_name};
use crate::storage::task::TaskSpec;

/// Names this instance keeps for its own schedules (set by settings, not over the API).
pub const RESERVED_PREFIX: &str = "toolshed.";

/// `PUT /api/queue/schedules/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "cron": "30 2 * * *",
    "timezone": "Europe/Berlin",
    "task": {"kind": "http", "payload": {"method": "POST", "path": "/api/kv/atomic", "body": {"sets": []}}},
    "catch_up": true
}))]
pub struct ScheduleRequest {
    /// Five fields (minute hour day-of-month month day-of-week) or `@hourly`, `@daily`,
    /// `@weekly`, `@monthly`, `@yearly`.
    pub cron: String,
    /// The IANA time zone the pattern is read in (default `UTC`); daylight saving follows
    /// the Open Cron Pattern Specification.
    pub timezone: Option<String>,
    /// The task enqueued at each tick, as `POST /api/queue/tasks` takes it.
    #[schema(value_type = TaskSpec)]
    pub task: Value,
    /// After downtime that missed ticks, run once (default true); false: only count them.
    pub catch_up: Option<bool>,
}

/// A schedule and what became of it. Times are ms since the epoch.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleBody {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    #[schema(value_type = Object)]
    pub task: Value,
    pub catch_up: bool,
    /// Who made it (a token fingerprint): its tasks run with that caller's rights.
    pub created_by: Option<String>,
    pub next_run_at: i64,
    pub last_run_at: Option<i64>,
    pub last_task_id: Option<i64>,
    /// The last task's status while it is kept (pending, running, succeeded, retrying, dead).
    pub last_task_status: Option<String>,
    /// Tasks enqueued.
    pub runs: u64,
    /// Ticks skipped because the previous run's task had not finished.
    pub skipped: u64,
    /// Ticks that passed while the instance was down and were not run.
    pub missed: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Schedule> for ScheduleBody {
    fn from(s: Schedule) -> Self {
        ScheduleBody {
            name: s.name,
            cron: s.cron,
            timezone: s.timezone,
            task: s.task,
            catch_up: s.catch_up,
            created_by: s.created_by,
            next_run_at: s.next_run_at,
            last_run_at: s.last_run_at,
            last_task_id: s.last_task_id,
            last_task_status: s.last_task_status,
            runs: s.runs,
            skipped: s.skipped,
            missed: s.missed,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

fn checked_name(name: &str) -> Result<&str, AppError> {
    if !valid_name(name) {
        return Err(AppError::bad_request(format!(
            "schedule name {name:?}: 1 to 64 letters, digits, '.', '_' or '-'"
        )));
    }
    Ok(name)
}

fn writable_name(name: &str) -> Result<&str, AppError> {
    let name = checked_name(name)?;
    if name.starts_with(RESERVED_PREFIX) {
        return Err(AppError::bad_request(format!(
            "schedule {name:?} is this instance's own (names starting with {RESERVED_PREFIX:?} \
             are set by settings such as TOOLSHED_BACKUP_SCHEDULE)"
        )));
    }
    Ok(name)
}

/// Create or replace a schedule. Replacing keeps its history; the next tick stays unless
/// the pattern or zone changed.
#[utoipa::path(
    put,
    path = "/api/queue/schedules/{name}",
    tag = "queue",
    params(("name" = String, Path, description = "1 to 64 letters, digits, '.', '_' or '-'")),
    request_body = ScheduleRequest,
    responses(
        (status = 200, description = "Replaced", body = ScheduleBody),
        (status = 201, description = "Created", body = ScheduleBody),
        (status = 400, description = "Bad name, pattern, zone or task", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Body of the wrong shape", body = ErrorBody),
    )
)]
pub async fn put_schedule(
    State(state): State<AppState>,
    Caller(caller): Caller,
    AppPath(name): AppPath<String>,
    AppJson(request): AppJson<ScheduleRequest>,
) -> Result<(StatusCode, Json<ScheduleBody>), AppError> {
    let name = writable_name(&name)?;
    let spec: TaskSpec = serde_json::from_value(request.task.clone())
        .map_err(|e| AppError::bad_request(format!("task: {e}")))?;
    let task = spec.into_task("task.", caller.clone())?;
    state
        .workers
        .validate(&task.kind, &task.payload)
        .map_err(|e| AppError::bad_request(format!("task: {e}")))?;
    let spec = ScheduleSpec {
        cron: request.cron,
        timezone: request.timezone.unwrap_or_else(|| "UTC".to_owned()),
        task: request.task,
        catch_up: request.catch_up.unwrap_or(true),
    };
    let (schedule, created) = state.store.schedules.put(name, spec, caller).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(schedule.into())))
}

/// Every schedule, by name, with its next and last run.
#[utoipa::path(
    get,
    path = "/api/queue/schedules",
    tag = "queue",
    responses((status = 200, description = "The schedules", body = Vec<ScheduleBody>))
)]
pub async fn list_schedules(
    State(state): State<AppState>,
) -> Result<Json<Vec<ScheduleBody>>, AppError> {
    let schedules = state.store.schedules.list().await?;
    Ok(Json(schedules.into_iter().map(Into::into).collect()))
}

/// Read one schedule.
#[utoipa::path(
    get,
    path = "/api/queue/schedules/{name}",
    tag = "queue",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleBody),
        (status = 400, description = "Not a schedule name", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    )
)]
pub async fn get_schedule(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
) -> Result<Json<ScheduleBody>, AppError> {
    let name = checked_name(&name)?;
    match state.store.schedules.get(name).await? {
        Some(schedule) => Ok(Json(schedule.into())),
        None => Err(AppError::not_found(format!("no schedule {name:?}"))),
    }
}

/// Delete a schedule (the tasks it enqueued stay).
#[utoipa::path(
    delete,
    path = "/api/queue/schedules/{name}",
    tag = "queue",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a schedule name, or this instance's own", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
    )
)]
pub async fn delete_schedule(
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
) -> Result<StatusCode, AppError> {
    let name = writable_name(&name)?;
    if state.store.schedules.delete(name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found(format!("no schedule {name:?}")))
    }
}
