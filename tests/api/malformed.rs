//! Hostile input at every route of the spec, with and without tokens: broken and deeply
//! nested JSON, invalid UTF-8 in paths and bodies, traversal in keys, wrong methods, huge and
//! many headers, garbage request lines. Only 4xx may come back, never a 5xx or a silent
//! close, and the server stays up.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, TestServer};

const TOKEN: &str = "malformed-test-token-0123456789";
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// The status of the answer to one raw request (`Connection: close`), or `None` when the
/// server closed without one.
fn status_of(server: &TestServer, request: &[u8]) -> Option<u16> {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // The server may answer and close before it has read everything (a flood of headers):
    // what it said is still in the socket.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn request(method: &str, path: &[u8], token: bool, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} ").into_bytes();
    r.extend_from_slice(path);
    r.extend_from_slice(b" HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    if token {
        r.extend_from_slice(format!("authorization: Bearer {TOKEN}\r\n").as_bytes());
    }
    r.extend_from_slice(headers.as_bytes());
    r.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    r.extend_from_slice(body);
    r
}

/// A concrete path for a spec path: each `{param}` filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|part| match part {
            p if p.starts_with("{*") => "fuzz/key".to_owned(),
            p if p.starts_with('{') => "fuzz".to_owned(),
            p => p.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn bad_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let depth = 20_000;
    let mut deep = "[".repeat(depth).into_bytes();
    deep.extend("]".repeat(depth).into_bytes());
    let mut deep_objects = br#"{"a":"#.repeat(depth);
    deep_objects.extend(b"1");
    deep_objects.extend("}".repeat(depth).into_bytes());
    vec![
        ("truncated JSON", b"{\"value\": ".to_vec()),
        ("not JSON", b"hello there".to_vec()),
        ("deeply nested arrays", deep),
        ("deeply nested objects", deep_objects),
        ("invalid UTF-8", b"{\"value\": \"\xff\xfe\xfd\"}".to_vec()),
        ("a lone surrogate", br#"{"value": "\ud800"}"#.to_vec()),
    ]
}

fn assert_4xx(server: &TestServer, what: &str, request: &[u8]) -> usize {
    let status = status_of(server, request);
    assert!(
        matches!(status, Some(400..=499)),
        "{what}: got {status:?}, want a 4xx\n{}",
        String::from_utf8_lossy(&request[..request.len().min(300)])
    );
    1
}

async fn hammer(server: &TestServer, token: bool) {
    let spec: Value = support::client()
        .get(server.url("/openapi.json"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("spec")
        .json()
        .await
        .expect("json");
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.len() > 15, "the spec lists every route");
    let mut sent = 0;
    for (spec_path, item) in paths {
        let path = concrete(spec_path);
        let declared: Vec<String> = item
            .as_object()
            .expect("path item")
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        for method in &declared {
            let takes_body = item[method.to_lowercase()]["requestBody"].is_object();
            if !takes_body {
                continue;
            }
            for (what, body) in bad_bodies() {
                let r = request(
                    method,
                    path.as_bytes(),
                    token,
                    "content-type: application/json\r\n",
                    &body,
                );
                sent += assert_4xx(server, &format!("{method} {path} with {what}"), &r);
            }
        }
        for method in METHODS
            .iter()
            .filter(|m| !declared.contains(&m.to_string()))
        {
            let r = request(method, path.as_bytes(), token, "", b"");
            sent += assert_4xx(server, &format!("{method} {path} (not declared)"), &r);
        }
        // Invalid UTF-8, raw and percent-encoded, where a parameter goes (or at the end).
        let mut raw = spec_path
            .split('{')
            .next()
            .unwrap_or("")
            .as_bytes()
            .to_vec();
        raw.extend_from_slice(b"\xff\xfe/x");
        let method = declared.first().map(String::as_str).unwrap_or("GET");
        sent += assert_4xx(
            server,
            &format!("{method} {spec_path} with raw bytes"),
            &request(method, &raw, token, "", b""),
        );
    }
    for key in [
        "../../../../etc/passwd",
        "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "..%2f..%2f..%2fetc%2fpasswd",
        "%ff%fe",
        "a/%00/b",
        "%",
        "%zz",
    ] {
        let path = format!("/api/kv/entries/{key}");
        let status = status_of(server, &request("GET", path.as_bytes(), token, "", b""));
        assert!(matches!(status, Some(400..=499)), "GET {path}: {status:?}");
    }
    // Headers: one huge, then very many.
    let huge = format!("x-huge: {}\r\n", "a".repeat(256 * 1024));
    assert_4xx(
        server,
        "a 256 KiB header",
        &request("GET", b"/api/kv/entries/a", token, &huge, b""),
    );
    let many: String = (0..2000).map(|i| format!("x-h{i}: v\r\n")).collect();
    assert_4xx(
        server,
        "2000 headers",
        &request("GET", b"/api/kv/entries/a", token, &many, b""),
    );
    assert_4xx(server, "a garbage request line", b"GARBAGE\r\n\r\n");
    // (An HTTP/2 preface is not here: hyper's HTTP/1 server closes such a connection without
    // an answer, as there is no HTTP/1 answer an HTTP/2 client would read.)
    assert!(sent > 100, "only {sent} requests went out");
    // Still up, still answering.
    let health = support::client()
        .get(server.url("/api/health"))
        .send()
        .await
        .expect("health after the barrage");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn malformed_requests_get_4xx_and_the_server_stays_up_without_tokens() {
    let server = support::spawn();
    hammer(&server, false).await;
}

#[tokio::test]
async fn malformed_requests_get_4xx_and_the_server_stays_up_with_tokens() {
    let server = support::spawn_with(&[("TOOLSHED_API_TOKENS", TOKEN)]);
    // With the token, and without it (401 before anything else is looked at).
    hammer(&server, true).await;
    hammer(&server, false).await;
}
