//! `/api/queue`: the durable task queue over HTTP — a thin face over `storage::queue` — and
//! the built-in `http` task kind.

mod handlers;
pub mod http_task;
mod schemas;

use axum::extract::DefaultBodyLimit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::platform::state::AppState;

/// Room for a task's wrapping around its payload (options, keys, whitespace).
const WRAPPING_BYTES: usize = 64 * 1024;

pub fn router(app: &AppState) -> OpenApiRouter<AppState> {
    // A payload may be as large as a KV value (`TOOLSHED_KV_MAX_VALUE_BYTES`).
    let config = &app.config;
    let limit = config
        .body_limit_bytes
        .max(config.kv_max_value_bytes + WRAPPING_BYTES);
    OpenApiRouter::new()
        .routes(routes!(handlers::enqueue, handlers::list_tasks))
        .routes(routes!(handlers::get_task, handlers::delete_task))
        .routes(routes!(handlers::retry_task))
        .routes(routes!(handlers::stats))
        .layer(DefaultBodyLimit::max(limit))
}
