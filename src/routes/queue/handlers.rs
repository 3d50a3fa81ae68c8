use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::schemas::{Enqueued, ListQuery, StatsBody, TaskBody, TaskPage};
use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::{AppJson, AppPath, AppQuery, Caller};
use crate::platform::state::AppState;
use crate::storage::task::{Status, TaskSpec};

/// The 400 of a task id that is not a 64-bit whole number.
const BAD_ID: &str = "The id is not a 64-bit whole number";

const MAX_LIST_LIMIT: usize = 1000;

fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse::<i64>()
        .map_err(|_| AppError::bad_request(format!("task id must be a whole number, got {raw:?}")))
}

/// Enqueue a task; answered once it is durable.
#[utoipa::path(
    post,
    path = "/api/queue/tasks",
    tag = "queue",
    request_body = TaskSpec,
    responses(
        (status = 202, description = "Accepted and durable", body = Enqueued),
        (status = 400, description = "Unknown kind, bad payload or option", body = ErrorBody),
        (status = 413, description = "Payload over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Body of the wrong shape", body = ErrorBody),
    )
)]
pub async fn enqueue(
    State(state): State<AppState>,
    Caller(caller): Caller,
    AppJson(spec): AppJson<TaskSpec>,
) -> Result<(StatusCode, Json<Enqueued>), AppError> {
    let task = spec.into_task("", caller)?;
    state
        .workers
        .validate(&task.kind, &task.payload)
        .map_err(AppError::bad_request)?;
    let task = state.store.queue.enqueue(task).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Enqueued {
            id: task.id,
            status: task.status.as_str(),
            run_at: task.run_at,
        }),
    ))
}

/// Read one task: status, attempts, last error and result.
#[utoipa::path(
    get,
    path = "/api/queue/tasks/{id}",
    tag = "queue",
    params(("id" = i64, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task", body = TaskBody),
        (status = 400, description = BAD_ID, body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
    )
)]
pub async fn get_task(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Json<TaskBody>, AppError> {
    let id = parse_id(&id)?;
    state
        .store
        .queue
        .get(id)
        .await?
        .map(|t| Json(t.into()))
        .ok_or_else(|| AppError::not_found(format!("no task {id}")))
}

/// List tasks, oldest first, optionally of one status.
#[utoipa::path(
    get,
    path = "/api/queue/tasks",
    tag = "queue",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tasks", body = TaskPage),
        (status = 400, description = "Bad status, limit or cursor", body = ErrorBody),
    )
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<ListQuery>,
) -> Result<Json<TaskPage>, AppError> {
    let status = query.status.map(Status::from);
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(AppError::bad_request(format!(
            "limit must be from 1 to {MAX_LIST_LIMIT}"
        )));
    }
    let after = match query.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse::<i64>()
            .map_err(|_| AppError::bad_request("cursor is not valid"))?,
    };
    let mut tasks = state.store.queue.list(status, after, limit + 1).await?;
    let cursor = if tasks.len() > limit {
        tasks.truncate(limit);
        tasks.last().map(|t| t.id.to_string())
    } else {
        None
    };
    Ok(Json(TaskPage {
        tasks: tasks.into_iter().map(TaskBody::from).collect(),
        cursor,
    }))
}

/// Put a dead task back in the queue with fresh attempts.
#[utoipa::path(
    post,
    path = "/api/queue/tasks/{id}/retry",
    tag = "queue",
    params(("id" = i64, Path, description = "The task's id")),
    responses(
        (status = 200, description = "Pending again", body = TaskBody),
        (status = 400, description = BAD_ID, body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task is not dead", body = ErrorBody),
    )
)]
pub async fn retry_task(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Json<TaskBody>, AppError> {
    let task = state.store.queue.retry(parse_id(&id)?).await?;
    Ok(Json(task.into()))
}

/// Delete a task that is not running.
#[utoipa::path(
    delete,
    path = "/api/queue/tasks/{id}",
    tag = "queue",
    params(("id" = i64, Path, description = "The task's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = BAD_ID, body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task is running", body = ErrorBody),
    )
)]
pub async fn delete_task(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, AppError> {
    state.store.queue.delete(parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Counts per status and the wait of the oldest due task.
#[utoipa::path(
    get,
    path = "/api/queue/stats",
    tag = "queue",
    responses((status = 200, description = "Queue statistics", body = StatsBody))
)]
pub async fn stats(State(state): State<AppState>) -> Result<Json<StatsBody>, AppError> {
    let stats = state.store.queue.stats().await?;
    Ok(Json(StatsBody {
        total: stats.counts.iter().map(|(_, n)| n).sum(),
        counts: stats
            .counts
            .into_iter()
            .map(|(s, n)| (s.as_str(), n))
            .collect(),
        oldest_pending_age_ms: stats.oldest_pending_age_ms,
    }))
}
