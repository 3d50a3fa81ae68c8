//! The route template (`/api/kv/{*key}`) of a request path, for the request log.
//!
//! The common layers wrap the whole router rather than each route: axum boxes a layered
//! route and clones that box for every request, which cost more than anything the layers
//! themselves do. Outside the router they run before axum matches the route, so they look
//! the template up here, in a table built from the same paths the router was built from.

use std::sync::Arc;

#[cfg(debug_assertions)]
use axum::extract::{MatchedPath, Request, State};

/// Every route path of the app, matched the way axum matches them (both use `matchit`).
#[derive(Default)]
pub struct RouteTemplates(matchit::Router<Arc<str>>);

impl RouteTemplates {
    /// A table of `paths`, written as axum routes are (`/a/{id}`, `/b/{*rest}`).
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> RouteTemplates {
        let mut table = matchit::Router::new();
        for path in paths {
            // The router already accepted these paths, so they cannot conflict here.
            if let Err(e) = table.insert(path, Arc::from(path)) {
                tracing::warn!(path, error = %e, "route left out of the request log's table");
            }
        }
        RouteTemplates(table)
    }

    /// The template `path` matches, if any route does.
    pub fn find(&self, path: &str) -> Option<Arc<str>> {
        self.0.at(path).ok().map(|found| found.value.clone())
    }
}

/// Checks the table's template for a routed request against the route axum matched. Debug
/// builds (and so every test) run it on every route: a route routed without going through
/// the spec, or a path the two would match differently, fails the request with a panic.
#[cfg(debug_assertions)]
pub async fn check_against_router(
    State(table): State<Arc<RouteTemplates>>,
    request: Request,
) -> Request {
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let ours = table.find(request.uri().path());
    assert_eq!(
        ours.as_deref(),
        matched,
        "the request log's route table disagrees with the router on {}",
        request.uri().path()
    );
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_templates_and_unknown_paths_none() {
        let table = RouteTemplates::new(["/api/health", "/api/kv/{*key}", "/api/q/{id}/retry"]);
        assert_eq!(table.find("/api/health").as_deref(), Some("/api/health"));
        assert_eq!(
            table.find("/api/kv/a/b/c").as_deref(),
            Some("/api/kv/{*key}")
        );
        assert_eq!(
            table.find("/api/q/42/retry").as_deref(),
            Some("/api/q/{id}/retry")
        );
        assert_eq!(table.find("/api/nope"), None);
        assert_eq!(table.find("/api/health/"), None);
    }
}
