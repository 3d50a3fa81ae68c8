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
