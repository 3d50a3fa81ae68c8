//! Access control: bearer tokens from the environment and a file (re-read on SIGHUP), the
//! probes that need none, the start refused where an instance would be open, and the `Host`
//! check of an instance without tokens.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, TestServer};

const TOKEN: &str = "test-token-0123456789";

async fn get_with(server: &TestServer, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = support::client().get(server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("send")
}

#[tokio::test]
async fn every_route_but_the_probes_needs_a_known_token() {
    let server = support::spawn_with(&[("TOOLSHED_API_TOKENS", TOKEN)]);
    for path in [
        "/api/kv/list",
        "/openapi.json",
        "/reference",
        "/api/no-such-route",
    ] {
        for token in [None, Some("wrong-token-0123456789")] {
            let response = get_with(&server, path, token).await;
            assert_eq!(response.status(), 401, "{path} with {token:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = response.json().await.expect("JSON");
            assert_eq!(body["code"], "unauthorized");
        }
    }
    assert_eq!(
        get_with(&server, "/api/kv/list", Some(TOKEN))
            .await
            .status(),
        200
    );
    assert_eq!(
        get_with(&server, "/openapi.json", Some(TOKEN))
            .await
            .status(),
        200
    );
    assert_eq!(get_with(&server, "/api/health", None).await.status(), 200);
    assert_eq!(
        get_with(&server, "/api/health/ready", None).await.status(),
        200
    );
    // The log names the token by its fingerprint, never by itself.
    let line = server.wait_for_log(|l| {
        l["message"] == "request" && l["path"] == "/openapi.json" && l["status"] == 200
    });
    assert!(
        line["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("tok_") && t.len() == 12),
        "{line}"
    );
    let logs = server.logs.lock().expect("logs").join("\n");
    assert!(!logs.contains(TOKEN), "the token itself is never logged");
}

#[test]
fn an_exposed_instance_without_tokens_refuses_to_start() {
    for env in [
        vec![("HOST", "0.0.0.0"), ("ENV", "development")],
        vec![("HOST", "127.0.0.1"), ("ENV", "production")],
    ] {
        let dir = support::temp_dir();
        let output = Command::new(support::binary())
            .env_clear()
            .env("PORT", "0")
            .env("TOOLSHED_DATA_DIR", dir.path())
            .envs(env.iter().copied())
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(1), "{env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("TOOLSHED_API_TOKENS") && stderr.contains("TOOLSHED_API_TOKENS_FILE"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn a_development_instance_without_tokens_warns_and_answers_only_its_own_host() {
    let server = support::spawn();
    server.wait_for_log(|l| {
        l["level"] == "WARN"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("no API token"))
    });
    assert_eq!(server.get("/api/kv/list").await.status(), 200);
    let rebound = support::client()
        .get(server.url("/api/kv/list"))
        .header("host", "attacker.example:8000")
        .send()
        .await
        .expect("send");
    assert_eq!(rebound.status(), 421);
    let body: Value = rebound.json().await.expect("JSON");
    assert_eq!(body["code"], "foreign_host");
    let localhost = support::client()
        .get(server.url("/api/kv/list"))
        .header("host", "localhost:8000")
        .send()
        .await
        .expect("send");
    assert_eq!(localhost.status(), 200);
}

#[tokio::test]
async fn the_tokens_file_is_read_again_on_sighup_and_a_bad_one_keeps_the_old_set() {
    let dir = support::temp_dir();
    let file = dir.path().join("tokens");
    std::fs::write(&file, "# laptop\nfirst-token-0123456789\n").expect("write");
    let server = support::spawn_with(&[("TOOLSHED_API_TOKENS_FILE", file.to_str().expect("path"))]);
    assert_eq!(
        get_with(&server, "/api/kv/list", Some("first-token-0123456789"))
            .await
            .status(),
        200
    );

    std::fs::write(&file, "second-token-0123456789\n").expect("write");
    server.signal("HUP");
    server.wait_for_log(|l| l["message"] == "API tokens reloaded");
    assert_eq!(
        get_with(&server, "/api/kv/list", Some("second-token-0123456789"))
            .await
            .status(),
        200
    );
    assert_eq!(
        get_with(&server, "/api/kv/list", Some("first-token-0123456789"))
            .await
            .status(),
        401
    );

    std::fs::write(&file, "short\n").expect("write");
    server.signal("HUP");
    server.wait_for_log(|l| l["message"] == "API tokens not reloaded; the old set stays");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        get_with(&server, "/api/kv/list", Some("second-token-0123456789"))
            .await
            .status(),
        200
    );
}

/// What the log and a task's `created_by` call `token`.
fn fingerprint(token: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(token.as_bytes());
    let hex: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("tok_{hex}")
}

async fn post_with(server: &TestServer, path: &str, body: &Value, token: &str) -> (u16, Value) {
    let response = support::client()
        .post(server.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// The task once it has succeeded or died.
async fn settled(server: &TestServer, id: &Value, token: &str) -> Value {
    for _ in 0..400 {
        let response = get_with(server, &format!("/api/queue/tasks/{id}"), Some(token)).await;
        let task: Value = response.json().await.expect("JSON");
        if task["status"] == "succeeded" || task["status"] == "dead" {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {id} never settled");
}

fn put_task(key: &str, delay_ms: u64) -> Value {
    serde_json::json!({
        "payload": {"method": "PUT", "path": format!("/api/kv/entries/{key}"), "body": {"value": 1}},
        "delay_ms": delay_ms,
        "max_attempts": 1,
    })
}

#[tokio::test]
async fn tasks_run_with_the_rights_of_the_caller_that_enqueued_them() {
    const ADA: &str = "ada-token-0123456789";
    const BOB: &str = "bob-token-0123456789";
    let dir = support::temp_dir();
    let file = dir.path().join("tokens");
    std::fs::write(&file, format!("{ADA}\n{BOB}\n")).expect("write");
    let server = support::spawn_with(&[("TOOLSHED_API_TOKENS_FILE", file.to_str().expect("path"))]);

    let (status, now) = post_with(&server, "/api/queue/tasks", &put_task("now", 0), ADA).await;
    assert_eq!(status, 202, "{now}");
    let done = settled(&server, &now["id"], ADA).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["created_by"], fingerprint(ADA));
    // An enqueue from KV's atomic operations records its caller too.
    let atomic = serde_json::json!({"enqueues": [put_task("atomic", 0)]});
    let (status, applied) = post_with(&server, "/api/kv/atomic", &atomic, BOB).await;
    assert_eq!(status, 200, "{applied}");
    let done = settled(&server, &applied["task_ids"][0], BOB).await;
    assert_eq!(
        (done["status"].as_str(), done["created_by"].as_str()),
        (Some("succeeded"), Some(fingerprint(BOB).as_str()))
    );

    // Ada's token is revoked before her delayed task runs: it runs with no rights.
    let (_, later) = post_with(&server, "/api/queue/tasks", &put_task("later", 1500), ADA).await;
    std::fs::write(&file, format!("{BOB}\n")).expect("write");
    server.signal("HUP");
    server.wait_for_log(|l| l["message"] == "API tokens reloaded");
    let dead = settled(&server, &later["id"], BOB).await;
    assert_eq!(dead["status"], "dead", "{dead}");
    assert!(
        dead["last_error"].as_str().expect("error").contains("401"),
        "{dead}"
    );
    let entry = get_with(&server, "/api/kv/entries/later", Some(BOB)).await;
    assert_eq!(
        entry.status(),
        404,
        "the revoked caller's write never happened"
    );

    // A task cannot carry a token of its own choosing.
    let mut smuggled = put_task("smuggled", 0);
    smuggled["payload"]["headers"] = serde_json::json!({"Authorization": format!("Bearer {BOB}")});
    let (status, body) = post_with(&server, "/api/queue/tasks", &smuggled, ADA).await;
    assert_eq!(status, 401, "Ada's token is gone: {body}");
    let (status, body) = post_with(&server, "/api/queue/tasks", &smuggled, BOB).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("authorization")
    );
}

#[tokio::test]
async fn a_task_enqueued_without_a_token_cannot_run_once_there_are_tokens() {
    let dir = support::temp_dir();
    let mut open = support::spawn_in(dir.path(), &[]);
    let response = open
        .post_json("/api/queue/tasks", &put_task("open", 2000))
        .await;
    assert_eq!(response.status(), 202);
    let id: Value = response.json::<Value>().await.expect("JSON")["id"].clone();
    open.signal("TERM");
    assert_eq!(open.wait_exit(Duration::from_secs(10)), Some(0));
    drop(open);

    let server = support::spawn_in(dir.path(), &[("TOOLSHED_API_TOKENS", TOKEN)]);
    let dead = settled(&server, &id, TOKEN).await;
    assert_eq!(dead["status"], "dead", "{dead}");
    assert_eq!(dead["created_by"], Value::Null);
    assert!(
        dead["last_error"].as_str().expect("error").contains("401"),
        "{dead}"
    );
}

async fn preflight(server: &TestServer, origin: &str) -> reqwest::Response {
    support::client()
        .request(reqwest::Method::OPTIONS, server.url("/api/kv/list"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn cors_is_off_unless_origins_are_named_and_then_answers_preflights_without_a_token() {
    let off = support::spawn_with(&[("TOOLSHED_API_TOKENS", TOKEN)]);
    let response = preflight(&off, "https://app.example.com").await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(
        response.status(),
        401,
        "no CORS: a preflight is just a request"
    );

    let server = support::spawn_with(&[
        ("TOOLSHED_API_TOKENS", TOKEN),
        (
            "TOOLSHED_CORS_ORIGINS",
            "https://app.example.com, http://localhost:5173",
        ),
    ]);
    let response = preflight(&server, "https://app.example.com").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .expect("ascii");
    assert!(allowed.contains("authorization"), "{allowed}");
    let methods = headers["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    assert!(
        methods.contains("PUT") && methods.contains("DELETE"),
        "{methods}"
    );
    let other = preflight(&server, "https://evil.example").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // The real request, refused or not, tells the page what it may read.
    for token in [None, Some(TOKEN)] {
        let mut request = support::client()
            .get(server.url("/api/kv/list"))
            .header("origin", "http://localhost:5173");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("send");
        assert_eq!(response.status(), if token.is_some() { 200 } else { 401 });
        let headers = response.headers();
        assert_eq!(
            headers["access-control-allow-origin"],
            "http://localhost:5173"
        );
        let exposed = headers["access-control-expose-headers"]
            .to_str()
            .expect("ascii");
        assert!(exposed.contains("x-request-id"), "{exposed}");
    }

    let any = support::spawn_with(&[("TOOLSHED_CORS_ORIGINS", "*")]);
    let response = preflight(&any, "https://anywhere.example").await;
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[test]
fn a_cors_origin_with_a_path_is_refused_at_start() {
    let dir = support::temp_dir();
    let output = Command::new(support::binary())
        .env_clear()
        .env("PORT", "0")
        .env("ENV", "test")
        .env("TOOLSHED_DATA_DIR", dir.path())
        .env("TOOLSHED_CORS_ORIGINS", "https://app.example.com/path")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("TOOLSHED_CORS_ORIGINS"));
}

#[tokio::test]
async fn each_token_has_its_own_rate_limit_and_the_probes_none() {
    const OTHER: &str = "other-token-0123456789";
    let server = support::spawn_with(&[
        ("TOOLSHED_API_TOKENS", &format!("{TOKEN},{OTHER}")),
        ("TOOLSHED_RATE_LIMIT_PER_MINUTE", "6"),
        ("TOOLSHED_RATE_LIMIT_BURST", "2"),
    ]);
    for _ in 0..2 {
        assert_eq!(
            get_with(&server, "/api/kv/list", Some(TOKEN))
                .await
                .status(),
            200
        );
    }
    let limited = get_with(&server, "/api/kv/list", Some(TOKEN)).await;
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=10).contains(&wait), "{wait}");
    let body: Value = limited.json().await.expect("JSON");
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(
        get_with(&server, "/api/kv/list", Some(OTHER))
            .await
            .status(),
        200
    );
    for _ in 0..5 {
        assert_eq!(get_with(&server, "/api/health", None).await.status(), 200);
    }
    let line = server.wait_for_log(|l| l["message"] == "request" && l["status"] == 429);
    assert_eq!(
        line["token"],
        fingerprint(TOKEN),
        "the log says whose budget ran out"
    );
}
