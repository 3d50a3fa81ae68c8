//! `/api/queue`: the durable task queue over HTTP — a thin face over `storage::queue` — and
//! the built-in `http` task kind.

mod handlers;
pub mod http_task;
mod schemas;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::platform::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::enqueue, handlers::list_tasks))
        .routes(routes!(handlers::get_task, handlers::delete_task))
        .routes(routes!(handlers::retry_task))
        .routes(routes!(handlers::stats))
}
