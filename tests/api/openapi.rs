//! A snapshot of the whole OpenAPI document, so that any API change shows up in review.
//! After an intended change: `UPDATE_SNAPSHOTS=1 cargo test --test api openapi`.

use crate::support;

use std::path::Path;

use serde_json::Value;

#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let server = support::spawn();
    let doc: Value = server.get_json("/openapi.json").await;
    let rendered = serde_json::to_string_pretty(&doc).expect("render") + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &rendered).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != rendered {
        let diff = similar::TextDiff::from_lines(&expected, &rendered)
            .unified_diff()
            .context_radius(3)
            .header("tests/snapshots/openapi.json", "/openapi.json")
            .to_string();
        panic!(
            "the OpenAPI document changed; review the diff and run UPDATE_SNAPSHOTS=1 cargo test --test api openapi\n{diff}"
        );
    }
}

#[tokio::test]
async fn every_operation_documents_its_responses_and_examples() {
    let server = support::spawn();
    let doc: Value = server.get_json("/openapi.json").await;
    let paths = doc["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, item) in paths {
        // `/metrics` sits where every scraper looks for it.
        assert!(
            path.starts_with("/api/") || path == "/metrics",
            "{path} is under /api"
        );
        for (method, op) in item.as_object().expect("item") {
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path} documents responses");
            // The reference page's sidebar shows summaries as plain text.
            let summary = op["summary"].as_str().expect("a summary");
            assert!(
                !summary.contains('`') && !summary.contains('\n'),
                "{method} {path}: the summary is one plain line: {summary:?}"
            );
            // Every JSON body can be malformed, too large, not JSON or of the wrong shape.
            // synopsys' protocol is the exception: it reads any body, and answers 400 for
            // everything wrong with it (as synopsys does).
            if op["requestBody"]["content"]["application/json"].is_object() && path != "/api/data" {
                for status in ["400", "413", "415", "422"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} takes JSON and documents {status}"
                    );
                }
            }
            let id = op["operationId"].as_str().expect("an operationId");
            assert!(
                operation_ids.insert(id.to_owned()),
                "{method} {path}: operationId {id} is used twice"
            );
        }
    }
    assert_eq!(doc["servers"][0]["url"], "/", "a servers entry");
    // Every reference names a schema the document holds.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().expect("a name");
        assert!(schemas.contains_key(name), "no schema {name}");
    }
}
