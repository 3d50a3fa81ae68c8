//! `GET /metrics`: the instance's metrics for an orchestrator, in the Prometheus text format
//! (OpenMetrics when `Accept` asks). At the root, not under `/api`, where every scraper
//! looks. With `TOOLSHED_METRICS_TOKEN` it takes that token instead of an API token; with
//! `TOOLSHED_METRICS_ADDR` it is served on that address instead (see `server.rs`).
//!
//! Besides what other code records as it goes (HTTP, LLM, url2text), a scrape reads the
//! queue and the store: tasks by state, the oldest due task's wait, attempts by outcome,
//! the database's size on disk.

mod handlers;
mod scrape;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::platform::state::AppState;

pub use handlers::scrape_router;
pub use scrape::Scrape;

/// The route on the API's listener (none when metrics have a listener of their own).
pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    if state.config.metrics_addr.is_some() {
        return OpenApiRouter::new();
    }
    OpenApiRouter::new()
        .routes(routes!(handlers::metrics))
        .with_state(Scrape::register(state))
}
