use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::scrape::Scrape;
use crate::middlewares::access::METRICS_PATH;
use crate::platform::auth::Verdict;
use crate::platform::error::{AppError, ErrorBody};
use crate::platform::metrics::Format;
use crate::platform::state::AppState;

/// Metrics for an orchestrator: Prometheus text, or OpenMetrics when `Accept` asks.
///
/// Takes `TOOLSHED_METRICS_TOKEN` when it is set, an API token otherwise. No label holds a
/// path, key, URL, prompt or token: routes are templates, unmatched paths count as
/// `route="unmatched"`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Every metric", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "No valid metrics (or API) token", body = ErrorBody),
    )
)]
pub async fn metrics(State(scrape): State<Scrape>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
    match scrape.render(format).await {
        Ok(text) => (
            [(
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            )],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Refuses a scrape without the metrics token, when one is set.
async fn require_metrics_token(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match app.access.metrics_verdict(request.headers()) {
        None | Some(Verdict::Token(_)) => next.run(request).await,
        Some(_) => {
            let mut response = AppError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the metrics token as Authorization: Bearer <token>",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// The whole app of the metrics listener (`TOOLSHED_METRICS_ADDR`): `/metrics` alone.
pub fn scrape_router(app: &AppState) -> Router {
    let scrape = Scrape::register(app);
    Router::new()
        .route(METRICS_PATH, get(metrics))
        .with_state(scrape)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            require_metrics_token,
        ))
}
