//! `/api/kv`: the embedded key-value store over HTTP — a thin face over `storage::kv`.

mod handlers;
mod key_path;
mod schemas;

use axum::extract::DefaultBodyLimit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::platform::state::AppState;

/// Values may be up to 16 MiB (`TOOLSHED_KV_MAX_VALUE_BYTES`), base64 or JSON-wrapped;
/// the store enforces the configured value limit itself.
const BODY_LIMIT: usize = 24 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            handlers::get_entry,
            handlers::put_entry,
            handlers::delete_entry
        ))
        .routes(routes!(handlers::list, handlers::list_typed))
        .routes(routes!(handlers::get_many))
        .routes(routes!(handlers::atomic))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
