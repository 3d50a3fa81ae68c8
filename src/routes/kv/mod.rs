//! `/api/kv`: the embedded key-value store over HTTP — a thin face over `storage::kv`.

mod handlers;
mod key_path;
mod schemas;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, Schema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::middlewares::body_limit::RouteBodyLimit;

use crate::env::Config;
use crate::platform::state::AppState;

/// Room for a value's JSON wrapping (`{"value": …, "expire_in_ms": …}`, keys, whitespace).
const WRAPPING_BYTES: usize = 64 * 1024;

/// The largest body a KV route takes: the default limit, or one value at the value limit
/// with its wrapping, whichever is larger. The store checks the value itself.
fn body_limit(config: &Config) -> usize {
    config
        .body_limit_bytes
        .max(config.kv_max_value_bytes + WRAPPING_BYTES)
}

pub fn router(app: &AppState) -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new()
        .routes(routes!(
            handlers::get_entry,
            handlers::put_entry,
            handlers::delete_entry
        ))
        .routes(routes!(handlers::list, handlers::list_typed))
        .routes(routes!(handlers::get_many))
        .routes(routes!(handlers::atomic))
        .layer(RouteBodyLimit(body_limit(&app.config)));
    closed_mutations(router.get_openapi_mut());
    router
}

/// A mutation with a field its type does not have is refused (`deny_unknown_fields`); the
/// document must say so, and utoipa does not write it for the variants of a tagged enum.
fn closed_mutations(openapi: &mut utoipa::openapi::OpenApi) {
    let Some(components) = openapi.components.as_mut() else {
        return;
    };
    if let Some(RefOr::T(Schema::OneOf(mutations))) = components.schemas.get_mut("MutationBody") {
        for variant in &mut mutations.items {
            if let RefOr::T(Schema::Object(object)) = variant {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
    }
}
