//! `webhook` tasks against a receiver on loopback (allowed through the outbound guard for
//! the test, as `TOOLSHED_OUTBOUND_ALLOW_HOSTS` allows it): delivery, signature, secrets by
//! reference, retries by status, dead letters, and the payloads refused at enqueue time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{self, TestServer};

/// What the receiver saw, and the statuses it answers in turn (then 200).
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver.seen.lock().expect("seen").push((headers, body));
    let status = receiver
        .answers
        .lock()
        .expect("answers")
        .pop_front()
        .unwrap_or(200);
    StatusCode::from_u16(status).expect("status")
}

/// A receiver on 127.0.0.1:0 answering `answers` in turn; its base URL.
async fn receiver(answers: &[u16]) -> (Receiver, String) {
    let receiver = Receiver::default();
    receiver.answers.lock().expect("answers").extend(answers);
    let app = Router::new()
        .route("/{*path}", any(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, base)
}

fn toolshed() -> TestServer {
    support::spawn_with(&[
        ("TOOLSHED_OUTBOUND_ALLOW_HOSTS", "127.0.0.1"),
        ("TOOLSHED_WEBHOOK_SECRET", "s3cret"),
        ("TOOLSHED_WEBHOOK_HEADER_TEST", "Bearer tok-123"),
        ("OPENAI_API_KEY", "sk-not-for-webhooks"),
    ])
}

async fn enqueue(server: &TestServer, spec: Value) -> (u16, Value) {
    let response = server.post_json("/api/queue/tasks", &spec).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn settled(server: &TestServer, id: i64) -> Value {
    for _ in 0..400 {
        let task = server.get_json(&format!("/api/queue/tasks/{id}")).await;
        if task["status"] == "succeeded" || task["status"] == "dead" {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {id} never settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_delivered_signed_with_its_secret_header_resolved() {
    let (receiver, base) = receiver(&[]).await;
    let server = toolshed();
    let (status, accepted) = enqueue(
        &server,
        json!({"kind": "webhook", "payload": {
            "url": format!("{base}/hooks/signup"),
            "headers": {"authorization": {"secret": "TOOLSHED_WEBHOOK_HEADER_TEST"}, "x-source": "test"},
            "body": {"event": "signed-up", "user": "ada"}
        }}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_i64().expect("id");
    let done = settled(&server, id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["status"], 200);
    assert_eq!(
        done["payload"]["headers"]["authorization"],
        json!({"secret": "TOOLSHED_WEBHOOK_HEADER_TEST"}),
        "the stored payload names the secret, never holds it"
    );
    assert!(!done.to_string().contains("tok-123"));

    let seen = receiver.seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    assert_eq!(headers["authorization"], "Bearer tok-123");
    assert_eq!(headers["x-source"], "test");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-toolshed-delivery"], id.to_string().as_str());
    assert_eq!(headers["x-toolshed-delivery-attempt"], "1");
    let sent: Value = serde_json::from_slice(body).expect("json body");
    assert_eq!(sent, json!({"event": "signed-up", "user": "ada"}));
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").expect("key");
    mac.update(body);
    let signature = headers["x-toolshed-signature-256"]
        .to_str()
        .expect("ascii")
        .strip_prefix("sha256=")
        .expect("sha256=");
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(signature, expected, "the receiver can verify the body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_statuses_are_retried_and_others_kill_the_task() {
    let (receiver, base) = receiver(&[503, 429, 200, 404, 404, 200]).await;
    let server = toolshed();
    let spec = |path: &str, retry_on: Value| {
        let mut payload = json!({"url": format!("{base}/{path}"), "body": {"n": 1}});
        if !retry_on.is_null() {
            payload["retry_on"] = retry_on;
        }
        json!({"kind": "webhook", "payload": payload, "backoff_schedule_ms": [0],
               "max_attempts": 5, "keys_if_undelivered": [["dead", path]]})
    };
    // 503 and 429 are retried by default; the third attempt gets 200.
    let (_, first) = enqueue(&server, spec("a", Value::Null)).await;
    let done = settled(&server, first["id"].as_i64().expect("id")).await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_u64()),
        (Some("succeeded"), Some(3))
    );
    // A 404 is final unless the task says otherwise.
    let (_, second) = enqueue(&server, spec("b", Value::Null)).await;
    let dead = settled(&server, second["id"].as_i64().expect("id")).await;
    assert_eq!(
        (dead["status"].as_str(), dead["attempts"].as_u64()),
        (Some("dead"), Some(1))
    );
    assert!(dead["last_error"].as_str().expect("error").contains("404"));
    let letter = server.get_json("/api/kv/entries/dead/b").await;
    assert_eq!(letter["value"]["url"], format!("{base}/b"));
    let (_, third) = enqueue(&server, spec("c", json!([404]))).await;
    let done = settled(&server, third["id"].as_i64().expect("id")).await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_u64()),
        (Some("succeeded"), Some(2))
    );
    assert_eq!(receiver.seen.lock().expect("seen").len(), 6);
}

#[tokio::test]
async fn payloads_that_could_never_be_sent_are_refused_at_enqueue() {
    let server = toolshed();
    for (payload, needle) in [
        (
            json!({"url": "https://hooks.example.com/x", "headers": {"authorization": {"secret": "OPENAI_API_KEY"}}}),
            "TOOLSHED_WEBHOOK_HEADER_",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "headers": {"x-sig": {"secret": "TOOLSHED_WEBHOOK_SECRET"}}}),
            "TOOLSHED_WEBHOOK_HEADER_",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "headers": {"Host": "internal.example"}}),
            "set by the HTTP layer",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "headers": {"x-toolshed-delivery": "1"}}),
            "set by the HTTP layer",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "headers": {"authorization": {"secret": "TOOLSHED_WEBHOOK_HEADER_MISSING"}}}),
            "not set",
        ),
        (json!({"url": "http://hooks.example.com/x"}), "https"),
        (json!({"url": "https://169.254.169.254/latest"}), "internal"),
        (json!({"url": "ftp://hooks.example.com/x"}), "http"),
        (
            json!({"url": "https://hooks.example.com/x", "method": "G T"}),
            "method",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "retry_on": [999]}),
            "retry_on",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "extra": 1}),
            "extra",
        ),
    ] {
        let (status, body) = enqueue(&server, json!({"kind": "webhook", "payload": payload})).await;
        assert_eq!(status, 400, "{payload}: {body}");
        assert!(
            body["error"].as_str().expect("error").contains(needle),
            "{payload}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_aimed_at_this_instance_is_refused_as_a_loop() {
    let server = toolshed();
    let (status, accepted) = enqueue(
        &server,
        json!({"kind": "webhook", "max_attempts": 1, "payload": {
            "url": server.url("/api/queue/tasks"),
            "body": {"kind": "webhook", "payload": {"url": server.url("/api/queue/tasks")}}
        }}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let done = settled(&server, accepted["id"].as_i64().expect("id")).await;
    assert_eq!(done["status"], "dead", "{done}");
    let error = done["last_error"].as_str().expect("last_error");
    assert!(
        error.contains("508") && error.contains("fetch_loop"),
        "{done}"
    );
    let stats = server.get_json("/api/queue/stats").await;
    assert_eq!(stats["total"], 1, "the webhook enqueued nothing: {stats}");
}
