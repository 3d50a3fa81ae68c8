//! The LLM gateway's cache, retries, fallbacks, timeouts and cancellation, against mock
//! providers that count their calls.

use crate::support;
use crate::support::mock_llm;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::{client, spawn_with};
use futures_util::StreamExt;
use mock_llm::Script;
use serde_json::{Value, json};

/// A deterministic request (temperature 0), which the cache keeps by default.
fn ask(stream: bool) -> Value {
    json!({"messages": [{"role": "user", "content": "Hi"}], "model": "gpt-4o-mini", "stream": stream, "temperature": 0})
}

fn openai(mock: &mock_llm::Mock, extra: &[(&str, &str)]) -> support::TestServer {
    let base = format!("{}/v1", mock.url);
    let mut env = vec![("OPENAI_BASE_URL", base.as_str()), ("OPENAI_API_KEY", "k")];
    env.extend_from_slice(extra);
    spawn_with(&env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_is_served_from_the_cache() {
    let mock = mock_llm::start().await;
    let server = openai(&mock, &[]);
    let first = server.post_json("/api/ai/llm", &ask(false)).await;
    assert_eq!(first.headers()["x-cache"], "MISS");
    let first: Value = first.json().await.expect("json");
    let second = server.post_json("/api/ai/llm", &ask(false)).await;
    assert_eq!(second.headers()["x-cache"], "HIT");
    assert_eq!(second.json::<Value>().await.expect("json"), first);
    assert_eq!(mock.calls(), 1, "the provider saw no second call");
    // Later, from the store itself.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.post_json("/api/ai/llm", &ask(false)).await.headers()["x-cache"],
        "HIT"
    );
    assert_eq!(mock.calls(), 1);

    // Any change of the request is another entry; cache: false skips the cache.
    let mut other = ask(false);
    other["max_tokens"] = json!(5);
    assert_eq!(
        server.post_json("/api/ai/llm", &other).await.headers()["x-cache"],
        "MISS"
    );
    assert_eq!(mock.calls(), 2);
    let mut skip = ask(false);
    skip["cache"] = json!(false);
    assert_eq!(
        server.post_json("/api/ai/llm", &skip).await.headers()["x-cache"],
        "MISS"
    );
    assert_eq!(mock.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_deterministic_or_asked_for_answers_are_cached() {
    let mock = mock_llm::start().await;
    let server = openai(&mock, &[]);
    let sampled = json!({"messages": [{"role": "user", "content": "Hi"}], "model": "gpt-4o-mini", "temperature": 1.0});
    let unset = json!({"messages": [{"role": "user", "content": "Hi"}], "model": "gpt-4o-mini"});
    for body in [&sampled, &sampled, &unset, &unset] {
        let response = server.post_json("/api/ai/llm", body).await;
        assert_eq!(response.headers()["x-cache"], "MISS", "{body}");
    }
    assert_eq!(
        mock.calls(),
        4,
        "a sampled answer is no answer to the next request"
    );
    // Asked for, by header (either face) or by the body's cache field.
    let on = |path: &'static str, body: Value, value: &'static str| {
        let url = server.url(path);
        async move {
            client()
                .post(url)
                .header("x-toolshed-cache", value)
                .json(&body)
                .send()
                .await
                .expect("send")
        }
    };
    assert_eq!(
        on("/api/ai/llm", sampled.clone(), "on").await.headers()["x-cache"],
        "MISS"
    );
    assert_eq!(
        on("/api/ai/llm", sampled.clone(), "ON").await.headers()["x-cache"],
        "HIT"
    );
    let openai_body = json!({"messages": [{"role": "user", "content": "Hi"}], "model": "gpt-4o-mini", "temperature": 1.0});
    assert_eq!(
        on("/api/ai/llm/v1/chat/completions", openai_body, "on")
            .await
            .headers()["x-cache"],
        "HIT",
        "both faces share entries"
    );
    let mut asked = sampled.clone();
    asked["cache"] = json!(true);
    assert_eq!(
        server.post_json("/api/ai/llm", &asked).await.headers()["x-cache"],
        "HIT"
    );
    // Off beats the deterministic default; anything but on/off is refused by name.
    let calls = mock.calls();
    assert_eq!(
        on("/api/ai/llm", ask(false), "off").await.headers()["x-cache"],
        "MISS"
    );
    assert_eq!(mock.calls(), calls + 1);
    let bad = on("/api/ai/llm", ask(false), "sometimes").await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("X-Toolshed-Cache"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_stream_replays_as_a_stream() {
    let mock = mock_llm::start_with(Script {
        deltas: vec!["a".into(), "b".into(), "c".into()],
        ..Default::default()
    })
    .await;
    let server = openai(&mock, &[]);
    let first = server.post_json("/api/ai/llm", &ask(true)).await;
    assert_eq!(first.headers()["x-cache"], "MISS");
    let first = first.text().await.expect("body");
    assert_eq!(first, "\"a\"\n\"b\"\n\"c\"\n");
    let second = server.post_json("/api/ai/llm", &ask(true)).await;
    assert_eq!(second.headers()["x-cache"], "HIT");
    assert_eq!(second.headers()["content-type"], "application/x-ndjson");
    assert_eq!(second.text().await.expect("body"), first);
    let calls = mock.calls();
    // The same entry answers a whole request.
    let whole = server.post_json("/api/ai/llm", &ask(false)).await;
    assert_eq!(whole.headers()["x-cache"], "HIT");
    assert_eq!(whole.json::<Value>().await.expect("json")["content"], "abc");
    assert_eq!(mock.calls(), calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried() {
    let mock = mock_llm::start_with(Script {
        fail_first: 2,
        fail_status: 503,
        ..Default::default()
    })
    .await;
    let server = openai(&mock, &[("TOOLSHED_LLM_MAX_RETRIES", "2")]);
    let response = server.post_json("/api/ai/llm", &ask(false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(mock.calls(), 3);

    let mock = mock_llm::start_with(Script {
        fail_first: 100,
        fail_status: 429,
        ..Default::default()
    })
    .await;
    let server = openai(&mock, &[("TOOLSHED_LLM_MAX_RETRIES", "1")]);
    let response = server.post_json("/api/ai/llm", &ask(true)).await;
    // The native face retries a rate limit, then passes it on with the provider's wait.
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "upstream_rate_limited");
    assert!(
        body["error"].as_str().expect("error").contains("429"),
        "{body}"
    );
    assert_eq!(mock.calls(), 2, "one try and one retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallbacks_answer_when_the_first_model_fails() {
    let failing = mock_llm::start_with(Script {
        fail_first: 100,
        fail_status: 500,
        ..Default::default()
    })
    .await;
    let working = mock_llm::start_with(Script {
        deltas: vec!["from ".into(), "B".into()],
        ..Default::default()
    })
    .await;
    let base = format!("{}/v1", failing.url);
    let server = spawn_with(&[
        ("OPENAI_BASE_URL", &base),
        ("OPENAI_API_KEY", "k"),
        ("ANTHROPIC_BASE_URL", &working.url),
        ("ANTHROPIC_API_KEY", "k"),
        ("TOOLSHED_LLM_MAX_RETRIES", "1"),
    ]);
    for stream in [false, true] {
        let mut body = ask(stream);
        body["fallbacks"] = json!(["claude-haiku-4-5"]);
        body["cache"] = json!(false);
        let response = server.post_json("/api/ai/llm", &body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["x-model"],
            "anthropic:claude-haiku-4-5-20251001"
        );
        let text = response.text().await.expect("body");
        if stream {
            assert_eq!(text, "\"from \"\n\"B\"\n");
        } else {
            assert_eq!(text, r#"{"role":"assistant","content":"from B"}"#);
        }
    }
    assert_eq!(failing.calls(), 4, "two tries per request");
    assert_eq!(working.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_providers_time_out() {
    // Headers come at once, the first token only after 2.5 s: the TTFT limit (1 s) fires.
    let mock = mock_llm::start_with(Script {
        event_delay: Duration::from_millis(2500),
        ..Default::default()
    })
    .await;
    let server = openai(
        &mock,
        &[
            ("TOOLSHED_LLM_TTFT_TIMEOUT_S", "1"),
            ("TOOLSHED_LLM_MAX_RETRIES", "0"),
        ],
    );
    let started = Instant::now();
    let response = server.post_json("/api/ai/llm", &ask(true)).await;
    assert_eq!(response.status(), 504);
    assert!(
        started.elapsed() < Duration::from_millis(2400),
        "{:?}",
        started.elapsed()
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "upstream_timeout");
    assert!(body["error"].as_str().expect("e").contains("first token"));

    // A whole answer that takes longer than the total limit (1 s).
    let mock = mock_llm::start_with(Script {
        delay: Duration::from_millis(2500),
        ..Default::default()
    })
    .await;
    let server = openai(
        &mock,
        &[
            ("TOOLSHED_LLM_TIMEOUT_S", "1"),
            ("TOOLSHED_LLM_MAX_RETRIES", "0"),
        ],
    );
    let started = Instant::now();
    let response = server.post_json("/api/ai/llm", &ask(false)).await;
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_millis(2400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_cancels_the_upstream_call() {
    let mock = mock_llm::start_with(Script {
        endless: true,
        event_delay: Duration::from_millis(5),
        ..Default::default()
    })
    .await;
    let server = openai(&mock, &[]);
    let response = server.post_json("/api/ai/llm", &ask(true)).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut seen = Vec::new();
    while seen.len() < 20 {
        seen.extend_from_slice(&body.next().await.expect("more").expect("bytes"));
    }
    assert_eq!(
        mock.state.streams_closed.load(Ordering::SeqCst),
        0,
        "still streaming"
    );
    drop(body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while mock.state.streams_closed.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the upstream stream was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(mock.state.streams_finished.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_cancels_a_whole_answer_too() {
    let mock = mock_llm::start_with(Script {
        delay: Duration::from_secs(3),
        ..Default::default()
    })
    .await;
    let server = openai(&mock, &[]);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let result = impatient
        .post(server.url("/api/ai/llm"))
        .json(&ask(false))
        .send()
        .await;
    assert!(result.is_err(), "the client gave up");
    let deadline = Instant::now() + Duration::from_secs(2);
    while mock.state.calls_cancelled.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the upstream call was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_breaks_midway_ends_with_an_error_line_and_is_not_cached() {
    let mock = mock_llm::start_with(Script {
        deltas: vec!["a".into(), "b".into(), "c".into()],
        error_after: Some(2),
        ..Default::default()
    })
    .await;
    let server = openai(&mock, &[]);
    for _ in 0..2 {
        let response = server.post_json("/api/ai/llm", &ask(true)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-cache"], "MISS");
        let text = response.text().await.expect("body");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("line"))
            .collect();
        assert_eq!(lines[..2], [json!("a"), json!("b")]);
        assert_eq!(lines[2]["code"], "upstream_error");
        assert!(
            lines[2]["error"]
                .as_str()
                .expect("error")
                .contains("mock broke mid-stream")
        );
        assert_eq!(lines.len(), 3);
    }
    assert_eq!(mock.calls(), 2);

    // Broken before the first token: retried, then a 502.
    mock.set(Script {
        error_after: Some(0),
        ..Default::default()
    });
    let response = server.post_json("/api/ai/llm", &ask(true)).await;
    assert_eq!(response.status(), 502);
    assert_eq!(
        mock.calls(),
        2 + 3,
        "a stream error before any text is retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_error_event_reaches_the_openai_face() {
    let mock = mock_llm::start_with(Script {
        error_after: Some(1),
        ..Default::default()
    })
    .await;
    let server = spawn_with(&[
        ("ANTHROPIC_BASE_URL", &mock.url),
        ("ANTHROPIC_API_KEY", "k"),
    ]);
    let response = client()
        .post(server.url("/api/ai/llm/v1/chat/completions"))
        .json(&json!({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "Hi"}], "stream": true}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    assert!(text.contains(r#""content":"Hel""#), "{text}");
    let last: Value = serde_json::from_str(
        text.trim_end()
            .rsplit("\n\n")
            .next()
            .expect("event")
            .strip_prefix("data: ")
            .expect("data"),
    )
    .expect("json");
    let message = last["error"]["message"]
        .as_str()
        .expect("an OpenAI-style error");
    assert!(
        message.contains("Overloaded") && message.contains("anthropic"),
        "{message}"
    );
    assert!(!text.contains("[DONE]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_cannot_stream_answers_a_stream_in_one_piece() {
    let mock = mock_llm::start_with(Script {
        deltas: vec!["one ".into(), "piece".into()],
        ..Default::default()
    })
    .await;
    let dir = support::temp_dir();
    let file = dir.path().join("models.toml");
    std::fs::write(
        &file,
        format!(
            "[providers.plain]\nkind = \"openai\"\nbase_url = \"{}/v1\"\n\n[models.\"plain:m\"]\ncapabilities = {{ streaming = false }}\n",
            mock.url
        ),
    )
    .expect("write");
    let server = spawn_with(&[("TOOLSHED_LLM_MODELS", file.to_str().expect("path"))]);
    let response = server.post_json("/api/ai/llm", &json!({"messages": [{"role": "user", "content": "Hi"}], "model": "plain:m", "stream": true}))
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "\"one piece\"\n");
    assert_eq!(
        mock.last().body.get("stream"),
        None,
        "asked without streaming"
    );
    assert!(
        mock.last().headers.get("authorization").is_none(),
        "no key configured, none sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_expire_after_the_ttl() {
    let mock = mock_llm::start().await;
    let server = openai(&mock, &[("TOOLSHED_LLM_CACHE_TTL_S", "1")]);
    assert_eq!(
        server.post_json("/api/ai/llm", &ask(false)).await.headers()["x-cache"],
        "MISS"
    );
    assert_eq!(
        server.post_json("/api/ai/llm", &ask(false)).await.headers()["x-cache"],
        "HIT"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        server.post_json("/api/ai/llm", &ask(false)).await.headers()["x-cache"],
        "MISS"
    );
    assert_eq!(mock.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_retry_after_is_honoured_within_bounds() {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    // A provider that says "retry after 600 ms" once, then answers.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after-ms", "600")],
                        r#"{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
                    )
                        .into_response();
                }
                axum::Json(json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}))
                .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let server = spawn_with(&[("OPENAI_BASE_URL", &base), ("OPENAI_API_KEY", "k")]);
    let started = Instant::now();
    let response = server.post_json("/api/ai/llm", &ask(false)).await;
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_can_fall_back_to_a_model_that_cannot_stream() {
    let failing = mock_llm::start_with(Script {
        fail_first: 100,
        fail_status: 503,
        ..Default::default()
    })
    .await;
    let plain = mock_llm::start_with(Script {
        deltas: vec!["whole ".into(), "answer".into()],
        ..Default::default()
    })
    .await;
    let dir = support::temp_dir();
    let file = dir.path().join("models.toml");
    std::fs::write(
        &file,
        format!(
            "[providers.plain]\nkind = \"openai\"\nbase_url = \"{}/v1\"\n\n[models.\"plain:m\"]\ncapabilities = {{ streaming = false }}\n",
            plain.url
        ),
    )
    .expect("write");
    let base = format!("{}/v1", failing.url);
    let server = spawn_with(&[
        ("TOOLSHED_LLM_MODELS", file.to_str().expect("path")),
        ("OPENAI_BASE_URL", &base),
        ("OPENAI_API_KEY", "k"),
        ("TOOLSHED_LLM_MAX_RETRIES", "0"),
    ]);
    let mut body = ask(true);
    body["fallbacks"] = json!(["plain:m"]);
    let response = server.post_json("/api/ai/llm", &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-model"], "plain:m");
    assert_eq!(response.text().await.expect("body"), "\"whole answer\"\n");
    assert_eq!(failing.calls(), 1);
    assert_eq!(plain.last().body.get("stream"), None);
}
