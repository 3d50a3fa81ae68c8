//! `/api/admin/backups`: take, list, download and delete backups of the data directory.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::AppPath;
use crate::platform::state::AppState;
use crate::storage::backup::{BackupStatus, valid_id};

/// Seconds a caller is asked to wait before looking at a running backup again.
const RETRY_AFTER_S: u64 = 2;

fn checked_id(raw: &str) -> Result<&str, AppError> {
    if valid_id(raw) {
        Ok(raw)
    } else {
        Err(AppError::bad_request(format!(
            "a backup id is its UTC time such as 20261203T081500.123Z, got {raw:?}"
        )))
    }
}

/// The one backup `id` names, finished; 404/409 otherwise.
async fn finished(state: &AppState, id: &str) -> Result<BackupStatus, AppError> {
    let status = state
        .store
        .backups
        .status(id)
        .await
        .ok_or_else(|| AppError::not_found(format!("no backup {id}")))?;
    match status.state {
        "done" => Ok(status),
        "running" => Err(
            AppError::conflict(format!("backup {id} is still being written"))
                .with_retry_after(RETRY_AFTER_S),
        ),
        _ => Err(AppError::not_found(format!(
            "backup {id} failed: {}",
            status.error.as_deref().unwrap_or("unknown error")
        ))),
    }
}

/// Start a backup of the data directory (database snapshot, blobs, instance key); answers
/// at once. While one is running, answers that one.
#[utoipa::path(
    post,
    path = "/api/admin/backups",
    tag = "admin",
    responses(
        (status = 202, description = "Started (or already running): follow it in the list", body = BackupStatus,
         headers(("location" = String, description = "Where the archive will be"))),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "This instance has no admin token", body = ErrorBody),
    )
)]
pub async fn start_backup(State(state): State<AppState>) -> Response {
    let id = state.store.backups.start();
    let location = format!("/api/admin/backups/{id}");
    let mut response = (StatusCode::ACCEPTED, Json(BackupStatus::running(id))).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The backups kept (oldest first), then one running and any that failed since the start.
#[utoipa::path(
    get,
    path = "/api/admin/backups",
    tag = "admin",
    responses(
        (status = 200, description = "Every backup with its state", body = Vec<BackupStatus>),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "This instance has no admin token", body = ErrorBody),
    )
)]
pub async fn list_backups(State(state): State<AppState>) -> Json<Vec<BackupStatus>> {
    Json(state.store.backups.list().await)
}

/// Download one backup: a tar archive (`toolshed restore --from` takes it). `Range` works;
/// `x-backup-sha256` and the `ETag` carry the archive's SHA-256.
#[utoipa::path(
    get,
    path = "/api/admin/backups/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The backup's id")),
    responses(
        (status = 200, description = "The archive", content_type = "application/x-tar",
         body = crate::platform::openapi::Binary),
        (status = 206, description = "The asked range of the archive", content_type = "application/x-tar",
         body = crate::platform::openapi::Binary),
        (status = 400, description = "Not a backup id", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 404, description = "No such backup, or it failed", body = ErrorBody),
        (status = 409, description = "Still being written", body = ErrorBody),
        (status = 416, description = "The range is outside the archive", body = ErrorBody),
    )
)]
pub async fn download_backup(
    State(state): State<AppState>,
    AppPath(raw): AppPath<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = checked_id(&raw)?;
    let status = finished(&state, id).await?;
    let sha256 = status.sha256.clone().unwrap_or_default();
    let mut request = Request::new(Body::empty());
    if let Some(range) = headers.get(header::RANGE) {
        request.headers_mut().insert(header::RANGE, range.clone());
    }
    let path = state.store.backups.archive_path(id);
    let served = match ServeFile::new(path).oneshot(request).await {
        Ok(served) => served,
        Err(never) => match never {},
    };
    match served.status() {
        StatusCode::NOT_FOUND => return Err(AppError::not_found(format!("no backup {id}"))),
        StatusCode::RANGE_NOT_SATISFIABLE => {
            return Err(AppError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!(
                    "the range is outside backup {id} ({} bytes)",
                    status.size.unwrap_or(0)
                ),
            ));
        }
        _ => {}
    }
    let mut response = served.map(Body::new);
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    for (name, value) in [
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"toolshed-backup-{id}.tar\""),
        ),
        (header::ETAG, format!("\"{sha256}\"")),
        (header::HeaderName::from_static("x-backup-sha256"), sha256),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response_headers.insert(name, value);
        }
    }
    Ok(response)
}

/// Delete one backup.
#[utoipa::path(
    delete,
    path = "/api/admin/backups/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The backup's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a backup id", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 404, description = "No such backup", body = ErrorBody),
        (status = 409, description = "Still being written", body = ErrorBody),
    )
)]
pub async fn delete_backup(
    State(state): State<AppState>,
    AppPath(raw): AppPath<String>,
) -> Result<StatusCode, AppError> {
    let id = checked_id(&raw)?;
    finished(&state, id).await?;
    match state.store.backups.delete(id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(AppError::not_found(format!("no backup {id}"))),
        Err(e) => Err(AppError::internal(format!(
            "cannot delete backup {id}: {e}"
        ))),
    }
}
