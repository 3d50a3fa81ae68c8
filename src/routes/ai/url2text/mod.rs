//! `/api/ai/url2text`: any web page as clean Markdown (or text, or article HTML), read by
//! this instance itself — a confidential instance should not tell a third party every URL its
//! user reads. Fetching goes through the guarded outbound client (no internal addresses),
//! extraction through a Readability port, results through the embedded store's cache.

mod cache;
mod charset;
pub mod extract;
mod fetch;
mod handlers;
mod metrics;
mod schemas;
mod state;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::middlewares::body_limit::RouteBodyLimit;
use crate::platform::state::AppState;

pub fn router(app: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::read_query, handlers::read_post))
        .routes(routes!(handlers::read_path))
        .layer(RouteBodyLimit(app.config.body_limit_bytes))
        .with_state(state::Url2Text::new(app))
}
