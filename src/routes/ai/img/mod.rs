//! `/api/ai/img`: images from a prompt through real providers (fal.ai's queue API, OpenAI's
//! Images API), kept as content-addressed blobs in the data directory and cached by their
//! normalized parameters, so a repeat is served from disk at once; generation can also run
//! as a durable background job.
//!
//! A request flows: `handlers` reads it, `params` normalizes it, `generate` answers from the
//! cache or has a provider (`providers/`) make it once however many ask, then keeps it.

mod generate;
mod handlers;
mod openai_face;
mod params;
mod providers;
mod schemas;
mod state;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::middlewares::body_limit::RouteBodyLimit;
use crate::platform::state::AppState;

pub fn router(app: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::get_image, handlers::post_image))
        .routes(routes!(handlers::file))
        .routes(routes!(handlers::create_job))
        .routes(routes!(handlers::job))
        .routes(routes!(openai_face::generations))
        .layer(RouteBodyLimit(app.config.body_limit_bytes))
        .with_state(state::Img::new(app))
}
