//! The Anthropic-compatible face (`/api/ai/llm/v1/messages`): what an Anthropic SDK sends
//! and expects, answered by other providers to prove the translation.

use serde_json::{Value, json};

use crate::support::mock_llm::{self, Script};
use crate::support::{client, spawn_with};

const PATH: &str = "/api/ai/llm/v1/messages";

fn tools() -> Value {
    json!([{"name": "get_weather", "description": "The weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}])
}

/// The events of an Anthropic stream: (event name, data).
fn events(sse: &str) -> Vec<(String, Value)> {
    sse.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .expect("event name");
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data");
            (
                name.to_owned(),
                serde_json::from_str(data).expect("data JSON"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whole_and_streamed_from_any_provider() {
    let mock = mock_llm::start().await;
    let server = super::every_provider(&mock);
    for model in ["gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"] {
        let ask = json!({"model": model, "max_tokens": 64, "system": "Be brief.",
                         "messages": [{"role": "user", "content": "Hi"}], "stop_sequences": ["END"]});
        let response = server.post_json(PATH, &ask).await;
        assert_eq!(response.status(), 200, "{model}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["type"], "message");
        assert_eq!(body["role"], "assistant");
        assert!(body["id"].as_str().expect("id").starts_with("msg_"));
        assert_eq!(body["content"], json!([{"type": "text", "text": "Hello"}]));
        assert_eq!(body["stop_reason"], "end_turn");
        assert!(body["usage"]["input_tokens"].as_u64().expect("usage") > 0);

        let mut streamed = ask.clone();
        streamed["stream"] = json!(true);
        let response = server.post_json(PATH, &streamed).await;
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let events = events(&response.text().await.expect("text"));
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
        assert_eq!(names.last(), Some(&"message_stop"));
        assert!(names.contains(&"content_block_start") && names.contains(&"content_block_stop"));
        let text: String = events
            .iter()
            .filter_map(|(_, d)| d.pointer("/delta/text").and_then(Value::as_str))
            .collect();
        assert_eq!(text, "Hello", "{model}");
        let (_, delta) = &events[events.len() - 2];
        assert_eq!(delta["type"], "message_delta");
        assert_eq!(delta["delta"]["stop_reason"], "end_turn");
        assert!(delta["usage"]["output_tokens"].as_u64().expect("usage") > 0);
        for (name, data) in &events {
            assert_eq!(data["type"], *name, "each event names itself");
        }
    }
    // What reached OpenAI: the system prompt and stop sequence in its words.
    let sent = mock.requests_to("/v1/chat/completions");
    assert_eq!(
        sent[0]["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(sent[0]["stop"], json!(["END"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_use_round_trips_over_another_provider() {
    let mock = mock_llm::start_with(Script {
        deltas: vec!["Checking.".into()],
        tool_calls: vec![("get_weather".into(), r#"{"city": "Oslo"}"#.into())],
        ..Default::default()
    })
    .await;
    let server = super::every_provider(&mock);
    let ask = json!({"model": "gpt-4o-mini", "max_tokens": 64, "tools": tools(),
                     "tool_choice": {"type": "any"},
                     "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
    let body: Value = server
        .post_json(PATH, &ask)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(
        body["content"][0],
        json!({"type": "text", "text": "Checking."})
    );
    let call = &body["content"][1];
    assert_eq!(call["type"], "tool_use");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"], json!({"city": "Oslo"}));
    let sent = mock.last().body;
    assert_eq!(sent["tool_choice"], "required");
    assert_eq!(
        sent["tools"][0]["function"]["parameters"],
        tools()[0]["input_schema"]
    );

    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let text = server
        .post_json(PATH, &streamed)
        .await
        .text()
        .await
        .expect("text");
    let events = events(&text);
    let start = events
        .iter()
        .find(|(n, d)| n == "content_block_start" && d["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(start.1["index"], 1, "after the text block");
    assert_eq!(start.1["content_block"]["name"], "get_weather");
    let json: String = events
        .iter()
        .filter_map(|(_, d)| d.pointer("/delta/partial_json").and_then(Value::as_str))
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json).expect("input"),
        json!({"city": "Oslo"})
    );
    let stops = events
        .iter()
        .filter(|(n, _)| n == "content_block_stop")
        .count();
    assert_eq!(stops, 2, "every block closed: {text}");

    // The next turn: the tool's result, as Anthropic writes it, reaches OpenAI as a tool message.
    mock.set(Script::default());
    let next = json!({"model": "gpt-4o-mini", "max_tokens": 64, "tools": tools(), "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": body["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "-3 °C"}]},
    ]});
    let response = server.post_json(PATH, &next).await;
    assert_eq!(response.status(), 200);
    let sent = mock.last().body;
    assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], call["id"]);
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "tool_call_id": call["id"], "content": "-3 °C"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefill_is_continued_not_repeated() {
    let mock = mock_llm::start_with(Script {
        deltas: vec![" Hel".into(), "ios".into()],
        ..Default::default()
    })
    .await;
    let server = super::every_provider(&mock);
    let ask = json!({"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [
        {"role": "user", "content": "Greek name for the Sun?"},
        {"role": "assistant", "content": "The answer is"}]});
    let body: Value = server
        .post_json(PATH, &ask)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": " Helios"}])
    );
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let text = server
        .post_json(PATH, &streamed)
        .await
        .text()
        .await
        .expect("text");
    let joined: String = events(&text)
        .iter()
        .filter_map(|(_, d)| d.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(joined, " Helios");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_without_parameters_gets_an_empty_object() {
    let mock = mock_llm::start_with(Script {
        deltas: vec![],
        tool_calls: vec![("get_time".into(), String::new())],
        ..Default::default()
    })
    .await;
    let server = super::every_provider(&mock);
    let ask = json!({"model": "claude-haiku-4-5", "stream": true, "temperature": 0,
                     "messages": [{"role": "user", "content": "Time?"}],
                     "tools": [{"type": "function", "function": {"name": "get_time"}}]});
    let text = server
        .post_json("/api/ai/llm/v1/chat/completions", &ask)
        .await
        .text()
        .await
        .expect("text");
    let arguments: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c.pointer("/choices/0/delta/tool_calls/0/function/arguments")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(arguments, "{}", "{text}");
    // And so it is kept: the cached whole answer says the same.
    let mut whole = ask.clone();
    whole["stream"] = json!(false);
    let body: Value = server
        .post_json("/api/ai/llm/v1/chat/completions", &whole)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_anthropic_shaped() {
    let mock = mock_llm::start().await;
    let server = super::every_provider(&mock);
    let user = json!([{"role": "user", "content": "Hi"}]);
    for (body, status, kind) in [
        (
            json!({"model": "claude-9", "max_tokens": 5, "messages": user}),
            404,
            "not_found_error",
        ),
        (
            json!({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": user, "top_k": 3}),
            400,
            "invalid_request_error",
        ),
        (
            json!({"model": "claude-haiku-4-5", "messages": user}),
            400,
            "invalid_request_error",
        ),
        (
            json!({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}),
            400,
            "invalid_request_error",
        ),
        (
            json!({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": user, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
            400,
            "invalid_request_error",
        ),
        (
            json!({"model": "claude-haiku-4-5", "max_tokens": "many", "messages": user}),
            422,
            "invalid_request_error",
        ),
    ] {
        let response = server.post_json(PATH, &body).await;
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], kind, "{error}");
        assert!(error["error"]["message"].is_string());
    }
    assert_eq!(mock.calls(), 0);
    let response = client()
        .post(server.url(PATH))
        .body("hi")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 415);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["type"], "invalid_request_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdks_key_header_is_a_token() {
    let mock = mock_llm::start().await;
    let server = spawn_with(&[
        ("ANTHROPIC_BASE_URL", &mock.url),
        ("ANTHROPIC_API_KEY", "k"),
        ("TOOLSHED_API_TOKENS", "a-token-for-the-sdk-1234"),
    ]);
    let ask = json!({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]});
    for (key, status) in [
        ("a-token-for-the-sdk-1234", 200),
        ("wrong-token-000000000", 401),
    ] {
        let response = client()
            .post(server.url(PATH))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .json(&ask)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), status);
    }
}
