//! synopsys' own protocol, checked on synopsys' own answers (docs/design/synopsys-queries.md).

use serde_json::{Value, json};

use super::*;
use crate::support::spawn;

#[tokio::test]
async fn the_todo_example_answers_as_synopsys_does() {
    let server = spawn();
    let response = patch(&server, &todo_lists()).await;
    assert_eq!(response.status(), 200);
    let commit: Value = response.json().await.expect("json");
    assert_eq!(commit["ok"]["before"]["id"], EMPTY_REVISION);
    let after = commit["ok"]["after"]["id"]
        .as_str()
        .expect("after")
        .to_owned();
    assert_ne!(after, EMPTY_REVISION);

    let path = store_query(&server, TODO_QUERY).await;
    assert_eq!(path, format!("/api/data/{TODO_QUERY_ID}"));
    assert_eq!(answer(&server, &path).await, todo_answer());

    // An empty transaction still moves the revision; `before` is the last `after`.
    let next: Value = patch(&server, &json!([])).await.json().await.expect("json");
    assert_eq!(next["ok"]["before"]["id"], after.as_str());
    assert_ne!(next["ok"]["after"]["id"], after.as_str());
}

#[tokio::test]
async fn the_text_search_example_answers_as_synopsys_does() {
    let server = spawn();
    let (c, m1, m2, m3) = (
        "baedreiefnrkg27gk7oqmbeozj5wdg6uoaauwe4rbcqkmulyfoznozbynca",
        "baedreie4n7h4lxz7ncwe57mg74pg6zkoxcbf24zzajofn4omtpd2nbwxpm",
        "baedreibwivoyq4vp66pmwlrkbinjpeetmbat3zrx75hcsy3nkhkbgp3mti",
        "baedreiaryog564gwcsrjbwbmrhq5gjej5ymmdhzjtjxqt267lmjg5sijwi",
    );
    let assert = |e: &str, a: &str, v: Value| json!({"Assert": [link(e), a, v]});
    let tx = json!([
        assert(c, "member", link(m1)),
        assert(c, "member", link(m2)),
        assert(c, "member", link(m3)),
        assert(m1, "name", json!("Alice")),
        assert(m1, "kind", json!("email")),
        assert(m1, "address", json!("alice@example.com")),
        assert(m1, "age", json!(30)),
        assert(m2, "name", json!("Bob")),
        assert(m2, "note", json!("prefers email over phone")),
        assert(m2, "score", json!(1.5)),
        assert(m3, "name", json!("Carol")),
        assert(m3, "note", json!("EMAIL only")),
        assert(m3, "subscribed", json!(true)),
        assert(m3, "friend", link(m1)),
    ]);
    assert_eq!(patch(&server, &tx).await.status(), 200);
    let path = store_query(
        &server,
        r#"{"select":{"collection":"?c","item":[{"item":"?i","key":"?k","value":"?v"}]},"where":[{"Case":["?c","member","?i"]},{"Case":["?i","?k","?v"]},{"Match":[{"text":"?v","pattern":"*email*"},"text/like"]}]}"#,
    )
    .await;
    assert_eq!(
        path,
        "/api/data/ba4jcbeuhyjqw6hivzsbhylgoevgmvgxgfcohkr63vy3osewec6z7uyd2"
    );
    assert_eq!(
        answer(&server, &path).await,
        json!([{"collection": link(c), "item": [
            {"item": link(m2), "key": "note", "value": "prefers email over phone"},
            {"item": link(m1), "key": "kind", "value": "email"},
        ]}])
    );
}

#[tokio::test]
async fn imported_json_is_the_entity_synopsys_computes() {
    let server = spawn();
    let response = http()
        .put(server.url("/api/data"))
        .json(&json!({"name": "Groceries", "todo": [{"title": "Milk", "done": true}, {"title": "Bread", "done": false}, {"title": "Eggs"}]}))
        .send()
        .await
        .expect("put");
    assert_eq!(
        response.status(),
        200,
        "a JSON import answers with the commit"
    );
    let commit: Value = response.json().await.expect("json");
    assert_eq!(commit["ok"]["before"]["id"], EMPTY_REVISION);
    let path = store_query(
        &server,
        r#"{"select":{"list":"?list"},"where":[{"Case":["?list","name","Groceries"]}]}"#,
    )
    .await;
    assert_eq!(
        answer(&server, &path).await,
        json!([{"list": link("baedreic4cpdgh6voacupn3xgrnot2dql363yk2ctwadwukirxeumfipyp4")}])
    );
}

#[tokio::test]
async fn bad_input_gets_synopsys_error_shape_and_the_server_stays_up() {
    let server = spawn();
    let status_and_message = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        (
            status,
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let (status, message) =
        status_and_message(patch(&server, &json!([{"Asert": [1, 2, 3]}])).await).await;
    assert_eq!(status, 400);
    assert!(message.contains("Asert"), "{message}");
    let (status, message) =
        status_and_message(patch(&server, &json!([{"Assert": ["not-a-link", "a", 1]}])).await)
            .await;
    assert_eq!(status, 400);
    assert!(message.contains("entity"), "{message}");
    let (status, message) = status_and_message(patch(&server, &json!({"Assert": []})).await).await;
    assert_eq!(
        (status, message.contains("array")),
        (400, true),
        "{message}"
    );

    let put_query = |body: &'static str| {
        http()
            .put(server.url("/api/data"))
            .header(
                "content-type",
                "Application/Synopsys-Query+JSON; charset=utf-8",
            )
            .body(body)
            .send()
    };
    // synopsys crashes on an unknown clause; we refuse it when it is stored.
    let (status, message) = status_and_message(
        put_query(r#"{"select":{},"where":[{"Foo":["?n"]}]}"#)
            .await
            .expect("put"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(message.contains("Unsupported query kind Foo"), "{message}");
    let (status, message) =
        status_and_message(put_query(r#"{"select":{}}"#).await.expect("put")).await;
    assert_eq!(status, 400);
    assert!(message.contains("where"), "{message}");
    // synopsys ignores these; a stored query's id covers select and where only, so say so.
    let (status, message) = status_and_message(
        put_query(r#"{"select":{},"where":[],"limit":1}"#)
            .await
            .expect("put"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(message.contains("limit"), "{message}");
    // The media type matched case-insensitively, parameters aside: a good query is stored.
    assert_eq!(
        put_query(r#"{"select":{},"where":[]}"#)
            .await
            .expect("put")
            .status(),
        303
    );

    let missing = http()
        .get(server.url(&format!("/api/data/{TODO_QUERY_ID}")))
        .header("accept", "application/json")
        .send()
        .await
        .expect("get");
    let (status, message) = status_and_message(missing).await;
    assert_eq!(status, 404);
    assert_eq!(message, format!("Query {TODO_QUERY_ID} was not found"));
    let (status, _) = status_and_message(
        http()
            .get(server.url("/api/data/nope"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(server.get("/api/health").await.status(), 200);
}

#[tokio::test]
async fn blobs_are_stored_by_content_and_served_with_ranges() {
    let server = spawn();
    let body = b"0123456789".to_vec();
    let response = http()
        .put(server.url("/api/data"))
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 303);
    let path = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(path.starts_with("/api/data/ba4jc"), "{path}");
    let whole = http().get(server.url(&path)).send().await.expect("get");
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "text/plain");
    assert_eq!(whole.headers()["x-content-type-options"], "nosniff");
    assert_eq!(whole.headers()["content-security-policy"], "sandbox");
    assert_eq!(
        whole.bytes().await.expect("bytes").as_ref(),
        body.as_slice()
    );
    let range = |spec: &'static str| http().get(server.url(&path)).header("range", spec).send();
    let part = range("bytes=2-4").await.expect("get");
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 2-4/10");
    assert_eq!(
        part.bytes().await.expect("bytes").as_ref(),
        b"234",
        "the end is inclusive"
    );
    assert_eq!(
        range("bytes=-3")
            .await
            .expect("get")
            .bytes()
            .await
            .expect("b")
            .as_ref(),
        b"789"
    );
    let outside = range("bytes=20-").await.expect("get");
    assert_eq!(outside.status(), 416);
    assert_eq!(outside.headers()["content-range"], "bytes */10");
    let head = http().head(server.url(&path)).send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "text/plain");
    assert_eq!(head.headers()["content-length"], "10");
    let preflight = http()
        .request(reqwest::Method::OPTIONS, server.url("/api/data"))
        .send()
        .await
        .expect("options");
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["allow"], "PUT, PATCH, OPTIONS");
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "no CORS unless TOOLSHED_CORS_ORIGINS says so"
    );
}

#[tokio::test]
async fn cors_follows_the_instance_setting_as_synopsys_answers_with_it_open() {
    let server = crate::support::spawn_with(&[("TOOLSHED_CORS_ORIGINS", "*")]);
    let response = http()
        .patch(server.url("/api/data"))
        .header("origin", "https://app.example")
        .json(&json!([]))
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}
