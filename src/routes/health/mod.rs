//! `/api/health`: is the process up (`/`), and can it do its work (`/ready`)?

mod handlers;
mod schemas;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::platform::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::health))
        .routes(routes!(handlers::ready))
}
