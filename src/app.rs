//! THE ROOT APP: mounts every service (each owns its paths under `/api/<service>`) and wraps
//! them in the common layers.
//! It routes and logs; everything else lives in the services.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower::ServiceBuilder;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::env::Config;
use crate::middlewares::{catch_panic, logging, timeout};
use crate::platform::fallback;
use crate::platform::openapi::{self, ApiDoc};
use crate::platform::state::{AppHandle, AppState};
use crate::routes;
use crate::storage::worker::Workers;

/// Builds the whole application for the given state.
pub fn build(state: AppState) -> Router {
    let config = state.config.clone();
    let (api, spec) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::health::router())
        .merge(routes::kv::router())
        .merge(routes::queue::router())
        .merge(routes::ai::url2text::router())
        .merge(routes::ai::llm::router())
        .split_for_parts();

    with_common_layers(api.merge(openapi::router(spec)), &config).with_state(state)
}

/// The task kinds this instance runs, one line per kind. Kinds that call services do so
/// over HTTP (in-process), through `app`.
pub fn register_task_kinds(workers: &mut Workers, config: &Config, app: &AppHandle) {
    workers.register(
        routes::queue::http_task::KIND,
        config.queue_concurrency,
        routes::queue::http_task::HttpTask::new(app.clone()),
    );
}

/// The fallbacks and layers every route gets: request id and request log, panic net, time
/// limit and body limit (routes may lower or raise it with their own `DefaultBodyLimit`).
pub fn with_common_layers(router: Router<AppState>, config: &Config) -> Router<AppState> {
    router
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(logging::RequestLogLayer)
                .layer(catch_panic::CatchPanicLayer)
                .layer(timeout::TimeoutLayer {
                    limit: config.request_timeout,
                })
                .layer(DefaultBodyLimit::max(config.body_limit_bytes)),
        )
}
