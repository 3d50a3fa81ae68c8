//! `/api/data`: the embedded fact database (`storage::facts`) over HTTP. `wire` speaks
//! synopsys' own protocol, so clients written for synopsys work unchanged (transact with
//! PATCH, store a query or a blob with PUT, read or subscribe with GET); `live` is the
//! server-sent-events subscription, `blob` serves stored bytes with ranges, `json_api` the
//! JSON conveniences with schemas. With `TOOLSHED_DATA_UPSTREAM` set, `proxy` forwards the
//! protocol to that synopsys server instead.

mod blob;
mod json_api;
mod live;
mod metrics;
mod proxy;
mod schemas;
mod wire;

use axum::middleware;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::middlewares::body_limit::RouteBodyLimit;
use crate::platform::state::AppState;

pub fn router(app: &AppState) -> Result<OpenApiRouter<AppState>, String> {
    metrics::register(app);
    let router = OpenApiRouter::new()
        .routes(routes!(wire::transact, wire::put, wire::options_root))
        .routes(routes!(wire::get, wire::options_item))
        .routes(routes!(json_api::transact))
        .routes(routes!(json_api::query))
        .routes(routes!(json_api::entity))
        .layer(RouteBodyLimit(app.config.data_max_body_bytes));
    Ok(match &app.config.data_upstream {
        Some(upstream) => {
            let proxy = proxy::Proxy::new(upstream, app)?;
            router.layer(middleware::from_fn_with_state(proxy, proxy::forward))
        }
        None => router,
    })
}
