//! THE ROOT APP: mounts every service (each owns its paths under `/api/<service>`) and wraps
//! them in the common layers.
//! It routes and logs; everything else lives in the services.

use std::sync::Arc;

use crate::middlewares::timeout::{Timeout, TimeoutLayer};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower::util::Either;
use tower::{Layer, ServiceBuilder};
use tower_http::cors::Cors;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::env::Config;
use crate::middlewares::access::{AccessCheck, AccessLayer};
use crate::middlewares::catch_panic::{CatchPanic, CatchPanicLayer};
use crate::middlewares::logging::{RequestLog, RequestLogLayer};
use crate::middlewares::route_templates::RouteTemplates;
use crate::platform::fallback;
use crate::platform::log_format::RequestLineSink;
use crate::platform::openapi::{self, ApiDoc};
use crate::platform::outbound::Outbound;
use crate::platform::rate_limit::RateLimit;
use crate::platform::state::{AppHandle, AppState};
use crate::routes;
use crate::storage::Store;
use crate::storage::worker::Workers;

/// The whole application as one service: the router inside the common layers.
pub type App = RequestLog<CatchPanic<Either<Cors<Guarded>, Guarded>>>;
/// Access control and what it guards.
type Guarded = AccessCheck<Timeout<<DefaultBodyLimit as Layer<Router>>::Service>>;

/// A service could not start (its settings or files are wrong); the program stops.
#[derive(Debug, thiserror::Error)]
#[error("{service}: {message}")]
pub struct StartError {
    pub service: &'static str,
    pub message: String,
}

/// Builds the whole application for the given state: each service builds its own state
/// here (and may refuse to start), then the common layers wrap them all.
pub fn build(state: AppState, request_lines: RequestLineSink) -> Result<App, StartError> {
    let llm = routes::ai::llm::router(&state).map_err(|message| StartError {
        service: "llm",
        message,
    })?;
    let attestation = routes::attestation::router(&state).map_err(|message| StartError {
        service: "attestation",
        message,
    })?;
    let data = routes::data::router(&state).map_err(|message| StartError {
        service: "data",
        message,
    })?;
    let (api, spec) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::health::router())
        .merge(routes::kv::router(&state))
        .merge(routes::queue::router(&state))
        .merge(routes::ai::url2text::router(&state))
        .merge(routes::ai::img::router(&state))
        .merge(routes::ai::transcribe::router(&state))
        .merge(llm)
        .merge(attestation)
        .merge(data)
        .merge(routes::profile::router())
        .merge(routes::metrics::router(&state))
        .merge(routes::admin::router())
        .split_for_parts();
    // Every service route is in the spec, under the path it was routed with.
    let templates = RouteTemplates::new(
        spec.paths
            .paths
            .keys()
            .map(String::as_str)
            .chain(openapi::PATHS),
    );
    let config = state.config.clone();
    Ok(with_common_layers(
        api.merge(openapi::router(spec)),
        state,
        &config,
        templates,
        request_lines,
    ))
}

/// The task kinds this instance runs, one line per kind. Kinds that call services do so
/// over HTTP (in-process), through `app`; kinds that call the outside world go through the
/// guarded `outbound` client.
pub fn register_task_kinds(
    workers: &mut Workers,
    config: &Config,
    app: &AppHandle,
    outbound: &Outbound,
    store: &Store,
) {
    use routes::admin::backup_task;
    use routes::queue::{http_task, webhook_task};
    let concurrency = config.queue_concurrency;
    workers.register(
        http_task::KIND,
        concurrency,
        http_task::HttpTask::new(app.clone()),
    );
    let webhooks = webhook_task::WebhookTask::new(
        outbound.clone(),
        config.named_secrets.clone(),
        config.webhook_secret.clone(),
    );
    workers.register(webhook_task::KIND, concurrency, webhooks);
    // One at a time: a second would wait for the first anyway. The instance's own: a
    // caller with an API token must not be able to push good backups out of the window.
    workers.register_own(
        backup_task::KIND,
        1,
        backup_task::BackupTask::new(store.backups.clone()),
    );
}

/// The fallbacks, and the layers every request goes through: request id and request log,
/// panic net, CORS (when configured), self-fetch refusal, access control and rate limit (`middlewares::access`), time limit (until the answer starts; streams are not cut) and axum's default
/// body limit (routes may lower or raise it with `RouteBodyLimit`). The layers wrap the
/// whole router, not each route: axum clones a layered route's box for every request.
/// `templates` names each path's route for the log.
pub fn with_common_layers(
    router: Router<AppState>,
    state: AppState,
    config: &Config,
    templates: RouteTemplates,
    request_lines: RequestLineSink,
) -> App {
    let templates = Arc::new(templates);
    // Debug builds, and so every test, check the table against axum's own matching.
    #[cfg(debug_assertions)]
    let router = router.route_layer(axum::middleware::map_request_with_state(
        templates.clone(),
        crate::middlewares::route_templates::check_against_router,
    ));
    let access = state.access.clone();
    let http_metrics = Arc::new(state.metrics.http.clone());
    let outbound = state.outbound.clone();
    let router = router
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed)
        .with_state(state);
    ServiceBuilder::new()
        .layer(RequestLogLayer::new(templates, request_lines, http_metrics))
        .layer(CatchPanicLayer)
        .option_layer(crate::middlewares::cors::layer(&config.cors_origins))
        .layer(AccessLayer {
            access,
            outbound,
            rate_limit: RateLimit::new(config.rate_limit_per_minute, config.rate_limit_burst)
                .map(Arc::new),
        })
        .layer(TimeoutLayer {
            limit: config.request_timeout_s,
        })
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .service(router)
}
