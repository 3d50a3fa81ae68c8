//! Live queries over server-sent events.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::support::spawn;

/// `toolshed_data_subscription_wakeups_total`.
async fn wakeups(server: &crate::support::TestServer) -> u64 {
    let text = server.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("toolshed_data_subscription_wakeups_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the wakeups counter")
}

#[tokio::test]
async fn a_subscriber_hears_every_change_and_nothing_else() {
    let server = spawn();
    assert_eq!(patch(&server, &todo_lists()).await.status(), 200);
    let path = store_query(&server, TODO_QUERY).await;
    let (headers, mut events) = subscribe(&server, &path, None).await;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["x-accel-buffering"], "no");
    let first = events
        .next(Duration::from_secs(5))
        .await
        .expect("the current result");
    assert_eq!(first.event.as_deref(), Some("change"));
    assert_eq!(
        serde_json::from_str::<Value>(&first.data).expect("json"),
        todo_answer()
    );
    let first_id = first.id.clone().expect("an id");
    assert!(first_id.starts_with("ba4jc"), "{first_id}");

    // An unrelated transaction sends nothing, and does not even wake the subscription: not
    // another attribute, nor the same attribute of an entity the query did not read.
    let woken = wakeups(&server).await;
    let other = json!([{"Assert": [link(L1), "colour", "blue"]}, {"Assert": [link(L1), "title", "Shopping"]}]);
    assert_eq!(patch(&server, &other).await.status(), 200);
    assert_eq!(events.next(Duration::from_millis(300)).await, None);
    assert_eq!(wakeups(&server).await, woken);

    // A change arrives within 100 ms of the commit.
    let started = Instant::now();
    let done = json!([{"Upsert": [link(I3), "done", true]}]);
    assert_eq!(patch(&server, &done).await.status(), 200);
    let change = events.next(Duration::from_secs(5)).await.expect("a change");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(100), "{elapsed:?}");
    let rows: Value = serde_json::from_str(&change.data).expect("json");
    let eggs = rows[0]["todo"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["title"] == "Eggs"))
        .cloned();
    assert_eq!(
        eggs.map(|e| e["completed"].clone()),
        Some(json!(true)),
        "{rows}"
    );
    assert_ne!(change.id.as_deref(), Some(first_id.as_str()));

    // A transaction on a named attribute that leaves the answer as it was sends nothing.
    let same = json!([{"Upsert": [link(I3), "done", true]}]);
    assert_eq!(patch(&server, &same).await.status(), 200);
    assert_eq!(events.next(Duration::from_millis(300)).await, None);
}

#[tokio::test]
async fn a_client_reconnecting_with_the_current_id_gets_no_duplicate() {
    let server = spawn();
    assert_eq!(patch(&server, &todo_lists()).await.status(), 200);
    let path = store_query(&server, TODO_QUERY).await;
    let (_, mut events) = subscribe(&server, &path, None).await;
    let first = events.next(Duration::from_secs(5)).await.expect("first");
    let id = first.id.expect("id");
    let (_, mut again) = subscribe(&server, &path, Some(&id)).await;
    assert_eq!(
        again.next(Duration::from_millis(300)).await,
        None,
        "no duplicate"
    );
    assert_eq!(
        patch(&server, &json!([{"Retract": [link(L2), "name", "Chores"]}]))
            .await
            .status(),
        200
    );
    let change = again
        .next(Duration::from_secs(5))
        .await
        .expect("the change");
    let rows: Value = serde_json::from_str(&change.data).expect("json");
    assert_eq!(rows.as_array().map(Vec::len), Some(1));
    // A stale id gets the current result at once.
    let (_, mut stale) = subscribe(&server, &path, Some(&id)).await;
    assert!(stale.next(Duration::from_secs(5)).await.is_some());
}
