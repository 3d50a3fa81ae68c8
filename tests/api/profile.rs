//! `/api/profile` (v1, a document) and `/api/profile/v2` (the graph), one view each of the
//! same facts.

use serde_json::{Value, json};

use crate::support::{client, spawn};

async fn patch(server: &crate::support::TestServer, body: Value) -> reqwest::Response {
    client()
        .patch(server.url("/api/profile"))
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string())
        .send()
        .await
        .expect("patch")
}

#[tokio::test]
async fn v1_is_a_document_changed_by_merge_patches() {
    let server = spawn();
    assert_eq!(server.get_json("/api/profile").await, json!({}));
    let first = patch(
        &server,
        json!({"name": "Ada", "interests": ["chess"], "preferences": {"theme": "dark", "units": "metric"}}),
    )
    .await;
    assert_eq!(first.status(), 200);
    let expected = json!({"name": "Ada", "interests": ["chess"], "preferences": {"theme": "dark", "units": "metric"}});
    assert_eq!(first.json::<Value>().await.expect("json"), expected);
    assert_eq!(
        server.get_json("/api/profile").await,
        expected,
        "one member still an array"
    );

    let second = patch(
        &server,
        json!({"name": "Ada Lovelace", "interests": ["chess", "math"], "preferences": {"theme": null, "lang": "en"}}),
    )
    .await;
    assert_eq!(second.status(), 200);
    let doc: Value = second.json().await.expect("json");
    assert_eq!(doc["name"], "Ada Lovelace");
    let mut interests: Vec<String> =
        serde_json::from_value(doc["interests"].clone()).expect("list");
    interests.sort();
    assert_eq!(interests, ["chess", "math"]);
    assert_eq!(doc["preferences"], json!({"lang": "en", "units": "metric"}));

    let removed: Value = patch(&server, json!({"preferences": null, "interests": null}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(removed, json!({"name": "Ada Lovelace"}));

    for bad in [
        json!({"list": [{"a": 1}]}),
        json!({"toolshed/array": 1}),
        json!({"toolshed/array": null}),
    ] {
        assert_eq!(patch(&server, bad).await.status(), 400);
    }
    assert_eq!(patch(&server, json!([1])).await.status(), 422);
    assert_eq!(
        server.get_json("/api/profile").await,
        json!({"name": "Ada Lovelace"}),
        "unchanged by refused patches"
    );
}

#[tokio::test]
async fn v1_and_v2_see_the_same_graph() {
    let server = spawn();
    assert_eq!(patch(&server, json!({"name": "Ada"})).await.status(), 200);
    let me: Value = server.get_json("/api/profile/v2/entities/me").await;
    assert_eq!(
        me["attributes"]["name"],
        json!(["Ada"]),
        "v1's write seen by v2"
    );
    let me_id = me["id"].clone();

    let statements = json!({"facts": [
        {"subject": "me", "predicate": "knows", "object": {"key": "alice"}, "source": "chat", "confidence": 0.9},
        {"subject": {"key": "alice"}, "predicate": "name", "object": "Alice", "source": "chat"},
        {"subject": {"key": "alice"}, "predicate": "name", "object": "Alice", "source": "email"},
        {"subject": "me", "predicate": "name", "object": "Ada", "source": "onboarding"},
    ]});
    let added = server.post_json("/api/profile/v2/facts", &statements).await;
    assert_eq!(added.status(), 200);
    let added: Value = added.json().await.expect("json");
    let alice_id = added["statements"][0]["object"].clone();

    // v2's statements are in v1's document: a link reads as the entity's document.
    assert_eq!(
        server.get_json("/api/profile").await,
        json!({"name": "Ada", "knows": {"name": "Alice"}})
    );

    let alice: Value = server.get_json("/api/profile/v2/entities/alice").await;
    assert_eq!(alice["id"], alice_id);
    assert_eq!(alice["key"], "alice");
    let mut sources: Vec<String> =
        serde_json::from_value(alice["outgoing"][0]["sources"].clone()).expect("sources");
    sources.sort();
    assert_eq!(sources, ["chat", "email"]);
    assert_eq!(alice["incoming"][0]["subject"], me_id);
    assert_eq!(alice["incoming"][0]["predicate"], "knows");
    assert_eq!(alice["incoming"][0]["confidence"], 0.9);

    // v1 changes a name v2 wrote provenance for; v2 sees the new one only.
    assert_eq!(
        patch(&server, json!({"name": "Ada L."})).await.status(),
        200
    );
    let me: Value = server.get_json("/api/profile/v2/entities/me").await;
    assert_eq!(me["attributes"]["name"], json!(["Ada L."]));

    let friends: Value = server
        .post_json(
            "/api/profile/v2/query",
            &json!({"select": {"friend": "?name"}, "where": [{"Case": [me_id, "knows", "?f"]}, {"Case": ["?f", "name", "?name"]}]}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(friends["rows"], json!([{"friend": "Alice"}]));

    let found: Value = server.get_json("/api/profile/v2/search?q=alice").await;
    let hits = found["results"].as_array().expect("results");
    assert!(hits.iter().any(|h| h["value"] == "Alice"), "{found}");
    assert!(hits.iter().all(|h| {
        !h["predicate"]
            .as_str()
            .unwrap_or("")
            .starts_with("toolshed/")
    }));

    // Scoped: /api/data does not see the profile's facts, nor the profile /api/data's.
    let data: Value = server
        .post_json(
            "/api/data/query",
            &json!({"select": {"n": "?n"}, "where": [{"Case": ["?e", "name", "?n"]}]}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(data["rows"], json!([]));

    let retract = json!({"facts": [{"subject": "me", "predicate": "knows", "object": {"key": "alice"}, "retract": true}]});
    assert_eq!(
        server
            .post_json("/api/profile/v2/facts", &retract)
            .await
            .status(),
        200
    );
    assert_eq!(
        server.get_json("/api/profile").await,
        json!({"name": "Ada L."})
    );
}

#[tokio::test]
async fn v2_refuses_what_it_cannot_store() {
    let server = spawn();
    let post = async |body: Value| server.post_json("/api/profile/v2/facts", &body).await;
    let one = |s: Value| json!({"facts": [s]});
    assert_eq!(
        post(one(json!({"subject": 7, "predicate": "p", "object": 1})))
            .await
            .status(),
        400
    );
    assert_eq!(
        post(one(json!({"subject": "me", "predicate": "", "object": 1})))
            .await
            .status(),
        400
    );
    assert_eq!(
        post(one(
            json!({"subject": "me", "predicate": "toolshed/at", "object": 1})
        ))
        .await
        .status(),
        400
    );
    assert_eq!(
        post(one(
            json!({"subject": "me", "predicate": "p", "object": [1]})
        ))
        .await
        .status(),
        400
    );
    assert_eq!(
        post(one(
            json!({"subject": "me", "predicate": "p", "object": 1, "confidence": 2})
        ))
        .await
        .status(),
        400
    );
    assert_eq!(
        post(one(
            json!({"subject": "me", "predicate": "p", "object": 1, "sauce": 2})
        ))
        .await
        .status(),
        422
    );
    assert_eq!(
        server.get("/api/profile/v2/entities/nobody").await.status(),
        404
    );
    assert_eq!(
        server.get("/api/profile/v2/search?q=%20").await.status(),
        400
    );
    let bad_query = server
        .post_json("/api/profile/v2/query", &json!({"where": [{"Nope": []}]}))
        .await;
    assert_eq!(bad_query.status(), 400);
}
