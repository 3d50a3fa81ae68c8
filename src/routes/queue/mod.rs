//! `/api/queue`: the durable task queue over HTTP — a thin face over `storage::queue` — its
//! cron schedules (`storage::schedule`), and the built-in task kinds: `http` (this instance's own routes) and `webhook` (the outside
//! world).

mod handlers;
pub mod http_task;
pub mod schedules;
mod schemas;
pub mod webhook_task;

use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::middlewares::body_limit::RouteBodyLimit;
use crate::platform::state::AppState;

/// Room for a task's wrapping around its payload (options, keys, whitespace).
const WRAPPING_BYTES: usize = 64 * 1024;

pub fn router(app: &AppState) -> OpenApiRouter<AppState> {
    // A payload may be as large as a KV value (`TOOLSHED_KV_MAX_VALUE_BYTES`).
    let config = &app.config;
    let limit = config
        .body_limit_bytes
        .max(config.kv_max_value_bytes + WRAPPING_BYTES);
    let mut router = OpenApiRouter::new()
        .routes(routes!(handlers::enqueue, handlers::list_tasks))
        .routes(routes!(handlers::get_task, handlers::delete_task))
        .routes(routes!(handlers::retry_task))
        .routes(routes!(handlers::stats))
        .routes(routes!(schedules::list_schedules))
        .routes(routes!(
            schedules::put_schedule,
            schedules::get_schedule,
            schedules::delete_schedule
        ))
        .layer(RouteBodyLimit(limit));
    describe_payloads(router.get_openapi_mut());
    router
}

/// The payloads of the built-in kinds, which `TaskSpec.payload` names.
fn describe_payloads(openapi: &mut utoipa::openapi::OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    for (name, schema) in [
        (
            schemas::HttpTaskPayload::name(),
            schemas::HttpTaskPayload::schema(),
        ),
        (
            webhook_task::WebhookPayload::name(),
            webhook_task::WebhookPayload::schema(),
        ),
    ] {
        components.schemas.insert(name.into_owned(), schema);
    }
}
