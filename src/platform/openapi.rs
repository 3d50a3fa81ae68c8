//! The OpenAPI document generated from the route definitions (`/openapi.json`) and an
//! interactive reference page (`/reference`) whose assets are inside the binary, so it works
//! with no internet, as in an enclave.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use bytes::Bytes;
use utoipa::OpenApi;

use crate::platform::error::ErrorBody;
use crate::platform::state::AppState;

/// The document's fixed parts; every route adds itself through `utoipa-axum`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Toolshed",
        description = "A personal backend in one binary. Every service lives under `/api`; every error is `{\"error\": \"...\", \"code\": \"...\"}`.",
        license(name = "MIT")
    ),
    servers((url = "/", description = "This instance")),
    components(schemas(ErrorBody))
)]
pub struct ApiDoc;

/// Raw bytes as a request or response body (an image, audio, a KV value): a binary string in
/// the document, where `Vec<u8>` would read as an array of numbers.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(
    dead_code,
    reason = "describes a body in the OpenAPI document; never built"
)]
pub struct Binary(Vec<u8>);

/// RapiDoc's standalone bundle (npm `rapidoc`, MIT; see assets/reference/).
const RAPIDOC_JS: &[u8] = include_bytes!("../../assets/reference/rapidoc-min.js");

const REFERENCE_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Toolshed API reference</title>
  <link rel="icon" href="/favicon.ico">
  <script type="module" src="/reference/rapidoc-min.js"></script>
</head>
<body>
  <rapi-doc spec-url="/openapi.json" render-style="read" show-header="false"
            allow-try="true" allow-server-selection="false" theme="light"></rapi-doc>
</body>
</html>
"#;

const FAVICON_SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><text y=".9em" font-size="90">🪓</text></svg>"#;

/// The paths `router` serves, for the request log's route table.
pub const PATHS: [&str; 4] = [SPEC_PATH, REFERENCE_PATH, RAPIDOC_PATH, FAVICON_PATH];
const SPEC_PATH: &str = "/openapi.json";
const REFERENCE_PATH: &str = "/reference";
const RAPIDOC_PATH: &str = "/reference/rapidoc-min.js";
const FAVICON_PATH: &str = "/favicon.ico";

/// Summaries as one plain line: reference pages show them unrendered in their sidebar, and
/// utoipa takes a doc comment's whole first paragraph (Markdown included) as the summary.
fn plain_summaries(spec: &mut utoipa::openapi::OpenApi) {
    for item in spec.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(summary) = &mut operation.summary {
                *summary = summary.replace('\n', " ").replace('`', "");
            }
        }
    }
}

/// Routes for the document, the reference page and its assets.
pub fn router(mut spec: utoipa::openapi::OpenApi) -> Router<AppState> {
    // axum spells a catch-all segment `{*key}`; OpenAPI knows only `{key}`.
    spec.paths.paths = std::mem::take(&mut spec.paths.paths)
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    plain_summaries(&mut spec);
    // Rendered once: the document never changes while the process runs. Held as `Bytes`
    // because axum clones a route's handler (and what it captures) for every layer at
    // start-up and for every request: a `String` here kept ~130 copies of the document.
    let spec_json =
        Bytes::from(spec.to_pretty_json().unwrap_or_else(|e| {
            format!("{{\"error\":\"cannot render the OpenAPI document: {e}\"}}")
        }));
    Router::new()
        .route(
            SPEC_PATH,
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    spec_json.clone(),
                )
            }),
        )
        .route(REFERENCE_PATH, get(|| async { Html(REFERENCE_HTML) }))
        .route(
            RAPIDOC_PATH,
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    RAPIDOC_JS,
                )
                    .into_response()
            }),
        )
        .route(
            FAVICON_PATH,
            get(|| async { ([(header::CONTENT_TYPE, "image/svg+xml")], FAVICON_SVG) }),
        )
}
