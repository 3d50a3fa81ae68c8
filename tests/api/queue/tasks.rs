//! The queue service over HTTP, with `http` tasks calling the instance's own routes.

use std::time::Duration;

use crate::support::{TestServer, client, spawn};
use serde_json::{Value, json};

async fn enqueue(server: &TestServer, body: Value) -> reqwest::Response {
    client()
        .post(server.url("/api/queue/tasks"))
        .json(&body)
        .send()
        .await
        .expect("send")
}

async fn task(server: &TestServer, id: i64) -> Value {
    server.get_json(&format!("/api/queue/tasks/{id}")).await
}

async fn wait_status(server: &TestServer, id: i64, status: &str) -> Value {
    for _ in 0..300 {
        let t = task(server, id).await;
        if t["status"] == status {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "task {id} never became {status}: {}",
        task(server, id).await
    );
}

#[tokio::test]
async fn an_http_task_calls_the_instance_and_keeps_the_answer() {
    let server = spawn();
    let response = enqueue(
        &server,
        json!({"kind": "http", "payload": {"method": "PUT", "path": "/api/kv/entries/greetings/hello",
               "headers": {"x-custom": "1"}, "body": {"value": "world"}}}),
    )
    .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("json");
    assert_eq!(accepted["status"], "pending");
    assert!(accepted["run_at"].as_i64().is_some());
    let id = accepted["id"].as_i64().expect("id");

    let done = wait_status(&server, id, "succeeded").await;
    assert_eq!(done["kind"], "http");
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["result"]["status"], 200);
    assert_eq!(
        done["result"]["body"]["versionstamp"]
            .as_str()
            .expect("vs")
            .len(),
        20
    );
    assert_eq!(
        done["result"]["headers"]["content-type"],
        "application/json"
    );

    let entry: Value = server.get_json("/api/kv/entries/greetings/hello").await;
    assert_eq!(entry["value"], "world");
}

#[tokio::test]
async fn a_4xx_answer_kills_the_task_at_once_and_writes_its_dead_letters() {
    let server = spawn();
    let accepted: Value = enqueue(
        &server,
        json!({"payload": {"method": "GET", "path": "/api/kv/entries/missing"},
               "keys_if_undelivered": [["dead", "lookup"]]}),
    )
    .await
    .json()
    .await
    .expect("json");
    let id = accepted["id"].as_i64().expect("id");
    let dead = wait_status(&server, id, "dead").await;
    assert_eq!(dead["attempts"], 1, "no retries for a 404");
    assert!(dead["last_error"].as_str().expect("error").contains("404"));

    let letter: Value = server.get_json("/api/kv/entries/dead/lookup").await;
    assert_eq!(letter["value"]["path"], "/api/kv/entries/missing");

    // Dead tasks can be retried (fresh attempts) and deleted.
    let retried = client()
        .post(server.url(&format!("/api/queue/tasks/{id}/retry")))
        .send()
        .await
        .expect("send");
    assert_eq!(retried.status(), 200);
    wait_status(&server, id, "dead").await;
    let deleted = client()
        .delete(server.url(&format!("/api/queue/tasks/{id}")))
        .send()
        .await
        .expect("send");
    assert_eq!(deleted.status(), 204);
    let gone = client()
        .get(server.url(&format!("/api/queue/tasks/{id}")))
        .send()
        .await
        .expect("send");
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn delayed_tasks_wait_and_stats_count_them() {
    let server = spawn();
    let accepted: Value = enqueue(
        &server,
        json!({"payload": {"method": "GET", "path": "/api/health"}, "delay_ms": 60000}),
    )
    .await
    .json()
    .await
    .expect("json");
    let id = accepted["id"].as_i64().expect("id");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(task(&server, id).await["status"], "pending");
    let stats: Value = server.get_json("/api/queue/stats").await;
    assert_eq!(stats["counts"]["pending"], 1);
    assert_eq!(stats["total"], 1);
    assert_eq!(
        stats["oldest_pending_age_ms"], 0,
        "not due yet, so not waiting"
    );

    let retry = client()
        .post(server.url(&format!("/api/queue/tasks/{id}/retry")))
        .send()
        .await
        .expect("send");
    assert_eq!(retry.status(), 409, "only dead tasks retry");
}

#[tokio::test]
async fn tasks_list_by_status_with_a_cursor() {
    let server = spawn();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let accepted: Value = enqueue(
            &server,
            json!({"payload": {"method": "GET", "path": "/api/health"}}),
        )
        .await
        .json()
        .await
        .expect("json");
        ids.push(accepted["id"].as_i64().expect("id"));
    }
    for id in &ids {
        wait_status(&server, *id, "succeeded").await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = server
            .get_json(&format!(
                "/api/queue/tasks?status=succeeded&limit=2&cursor={cursor}"
            ))
            .await;
        seen.extend(
            page["tasks"]
                .as_array()
                .expect("tasks")
                .iter()
                .map(|t| t["id"].as_i64().expect("id")),
        );
        match page["cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let none: Value = server.get_json("/api/queue/tasks?status=dead").await;
    assert_eq!(none["tasks"], json!([]));
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let server = spawn();
    let cases = [
        (
            json!({"kind": "smoke-signals", "payload": {}}),
            400,
            "known: http",
        ),
        (
            json!({"payload": {"method": "GET", "path": "/openapi.json"}}),
            400,
            "/api/",
        ),
        (json!({"payload": {"method": "GET"}}), 400, "path"),
        (
            json!({"payload": {"method": "GET", "path": "/api/health"}, "delay_ms": 99_999_999_999_u64}),
            400,
            "delay_ms",
        ),
        (
            json!({"payload": {"method": "GET", "path": "/api/health"}, "max_attempts": 0}),
            400,
            "max_attempts",
        ),
        (
            json!({"payload": {"method": "GET", "path": "/api/health"}, "keys_if_undelivered": ["x"]}),
            400,
            "keys_if_undelivered[0]",
        ),
        (
            json!({"payload": {"method": "GET", "path": "/api/health"}, "surprise": 1}),
            422,
            "surprise",
        ),
    ];
    for (body, status, needle) in cases {
        let response = enqueue(&server, body).await;
        assert_eq!(response.status().as_u16(), status, "{needle}");
        let error: Value = response.json().await.expect("json");
        assert!(
            error["error"].as_str().expect("error").contains(needle),
            "{error} mentions {needle}"
        );
    }
    let http = client();
    for (path, status) in [
        ("/api/queue/tasks/999999", 404),
        ("/api/queue/tasks/abc", 400),
        ("/api/queue/tasks?status=sleeping", 400),
        ("/api/queue/tasks?limit=5000", 400),
        ("/api/queue/tasks?cursor=zz", 400),
    ] {
        let response = http.get(server.url(path)).send().await.expect("send");
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert!(response.json::<Value>().await.expect("json")["error"].is_string());
    }
}

#[tokio::test]
async fn kv_atomic_can_enqueue_in_the_same_commit() {
    let server = spawn();
    let result: Value = client()
        .post(server.url("/api/kv/atomic"))
        .json(&json!({
            "mutations": [{"type": "set", "key": ["orders", "1"], "value": {"total": 5}}],
            "enqueues": [{"payload": {"method": "PUT", "path": "/api/kv/entries/orders/1/receipt", "body": {"value": "sent"}}}]
        }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let id = result["task_ids"][0].as_i64().expect("task id");
    wait_status(&server, id, "succeeded").await;
    let receipt = client()
        .get(server.url("/api/kv/entries/orders/1/receipt"))
        .send()
        .await
        .expect("send");
    assert_eq!(receipt.status(), 200);

    // The same checks as POST /api/queue/tasks: a payload that could never run is refused.
    for (enqueue, needle) in [
        (
            json!({"payload": {"method": "GET", "path": "/elsewhere"}}),
            "/api/",
        ),
        (
            json!({"kind": "carrier-pigeon", "payload": {}}),
            "known: http",
        ),
    ] {
        let response = client()
            .post(server.url("/api/kv/atomic"))
            .json(&json!({"enqueues": [enqueue]}))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await.expect("json");
        assert!(
            error["error"].as_str().expect("error").contains(needle),
            "{error}"
        );
    }
}
