//! Proxy mode: `/api/data` forwarded to a synopsys server. The stand-in upstream is another
//! Toolshed's embedded engine, which speaks the same protocol under its own base path.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::support::{spawn, spawn_with};

#[tokio::test]
async fn the_protocol_goes_to_the_upstream() {
    let upstream = spawn();
    let base = upstream.url("/api/data");
    let proxy = spawn_with(&[("TOOLSHED_DATA_UPSTREAM", base.as_str())]);
    assert_eq!(patch(&proxy, &todo_lists()).await.status(), 200);
    let path = store_query(&proxy, TODO_QUERY).await;
    assert_eq!(
        path,
        format!("/api/data/{TODO_QUERY_ID}"),
        "Location back under /api/data"
    );
    assert_eq!(answer(&proxy, &path).await, todo_answer());
    assert_eq!(
        answer(&upstream, &path).await,
        todo_answer(),
        "stored upstream"
    );

    let (headers, mut events) = subscribe(&proxy, &path, None).await;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert!(events.next(Duration::from_secs(5)).await.is_some());
    assert_eq!(
        patch(&proxy, &json!([{"Retract": [link(L2), "name", "Chores"]}]))
            .await
            .status(),
        200
    );
    let change = events
        .next(Duration::from_secs(5))
        .await
        .expect("streamed through");
    let rows: Value = serde_json::from_str(&change.data).expect("json");
    assert_eq!(rows.as_array().map(Vec::len), Some(1));

    let convenience = proxy
        .post_json("/api/data/transact", &json!({"instructions": []}))
        .await;
    assert_eq!(convenience.status(), 501);
}

#[tokio::test]
async fn a_missing_upstream_is_a_502() {
    let proxy = spawn_with(&[("TOOLSHED_DATA_UPSTREAM", "http://127.0.0.1:9")]);
    let response = patch(&proxy, &json!([])).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("upstream")
    );
}
