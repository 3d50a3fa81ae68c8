//! The JSON conveniences: transact, query (ordered, paged, as of a revision), entities.

use serde_json::{Value, json};

use super::*;
use crate::support::spawn;

#[tokio::test]
async fn transact_query_and_read_an_entity() {
    let server = spawn();
    let people = json!([
        {"Import": {"name": "Alice", "age": 30}},
        {"Import": {"name": "Bob", "age": 41}},
        {"Import": {"name": "Carol", "age": 30}},
        {"Import": {"name": "Dave", "age": 25}},
    ]);
    let response = server
        .post_json("/api/data/transact", &json!({"instructions": people}))
        .await;
    assert_eq!(response.status(), 200);
    let first: Value = response.json().await.expect("json");
    assert_eq!(first["before"], EMPTY_REVISION);
    assert_eq!(first["imported"].as_array().map(Vec::len), Some(4));
    let alice = first["imported"][0]["/"]
        .as_str()
        .expect("alice")
        .to_owned();

    let query = async |extra: Value| {
        let mut body = json!({
            "select": {"name": "?name", "age": "?age"},
            "where": [{"Case": ["?p", "name", "?name"]}, {"Case": ["?p", "age", "?age"]}]
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        server.post_json("/api/data/query", &body).await
    };
    let page: Value = query(json!({"order": ["-age", "name"], "limit": 2, "offset": 1}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        page["rows"],
        json!([{"name": "Alice", "age": 30}, {"name": "Carol", "age": 30}])
    );
    assert_eq!(page["total"], 4);
    assert_eq!(page["revision"], first["after"]);

    let bob_leaves = json!([{"Retract": [{"/": first["imported"][1]["/"]}, "name", "Bob"]}]);
    let second: Value = server
        .post_json("/api/data/transact", &json!({"instructions": bob_leaves}))
        .await
        .json()
        .await
        .expect("json");
    let now: Value = query(json!({"order": ["name"]}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(now["total"], 3);
    let then: Value = query(json!({"order": ["name"], "as_of": second["before"]}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(then["total"], 4);
    assert_eq!(then["rows"][1]["name"], "Bob");
    let by_number: Value = query(json!({"as_of": first["transaction"]}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(by_number["total"], 4);
    assert_eq!(query(json!({"as_of": "nope"})).await.status(), 404);
    assert_eq!(query(json!({"as_of": 99})).await.status(), 404);

    let bad = server
        .post_json(
            "/api/data/query",
            &json!({"where": [{"Case": ["?p", "name"]}]}),
        )
        .await;
    assert_eq!(bad.status(), 400);
    let message: Value = bad.json().await.expect("json");
    assert!(
        message["error"]
            .as_str()
            .unwrap_or_default()
            .contains("where[0].Case"),
        "{message}"
    );
    let unknown = server
        .post_json("/api/data/query", &json!({"where": [], "limt": 1}))
        .await;
    assert_eq!(unknown.status(), 422);
    let bad_tx = server
        .post_json(
            "/api/data/transact",
            &json!({"instructions": [{"Assert": [1]}]}),
        )
        .await;
    assert_eq!(bad_tx.status(), 400);

    let entity: Value = server
        .get_json(&format!("/api/data/entities/{alice}"))
        .await;
    assert_eq!(
        entity["attributes"],
        json!({"age": [30], "name": ["Alice"]})
    );
    assert_eq!(entity["incoming"], json!([]));
    assert_eq!(server.get("/api/data/entities/nope").await.status(), 400);
    let unknown = "baedreibc2zyxfii55ollky4pzjnqhb3c3xttdr5jnpsesrvrrdbgoml6za";
    assert_eq!(
        server
            .get(&format!("/api/data/entities/{unknown}"))
            .await
            .status(),
        404
    );
}
