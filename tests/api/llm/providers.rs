//! The LLM gateway against mock Anthropic and Gemini servers (their documented formats,
//! streams split across reads), plus prefill and system-prompt handling.

use crate::support;
use crate::support::mock_llm;

use crate::support::spawn_with;
use serde_json::{Value, json};

async fn ndjson(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    response
        .text()
        .await
        .expect("body")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn anthropic(mock: &mock_llm::Mock) -> support::TestServer {
    spawn_with(&[
        ("ANTHROPIC_BASE_URL", &mock.url),
        ("ANTHROPIC_API_KEY", "ant-key"),
    ])
}

fn gemini(mock: &mock_llm::Mock) -> support::TestServer {
    spawn_with(&[
        ("GEMINI_BASE_URL", &mock.url),
        ("GEMINI_API_KEY", "gem-key"),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_whole_answer_translates_both_ways() {
    let mock = mock_llm::start().await;
    let server = anthropic(&mock);
    let response = server.post_json("/api/ai/llm", &json!({
            "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey."},
                         {"role": "user", "content": "Again"}, {"role": "user", "content": "please"}],
            "system": "Be terse.",
            "model": "claude-haiku-4-5",
            "stop_token": ["END", "STOP"],
        }))
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-model"],
        "anthropic:claude-haiku-4-5-20251001"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"role": "assistant", "content": "Hello"}));
    let sent = mock.last();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], "ant-key");
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        sent.body,
        json!({
            "model": "claude-haiku-4-5-20251001",
            "max_tokens": 4096,
            "system": "Be terse.",
            "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey."},
                         {"role": "user", "content": "Again\n\nplease"}],
            "stop_sequences": ["END", "STOP"],
        }),
        "system at the top, consecutive user turns merged, max_tokens always sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_event_stream_becomes_ndjson() {
    let mock = mock_llm::start_with(mock_llm::Script {
        deltas: vec!["Hel".into(), "lo".into(), " there".into()],
        ..Default::default()
    })
    .await;
    let server = anthropic(&mock);
    let lines = ndjson(
        server.post_json("/api/ai/llm", &json!({"messages": [{"role": "user", "content": "Hi"}], "model": "claude-sonnet-4-5", "stream": true}))
        .await,
    )
    .await;
    assert_eq!(lines, vec![json!("Hel"), json!("lo"), json!(" there")]);
    assert_eq!(mock.last().body["stream"], true);
    let line = server.wait_for_log(|l| l["message"] == "llm answer");
    assert_eq!(line["input_tokens"], 11);
    assert_eq!(line["output_tokens"], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_prefill_is_continued_and_returned_whole() {
    let mock = mock_llm::start_with(mock_llm::Script {
        deltas: vec!["B) ".into(), "Helios".into()],
        ..Default::default()
    })
    .await;
    let server = anthropic(&mock);
    let messages = json!([
        {"role": "user", "content": "Greek name for Sun? (A) Sol (B) Helios"},
        {"role": "assistant", "content": "The answer is ("}
    ]);
    let response = server
        .post_json(
            "/api/ai/llm",
            &json!({"messages": messages, "model": "claude-haiku-4-5"}),
        )
        .await;
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["content"], "The answer is (B) Helios");
    assert_eq!(
        mock.last().body["messages"],
        messages,
        "the prefill is sent as is"
    );

    let lines = ndjson(
        server.post_json("/api/ai/llm", &json!({"messages": messages, "model": "claude-haiku-4-5", "stream": true, "cache": false}))
        .await,
    )
    .await;
    assert_eq!(
        lines,
        vec![json!("The answer is ("), json!("B) "), json!("Helios")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_without_prefill_get_it_emulated() {
    let mock = mock_llm::start().await;
    let server = spawn_with(&[
        ("OPENAI_BASE_URL", &format!("{}/v1", mock.url)),
        ("OPENAI_API_KEY", "k"),
    ]);
    let response = server.post_json("/api/ai/llm", &json!({"messages": [{"role": "user", "content": "Count"}, {"role": "assistant", "content": "1, 2, "}],
               "model": "gpt-4o-mini"}))
    .await;
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["content"], "1, 2,Hello",
        "the prefill loses its trailing space"
    );
    let sent = mock.last().body["messages"].clone();
    assert_eq!(sent[1], json!({"role": "assistant", "content": "1, 2,"}));
    assert_eq!(
        sent[2]["role"], "user",
        "an instruction to continue follows: {sent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_whole_answer_translates_both_ways() {
    let mock = mock_llm::start().await;
    let server = gemini(&mock);
    let response = server.post_json("/api/ai/llm", &json!({
            "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey."},
                         {"role": "user", "content": "Again"}],
            "system": "Be terse.",
            "model": "gemini-2.5-flash",
            "max_tokens": 64,
            "stop_token": "END",
        }))
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"role": "assistant", "content": "Hello"}));
    let sent = mock.last();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.headers["x-goog-api-key"], "gem-key");
    assert_eq!(
        sent.body,
        json!({
            "systemInstruction": {"parts": [{"text": "Be terse."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hey."}]},
                {"role": "user", "parts": [{"text": "Again"}]}
            ],
            "generationConfig": {"maxOutputTokens": 64, "stopSequences": ["END"]}
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_sse_chunks_become_ndjson() {
    let mock = mock_llm::start_with(mock_llm::Script {
        deltas: vec!["Hel".into(), "lo".into(), "!".into()],
        ..Default::default()
    })
    .await;
    let server = gemini(&mock);
    let lines = ndjson(
        server.post_json("/api/ai/llm", &json!({"messages": [{"role": "user", "content": "Hi"}], "model": "gemini:gemini-2.5-pro", "stream": true}))
        .await,
    )
    .await;
    assert_eq!(lines, vec![json!("Hel"), json!("lo"), json!("!")]);
    let sent = mock.last();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    );
    assert_eq!(sent.query, "alt=sse");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_errors_in_each_format_are_502_with_the_message() {
    let mock = mock_llm::start_with(mock_llm::Script {
        fail_first: 100,
        fail_status: 403,
        ..Default::default()
    })
    .await;
    let server = spawn_with(&[
        ("ANTHROPIC_BASE_URL", &mock.url),
        ("ANTHROPIC_API_KEY", "k"),
        ("GEMINI_BASE_URL", &mock.url),
        ("GEMINI_API_KEY", "k"),
    ]);
    for model in ["claude-haiku-4-5", "gemini-2.5-flash"] {
        let response = server
            .post_json(
                "/api/ai/llm",
                &json!({"messages": [{"role": "user", "content": "Hi"}], "model": model}),
            )
            .await;
        assert_eq!(response.status(), 502);
        let body: Value = response.json().await.expect("json");
        let error = body["error"].as_str().expect("error");
        assert!(
            error.contains("403") && error.contains("mock failure 403"),
            "{error}"
        );
    }
}
