//! The route template (`/api/kv/{*key}`) of a request path, for the request log.
//!
//! The common layers wrap the whole router rather than each route: axum boxes a layered
//! route and clones that box for every request, which cost more than anything the layers
//! themselves do. Outside the router they run before axum matches the route, so they look
//! the template up here, in a table built from the same paths the router was built from.

use std::sync::Arc;

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
