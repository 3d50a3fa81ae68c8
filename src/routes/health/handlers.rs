use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use super::schemas::{Health, Readiness, ReadinessChecks};
use crate::platform::error::ErrorBody;
use crate::platform::state::AppState;
use crate::storage::StorageError;
use crate::storage::db::now_ms;

/// An orchestrator's probe must get an answer quickly, even from a stuck disk.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Liveness: answers whenever the process does.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "health",
    responses((status = 200, description = "The process is up", body = Health))
)]
pub async fn health(State(state): State<AppState>) -> Response {
    let health = Health {
        status: "OK",
        timestamp: now_ms(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.started_at.elapsed().as_secs_f64(),
    };
    let mut response = Response::new(Body::from(health.to_json()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Readiness: 200 when the embedded store accepts a durable write, 503 with the reason when not.
#[utoipa::path(
    get,
    path = "/api/health/ready",
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "A dependency is failing", body = ErrorBody,
         example = json!({"error": "storage is not writable: database or disk is full", "code": "not_ready"}))
    )
)]
pub async fn ready(
    State(state): State<AppState>,
) -> Result<Json<Readiness>, crate::platform::error::AppError> {
    let probe = tokio::time::timeout(PROBE_TIMEOUT, state.store.check_writable()).await;
    match probe.unwrap_or(Err(StorageError::Commit(format!(
        "no answer within {} s",
        PROBE_TIMEOUT.as_secs()
    )))) {
        Ok(()) => Ok(Json(Readiness {
            status: "ready",
            checks: ReadinessChecks {
                storage: "ok".into(),
            },
        })),
        Err(e) => Err(crate::platform::error::AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("storage is not writable: {e}"),
        )),
    }
}
