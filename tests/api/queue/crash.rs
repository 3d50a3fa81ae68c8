//! Nothing is lost: tasks in flight when the server is SIGKILLed run again after restart,
//! and a graceful stop lets running work finish.

use crate::support;

use std::time::{Duration, Instant};

use crate::support::{client, spawn_in, temp_dir};
use serde_json::{Value, json};

const TASKS: usize = 1000;

async fn stats(server: &support::TestServer) -> Value {
    server.get_json("/api/queue/stats").await
}

#[tokio::test]
async fn sigkill_mid_run_loses_no_task() {
    let dir = temp_dir();
    let env = [("TOOLSHED_QUEUE_CONCURRENCY", "4")];
    let mut server = spawn_in(dir.path(), &env);
    let http = client();
    // Due at fixed times from three seconds after the first enqueue, spread over fifteen:
    // however long enqueueing takes on a loaded machine (over 8 s was seen), the kill below
    // lands while tasks are running and others still wait.
    let first = Instant::now();
    let mut handles = Vec::new();
    for i in 0..TASKS {
        let url = server.url("/api/queue/tasks");
        let http = http.clone();
        handles.push(tokio::spawn(async move {
            let due = Duration::from_millis(3000 + (i * 15) as u64);
            let delay = due.saturating_sub(first.elapsed());
            let body = json!({
                "payload": {"method": "PUT", "path": format!("/api/kv/entries/crash/{i}"), "body": {"value": i}},
                "delay_ms": delay.as_millis() as u64,
            });
            let response = http.post(url).json(&body).send().await.expect("send");
            assert_eq!(response.status(), 202);
        }));
    }
    for handle in handles {
        handle.await.expect("enqueue");
    }
    let started = Instant::now();
    let before = loop {
        let now = stats(&server).await;
        if now["counts"]["succeeded"].as_u64() > Some(0) {
            break now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no task ran: {now}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let done_before = before["counts"]["succeeded"].as_u64().expect("count");
    assert!(done_before < TASKS as u64, "killed mid-way: {before}");
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("wait");
    drop(server);

    let server = spawn_in(dir.path(), &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = stats(&server).await;
        if now["counts"]["succeeded"] == TASKS {
            assert_eq!(now["total"], TASKS, "{now}");
            break;
        }
        assert!(Instant::now() < deadline, "not all tasks finished: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut cursor: Option<String> = None;
    let mut keys = 0;
    loop {
        let mut url = String::from("/api/kv/list?prefix=crash&limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = server.get_json(&url).await;
        keys += page["entries"].as_array().expect("entries").len();
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(keys, TASKS, "every task's write is there");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let dir = temp_dir();
    let mut server = spawn_in(dir.path(), &[]);
    // A PUT whose body trickles in over a second: in flight when the signal arrives.
    let chunks = futures_util::stream::unfold(0, |i| async move {
        if i == 3 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let part = match i {
            0 => "{\"value\": ",
            1 => "\"slow\"",
            _ => "}",
        };
        Some((Ok::<_, std::io::Error>(part.to_owned()), i + 1))
    });
    let request = client()
        .put(server.url("/api/kv/entries/slow/one"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send();
    let in_flight = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.signal("TERM");
    let response = in_flight
        .await
        .expect("join")
        .expect("the request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));

    let server = spawn_in(dir.path(), &[]);
    let entry: Value = server.get_json("/api/kv/entries/slow/one").await;
    assert_eq!(entry["value"], "slow");
}
