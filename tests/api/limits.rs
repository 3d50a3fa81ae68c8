//! What an exposed server needs against slow, idle, oversized and self-referring clients:
//! header timeout, connection cap with health kept answerable, body limits checked before
//! and while a body arrives, JSON errors, url2text refusing to fetch itself. Counts are
//! small and bounded; everything runs on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, TestServer};

/// The address of a server, for raw sockets.
fn addr(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Sends raw bytes and reads what comes back until the server closes or `within` passes.
fn raw(server: &TestServer, request: &[u8], within: Duration) -> (String, bool) {
    let mut stream = TcpStream::connect(addr(server)).expect("connect");
    stream.set_read_timeout(Some(within)).expect("timeout");
    stream.write_all(request).expect("write");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break true,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

/// The JSON body of a raw HTTP/1.1 answer.
fn json_body(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"))
}

#[tokio::test]
async fn a_declared_length_over_the_limit_gets_413_json_at_once() {
    let server = support::spawn_with(&[("TOOLSHED_BODY_LIMIT_BYTES", "4096")]);
    for path in [
        "/api/ai/url2text",
        "/api/kv/atomic",
        "/api/queue/tasks",
        "/api/ai/llm",
    ] {
        let started = Instant::now();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
        );
        let (answer, _) = raw(&server, head.as_bytes(), Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert_eq!(json_body(&answer)["code"], "payload_too_large", "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{path}: answered at once"
        );
    }
}

#[tokio::test]
async fn a_body_of_unknown_length_is_refused_as_soon_as_it_passes_the_limit() {
    let server = support::spawn_with(&[("TOOLSHED_BODY_LIMIT_BYTES", "4096")]);
    // 16 KiB of a chunked body, and then nothing: the answer must not wait for the end.
    let mut request = b"POST /api/ai/url2text HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        request.extend_from_slice(b"1000\r\n");
        request.extend_from_slice(&[b' '; 4096]);
        request.extend_from_slice(b"\r\n");
    }
    let (answer, _) = raw(&server, &request, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "payload_too_large");
}

#[tokio::test]
async fn kv_routes_honour_the_value_limit_with_json_errors() {
    let server = support::spawn_with(&[
        ("TOOLSHED_BODY_LIMIT_BYTES", "4096"),
        ("TOOLSHED_KV_MAX_VALUE_BYTES", "2048"),
    ]);
    let put = |size: usize| {
        support::client()
            .put(server.url("/api/kv/entries/big"))
            .header("content-type", "application/octet-stream")
            .body(vec![7u8; size])
            .send()
    };
    // Past the route's limit (the value limit plus 64 KiB of wrapping): refused unread.
    let response = put(200 * 1024).await.expect("send");
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(body["code"], "payload_too_large");
    // Within the route's limit, past the value limit: refused by the store.
    let response = put(3000).await.expect("send");
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("a JSON error");
    assert!(
        body["error"].as_str().expect("error").contains("2048"),
        "{body}"
    );
    assert_eq!(put(2000).await.expect("send").status(), 200);
}

#[tokio::test]
async fn half_sent_headers_and_idle_connections_are_closed() {
    let server = support::spawn_with(&[("TOOLSHED_HEADER_TIMEOUT_S", "1")]);
    let started = Instant::now();
    let (answer, closed) = raw(
        &server,
        b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n",
        Duration::from_secs(5),
    );
    assert!(closed, "the half-sent request is cut off: {answer:?}");
    assert!(started.elapsed() < Duration::from_secs(4));

    // A kept-alive connection that goes quiet after its answer is closed too.
    let started = Instant::now();
    let (answer, closed) = raw(
        &server,
        b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "the idle connection is closed");
    let waited = started.elapsed();
    // The reaper looks four times a second: the limit holds to a quarter of a second.
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_large_answer_read_slowly_is_not_cut_off_as_idle() {
    let server = support::spawn_with(&[
        ("TOOLSHED_HEADER_TIMEOUT_S", "1"),
        ("TOOLSHED_KV_MAX_VALUE_BYTES", "16777216"),
    ]);
    put_16_mib(&server).await;
    let mut stream = TcpStream::connect(addr(&server)).expect("connect");
    stream
        .write_all(
            b"GET /api/kv/entries/big HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // About 5 MB/s: the answer takes four seconds to read, four times the header timeout.
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) => panic!("cut off after {} bytes: {e}", answer.len()),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(started.elapsed() > Duration::from_secs(2));
    let answer = String::from_utf8(answer).expect("utf-8");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).expect("body"))
        .expect("the whole JSON answer");
    assert_eq!(body["value"].as_str().map(str::len), Some(22_369_624));
}

/// Stores 16 MiB of bytes at `big`.
async fn put_16_mib(server: &TestServer) {
    let response = support::client()
        .put(server.url("/api/kv/entries/big"))
        .header("content-type", "application/octet-stream")
        .body(vec![b'x'; 16 << 20])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_client_that_stops_reading_an_answer_is_disconnected() {
    let server = support::spawn_with(&[
        ("TOOLSHED_HEADER_TIMEOUT_S", "1"),
        ("TOOLSHED_KV_MAX_VALUE_BYTES", "16777216"),
    ]);
    put_16_mib(&server).await;
    // The answer (about 22 MB of base64 in JSON) is far more than the socket buffers hold.
    let mut stream = TcpStream::connect(addr(&server)).expect("connect");
    stream
        .write_all(b"GET /api/kv/entries/big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut received = 0usize;
    let mut buffer = vec![0u8; 1 << 16];
    let ended = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break "closed",
            Ok(n) => received += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break "reset",
            Err(e) => panic!("the connection was left open ({e}) after {received} bytes"),
        }
    };
    assert!(
        received < 20 << 20,
        "{ended} after {received} bytes: the whole answer was kept for a client that did not read"
    );
    // The slot is free again: the server answers.
    assert_eq!(server.get("/api/health").await.status(), 200);
}

#[tokio::test]
async fn past_the_connection_cap_idle_connections_make_room() {
    let server = support::spawn_with(&[("TOOLSHED_MAX_CONNECTIONS", "4")]);
    // Four idle connections take every slot.
    let mut idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(addr(&server)).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for path in ["/api/health", "/api/kv/list", "/api/queue/stats"] {
        let started = Instant::now();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let (answer, _) = raw(&server, request.as_bytes(), Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        assert!(started.elapsed() < Duration::from_secs(2), "{path} waited");
    }
    // The oldest idle connections were closed to make room.
    let mut closed = 0;
    for stream in &mut idle {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        if matches!(stream.read(&mut [0u8; 16]), Ok(0)) {
            closed += 1;
        }
    }
    assert!(closed >= 1, "no idle connection was closed");
}

#[tokio::test]
async fn past_the_connection_cap_with_every_slot_busy_health_still_answers() {
    // A page that never answers keeps two url2text requests busy, in both slots.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let page = format!("http://{}/slow", silent.local_addr().expect("addr"));
    let server = support::spawn_with(&[
        ("TOOLSHED_MAX_CONNECTIONS", "2"),
        ("TOOLSHED_OUTBOUND_ALLOW_PRIVATE", "true"),
    ]);
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let url = server.url("/api/ai/url2text");
            let page = page.clone();
            tokio::spawn(async move {
                let _ = support::client()
                    .get(url)
                    .query(&[("url", page.as_str()), ("cache", "false")])
                    .send()
                    .await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let (answer, closed) = raw(
        &server,
        b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "a reserve connection answers once");
    assert!(started.elapsed() < Duration::from_secs(2));
    let (answer, _) = raw(
        &server,
        b"GET /api/kv/list HTTP/1.1\r\nHost: localhost\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "too_many_connections");
    for request in busy {
        request.abort();
    }
    drop(silent);
}

#[tokio::test]
async fn url2text_refuses_to_fetch_itself() {
    let server = support::spawn_with(&[("TOOLSHED_OUTBOUND_ALLOW_PRIVATE", "true")]);
    let inner = format!(
        "{}/api/ai/url2text?url=http%3A%2F%2Fexample.invalid%2F",
        server.base
    );
    let response = support::client()
        .get(server.url("/api/ai/url2text"))
        .query(&[("url", inner.as_str()), ("cache", "false")])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error"].as_str().expect("error").contains("508"),
        "the inner request was refused as a loop: {body}"
    );
    assert_eq!(server.get("/api/health").await.status(), 200);
}
