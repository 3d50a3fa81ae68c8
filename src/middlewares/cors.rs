//! CORS, off unless `TOOLSHED_CORS_ORIGINS` names the origins whose web pages may call the
//! API (tower-http's layer). It sits outside access control: a preflight carries no token
//! and is answered here, and a refusal (401, 429) carries the CORS headers so the page can
//! read why.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The layer for `origins` (`*` alone for any); `None` when there are none.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("anthropic-version"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("x-cache"),
                HeaderName::from_static("x-model"),
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
            ])
            .max_age(Duration::from_secs(600)),
    )
}
