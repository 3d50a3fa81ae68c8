//! The foundation, black-box: the real binary on port 0, spoken to over HTTP.

use crate::support;

use std::process::Command;
use std::time::Duration;

use crate::support::{client, spawn};
use serde_json::Value;

#[tokio::test]
async fn health_answers_ok_with_timestamp_version_and_uptime() {
    let server = spawn();
    let response = client()
        .get(server.url("/api/health"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "OK");
    assert!(body["timestamp"].as_i64().expect("timestamp") > 1_700_000_000_000);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_s"].as_f64().expect("uptime") >= 0.0);
}

#[tokio::test]
async fn ready_is_200_when_storage_is_writable() {
    let server = spawn();
    let response = client()
        .get(server.url("/api/health/ready"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["checks"]["storage"], "ok");
}

#[tokio::test]
async fn ready_is_503_with_the_reason_when_storage_is_not_writable() {
    // Another process holds the database's write lock, so the store cannot write.
    let server = spawn();
    let db = server.data_dir.join("toolshed.db");
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let locker = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&db).expect("open the database");
        conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        locked_tx.send(()).expect("report the lock");
        let _ = release_rx.recv_timeout(Duration::from_secs(30));
        conn.execute_batch("ROLLBACK").expect("unlock");
    });
    locked_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the lock is taken");
    let response = client()
        .get(server.url("/api/health/ready"))
        .send()
        .await
        .expect("send");
    let _ = release_tx.send(());
    locker.join().expect("locker thread");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "not_ready");
    assert!(
        body["error"].as_str().expect("error").contains("storage"),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_path_is_404_json_and_wrong_method_is_405_json() {
    let server = spawn();
    let http = client();
    let response = http
        .get(server.url("/api/no-such-thing"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("/api/no-such-thing")
    );

    let response = http
        .delete(server.url("/api/health"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "method_not_allowed");
}

#[tokio::test]
async fn request_id_is_echoed_when_sane_and_generated_otherwise() {
    let server = spawn();
    let http = client();
    let response = http
        .get(server.url("/api/health"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .expect("send");
    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");

    let response = http
        .get(server.url("/api/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .expect("send");
    let id = response.headers()["x-request-id"].to_str().expect("ascii");
    assert_ne!(id, "bad id with spaces");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id} is a UUID");

    let response = http
        .get(server.url("/api/health"))
        .send()
        .await
        .expect("send");
    let id = response.headers()["x-request-id"].to_str().expect("ascii");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id} is a UUID");
}

#[tokio::test]
async fn every_request_is_logged_as_one_json_line_with_its_fields() {
    let server = spawn();
    client()
        .get(server.url("/api/health?x=1"))
        .header("x-request-id", "log-line-test")
        .send()
        .await
        .expect("send");
    let line =
        server.wait_for_log(|l| l["message"] == "request" && l["request_id"] == "log-line-test");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/api/health");
    assert_eq!(line["route"], "/api/health");
    assert_eq!(line["status"], 200);
    assert!(line["latency_ms"].as_f64().is_some(), "{line}");
    assert!(line["size"].as_u64().expect("size") > 0, "{line}");

    client()
        .get(server.url("/api/nope/1"))
        .send()
        .await
        .expect("send");
    let line = server.wait_for_log(|l| l["message"] == "request" && l["path"] == "/api/nope/1");
    assert_eq!(line["status"], 404);
    assert_eq!(line["route"], "-");

    // Routes with parameters are logged by their template, as the router matched them.
    for (path, route) in [
        ("/api/kv/entries/users/42", "/api/kv/entries/{*key}"),
        ("/openapi.json", "/openapi.json"),
    ] {
        client().get(server.url(path)).send().await.expect("send");
        let line = server.wait_for_log(|l| l["message"] == "request" && l["path"] == path);
        assert_eq!(line["route"], route, "{line}");
    }
}

#[tokio::test]
async fn openapi_document_is_3_1_and_covers_the_routes() {
    let server = spawn();
    let doc: Value = server.get_json("/openapi.json").await;
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    assert!(doc["paths"]["/api/health"]["get"].is_object());
    assert!(doc["paths"]["/api/health/ready"]["get"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn reference_page_and_its_assets_are_served_from_the_binary() {
    let server = spawn();
    let http = client();
    let page = http
        .get(server.url("/reference"))
        .send()
        .await
        .expect("send");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("text");
    assert!(html.contains("/openapi.json"));
    // Nothing may come from the internet: every script the page loads is local.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let script = http
        .get(server.url("/reference/rapidoc-min.js"))
        .send()
        .await
        .expect("send");
    assert_eq!(script.status(), 200);
    assert!(script.bytes().await.expect("bytes").len() > 100_000);
    let icon = http
        .get(server.url("/favicon.ico"))
        .send()
        .await
        .expect("send");
    assert_eq!(icon.status(), 200);
}

#[test]
fn invalid_settings_stop_the_program_with_one_message_naming_each() {
    let output = Command::new(support::binary())
        .env_clear()
        .env("PORT", "abc")
        .env("LOG_LEVEL", "shouty")
        .env("ENV", "staging")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("PORT") && stderr.contains("abc"),
        "{stderr}"
    );
    assert!(
        stderr.contains("LOG_LEVEL") && stderr.contains("trace, debug"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ENV") && stderr.contains("development"),
        "{stderr}"
    );
}

#[test]
fn flags_win_over_env_vars() {
    // A bad env var is overridden by a good flag, so the program starts (and is stopped).
    let temp = support::temp_dir();
    let output = Command::new(support::binary())
        .env_clear()
        .env("PORT", "abc")
        .args(["--port", "0", "--log-level", "bogus"])
        .env("TOOLSHED_DATA_DIR", temp.path())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        !stderr.contains("PORT"),
        "the flag replaced PORT=abc: {stderr}"
    );
    assert!(
        stderr.contains("LOG_LEVEL (--log-level) = \"bogus\""),
        "{stderr}"
    );
}

#[test]
fn version_prints_version_commit_date_and_target() {
    let output = Command::new(support::binary())
        .arg("version")
        .output()
        .expect("run");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    assert!(text.contains("commit:"), "{text}");
    assert!(text.contains("built: 20"), "{text}");
    assert!(text.contains("target: "), "{text}");
}

#[tokio::test]
async fn sigterm_and_sigint_stop_the_server_with_exit_code_0() {
    for signal in ["TERM", "INT"] {
        let mut server = spawn();
        let ok = client()
            .get(server.url("/api/health"))
            .send()
            .await
            .expect("send");
        assert_eq!(ok.status(), 200);
        server.signal(signal);
        assert_eq!(
            server.wait_exit(Duration::from_secs(10)),
            Some(0),
            "SIG{signal}"
        );
        assert!(
            client()
                .get(server.url("/api/health"))
                .send()
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn data_dir_is_created_when_missing() {
    let temp = support::temp_dir();
    let nested = temp.path().join("a/b/c");
    let server = support::spawn_in(&nested, &[]);
    let response = client()
        .get(server.url("/api/health/ready"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert!(nested.join("toolshed.db").exists());
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_exits_1_naming_the_dir_and_the_holder() {
    let first = support::spawn();
    let output = Command::new(support::binary())
        .env_clear()
        .env("PORT", "0")
        .env("TOOLSHED_DATA_DIR", &first.data_dir)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&first.data_dir.display().to_string())
            && stderr.contains(&format!("pid {}", first.child.id())),
        "{stderr}"
    );
    // The first one still serves.
    assert_eq!(first.get("/api/health").await.status(), 200);
}

#[tokio::test]
async fn a_query_parameter_no_route_knows_is_400_naming_it() {
    let server = spawn();
    for path in [
        "/api/kv/list?prefx=users",
        "/api/queue/tasks?stauts=dead",
        "/api/ai/llm/models?serch=gpt",
        "/api/ai/url2text?url=https%3A%2F%2Fexample.com&selectr=main",
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.expect("json");
        let named = path
            .rsplit('&')
            .next()
            .and_then(|p| p.split('?').next_back());
        let name = named.and_then(|p| p.split('=').next()).expect("name");
        assert!(
            body["error"].as_str().expect("error").contains(name),
            "{path}: {body}"
        );
    }
    let response = client()
        .put(server.url("/api/kv/entries/a?expire_in=1000"))
        .header("content-type", "application/octet-stream")
        .body("x")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400, "a raw write with a misspelt expiry");
}
