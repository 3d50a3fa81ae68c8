//! `/api/profile`: the user's profile, kept as a knowledge graph in a fact database of its
//! own (`storage::facts`, the profile space). v1 (`/api/profile`) is the simple face: the
//! graph's "me" entity as one JSON document, changed with a JSON merge patch. v2
//! (`/api/profile/v2`, the breaking rewrite mounted beside it) is the graph itself:
//! statements with their provenance, entities with their edges, queries and search. Both
//! read and write the same facts (`document` maps one to the other), so they agree.

mod document;
mod entities;
mod schemas;
mod v1;
mod v2;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::platform::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(v1::get, v1::patch))
        .layer(axum::Extension(v1::PatchLock::default()))
        .routes(routes!(v2::add_facts))
        .routes(routes!(v2::entity))
        .routes(routes!(v2::query))
        .routes(routes!(v2::search))
}
