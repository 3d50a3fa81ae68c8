//! The OpenAI-compatible face (`/api/ai/llm/v1`): what an OpenAI SDK sends and expects,
//! answered here by a mock Anthropic server to prove the translation.

use crate::support;
use crate::support::mock_llm;

use crate::support::{client, spawn_with};
use serde_json::{Value, json};

fn server(mock: &mock_llm::Mock) -> support::TestServer {
    spawn_with(&[
        ("ANTHROPIC_BASE_URL", &mock.url),
        ("ANTHROPIC_API_KEY", "k"),
    ])
}

/// A one-message request for `model`, with `extra`'s fields added.
fn chat(model: &str, extra: Value) -> Value {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completion_object() {
    let mock = mock_llm::start().await;
    let server = server(&mock);
    let response = client()
        .post(server.url("/api/ai/llm/v1/chat/completions"))
        .header("authorization", "Bearer anything")
        .header("x-stainless-lang", "python")
        .json(&json!({
            "model": "claude-haiku-4-5",
            "messages": [{"role": "system", "content": "Be terse."},
                         {"role": "user", "content": [{"type": "text", "text": "Say "}, {"type": "text", "text": "hi"}]}],
            "max_completion_tokens": 32,
            "stop": "END",
            "n": 1,
            "seed": null,
            "temperature": 0
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().expect("id").starts_with("chatcmpl-"));
    assert!(body["created"].as_u64().is_some());
    assert_eq!(body["model"], "anthropic:claude-haiku-4-5-20251001");
    assert_eq!(body["choices"][0]["index"], 0);
    assert_eq!(
        body["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello"})
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 25, "completion_tokens": 6, "total_tokens": 31})
    );
    let sent = mock.last().body;
    assert_eq!(sent["system"], "Be terse.");
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "Say hi"}])
    );
    assert_eq!(sent["max_tokens"], 32);
    assert_eq!(sent["stop_sequences"], json!(["END"]));

    // The same deterministic request again is a cache hit: same answer, no provider call.
    let again = client()
        .post(server.url("/api/ai/llm/v1/chat/completions"))
        .json(&json!({
            "model": "claude-haiku-4-5",
            "messages": [{"role": "system", "content": "Be terse."},
                         {"role": "user", "content": "Say hi"}],
            "max_completion_tokens": 32,
            "stop": ["END"],
            "temperature": 0
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(again.headers()["x-cache"], "HIT");
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["choices"][0]["message"]["content"], "Hello");
    assert_eq!(again["usage"]["total_tokens"], 31);
    assert_eq!(mock.calls(), 1);
}

/// `data:` payloads of an SSE body.
fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| e.strip_prefix("data: ").expect("data line").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completion_chunks_over_sse_end_with_done() {
    let mock = mock_llm::start_with(mock_llm::Script {
        deltas: vec!["Hel".into(), "lo".into()],
        ..Default::default()
    })
    .await;
    let server = server(&mock);
    let response = client()
        .post(server.url("/api/ai/llm/v1/chat/completions"))
        .json(&json!({
            "model": "claude-haiku-4-5",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": true,
            "stream_options": {"include_usage": true}
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let data = sse_data(&response.text().await.expect("body"));
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("chunk"))
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"])
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 6);

    // Without include_usage there is no usage chunk.
    let response = client()
        .post(server.url("/api/ai/llm/v1/chat/completions"))
        .json(&json!({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "Hi"}], "stream": true, "cache": false}))
        .send()
        .await
        .expect("send");
    let data = sse_data(&response.text().await.expect("body"));
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(!data.iter().any(|d| d.contains("\"usage\"")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_models_are_openai_s_404() {
    let mock = mock_llm::start().await;
    let server = server(&mock);
    let response = client()
        .post(server.url("/api/ai/llm/v1/chat/completions"))
        .json(
            &json!({"model": "claude-haiku-4-6", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "model_not_found", "{body}");
    assert_eq!(body["error"]["param"], "model");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("claude-haiku-4-5"),
        "did you mean: {body}"
    );
    let response = server.get("/api/ai/llm/v1/models/gpt-9").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "model_not_found", "{body}");
}

/// An OpenAI-shaped error: the status, the body's error object, and the response.
async fn openai_error(response: reqwest::Response) -> (u16, Value, reqwest::header::HeaderMap) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body: Value = response.json().await.expect("json");
    for field in ["message", "type", "param", "code"] {
        assert!(body["error"].get(field).is_some(), "{field} in {body}");
    }
    (status, body["error"].clone(), headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_openai_shaped_errors() {
    let mock = mock_llm::start().await;
    let server = server(&mock);
    let url = server.url("/api/ai/llm/v1/chat/completions");
    let broken = client()
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .expect("send");
    let (status, error, _) = openai_error(broken).await;
    assert_eq!(status, 400);
    assert_eq!(error["type"], "invalid_request_error");
    // A parameter Toolshed does not honour is named, not dropped.
    let unhonoured = server
        .post_json(
            "/api/ai/llm/v1/chat/completions",
            &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "functions": [], "logprobs": true}),
        )
        .await;
    let (status, error, _) = openai_error(unhonoured).await;
    assert_eq!(status, 400);
    assert_eq!(error["param"], "functions", "the first, alphabetically");
    let message = error["message"].as_str().expect("message");
    assert!(
        message.contains("`functions`") && message.contains("`logprobs`"),
        "{message}"
    );
    let not_json = client().post(&url).body("hi").send().await.expect("send");
    assert_eq!(openai_error(not_json).await.0, 415);
    assert_eq!(mock.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_errors_keep_the_status_a_caller_can_act_on() {
    let ask = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]});
    for (upstream, expected, calls) in [(400, 400, 1), (429, 429, 1), (503, 502, 3)] {
        let mock = mock_llm::start_with(mock_llm::Script {
            fail_first: 100,
            fail_status: upstream,
            ..Default::default()
        })
        .await;
        let base = format!("{}/v1", mock.url);
        let server = support::spawn_with(&[
            ("OPENAI_BASE_URL", base.as_str()),
            ("OPENAI_API_KEY", "k"),
            ("TOOLSHED_LLM_MAX_RETRIES", "2"),
        ]);
        let response = server
            .post_json("/api/ai/llm/v1/chat/completions", &ask)
            .await;
        let (status, error, headers) = openai_error(response).await;
        assert_eq!(status, expected, "upstream {upstream}: {error}");
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .contains(&format!("mock failure {upstream}")),
            "the provider's message: {error}"
        );
        // One upstream call per SDK attempt on a 429 (the SDK retries, not us); our retries
        // on a 5xx, and then the SDK is told not to retry.
        assert_eq!(mock.calls(), calls, "upstream {upstream}");
        match expected {
            429 => {
                assert_eq!(headers["retry-after"], "1");
                assert_eq!(error["code"], "rate_limit_exceeded");
            }
            502 => assert_eq!(headers["x-should-retry"], "false"),
            _ => assert_eq!(error["type"], "invalid_request_error"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_parameters_reach_the_providers_that_have_them() {
    let mock = mock_llm::start().await;
    let server = super::every_provider(&mock);
    let ask = chat;
    let all = json!({"top_p": 0.5, "seed": 7, "presence_penalty": 0.25, "frequency_penalty": -0.5, "user": "ada"});
    let path = "/api/ai/llm/v1/chat/completions";

    let response = server
        .post_json(path, &ask("gpt-4o-mini", all.clone()))
        .await;
    assert_eq!(response.status(), 200);
    let sent = mock.last().body;
    assert_eq!(sent["top_p"], 0.5);
    assert_eq!(sent["seed"], 7);
    assert_eq!(sent["presence_penalty"], 0.25);
    assert_eq!(sent["frequency_penalty"], -0.5);
    assert_eq!(sent["user"], "ada");
    // A seed makes the answer cacheable by default.
    let again = server
        .post_json(path, &ask("gpt-4o-mini", all.clone()))
        .await;
    assert_eq!(again.headers()["x-cache"], "HIT");

    // Gemini has no end-user field: named, not dropped.
    let (status, error, _) = openai_error(
        server
            .post_json(path, &ask("gemini-2.5-flash", all.clone()))
            .await,
    )
    .await;
    assert_eq!((status, error["param"].as_str()), (400, Some("user")));
    let mut anonymous = all.clone();
    anonymous["user"] = Value::Null;
    let response = server
        .post_json(path, &ask("gemini-2.5-flash", anonymous))
        .await;
    assert_eq!(response.status(), 200);
    let config = mock.last().body["generationConfig"].clone();
    assert_eq!(config["topP"], 0.5);
    assert_eq!(config["seed"], 7);
    assert_eq!(config["presencePenalty"], 0.25);
    assert_eq!(config["frequencyPenalty"], -0.5);

    let response = server
        .post_json(
            path,
            &ask("claude-haiku-4-5", json!({"top_p": 0.5, "user": "ada"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(mock.last().body["top_p"], 0.5);
    assert_eq!(mock.last().body["metadata"], json!({"user_id": "ada"}));
    let calls = mock.calls();
    let (status, error, _) =
        openai_error(server.post_json(path, &ask("claude-haiku-4-5", all)).await).await;
    assert_eq!(status, 400);
    assert_eq!(error["param"], "seed");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("claude-haiku-4-5"),
        "{error}"
    );
    assert_eq!(mock.calls(), calls, "refused before any call");
    // Out of range: named.
    let (status, error, _) = openai_error(
        server
            .post_json(path, &ask("gpt-4o-mini", json!({"top_p": 1.5})))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["param"], "top_p");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_outside_the_registry_is_reached_as_provider_slash_id() {
    let mock = mock_llm::start().await;
    let server = server(&mock);
    let response = server
        .post_json(
            "/api/ai/llm/v1/chat/completions",
            &json!({"model": "anthropic/claude-opus-9", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-model"], "anthropic:claude-opus-9");
    assert_eq!(mock.last().body["model"], "claude-opus-9");
    let unknown = server
        .post_json(
            "/api/ai/llm/v1/chat/completions",
            &json!({"model": "nosuch/model", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_choices_come_from_parallel_calls() {
    let mock = mock_llm::start().await;
    let openai_base = format!("{}/v1", mock.url);
    let server = spawn_with(&[
        ("OPENAI_BASE_URL", openai_base.as_str()),
        ("OPENAI_API_KEY", "k"),
    ]);
    let ask = |mut extra: Value| {
        extra["temperature"] = json!(0);
        chat("gpt-4o-mini", extra)
    };
    let path = "/api/ai/llm/v1/chat/completions";
    let single = server.post_json(path, &ask(json!({}))).await;
    let single: Value = single.json().await.expect("json");
    let response = server.post_json(path, &ask(json!({"n": 3}))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-cache"],
        "MISS",
        "several samples are not cached"
    );
    let body: Value = response.json().await.expect("json");
    let choices = body["choices"].as_array().expect("choices");
    assert_eq!(choices.len(), 3);
    for (i, choice) in choices.iter().enumerate() {
        assert_eq!(choice["index"], i);
        assert_eq!(choice["message"]["content"], "Hello");
    }
    let one = single["usage"]["total_tokens"].as_u64().expect("tokens");
    assert_eq!(body["usage"]["total_tokens"], 3 * one, "usage summed");
    assert_eq!(mock.calls(), 4);
    // Streamed: the choices' chunks interleaved, one [DONE] after both ended.
    let text = server
        .post_json(
            path,
            &ask(json!({"n": 2, "stream": true, "stream_options": {"include_usage": true}})),
        )
        .await
        .text()
        .await
        .expect("text");
    let mut texts = [String::new(), String::new()];
    let mut finished = [false, false];
    let mut usage = None;
    for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if data == "[DONE]" {
            assert!(finished.iter().all(|f| *f), "[DONE] last: {text}");
            continue;
        }
        let chunk: Value = serde_json::from_str(data).expect("chunk");
        if chunk["usage"].is_object() {
            usage = Some(chunk["usage"]["total_tokens"].clone());
        }
        for choice in chunk["choices"].as_array().expect("choices") {
            let i = choice["index"].as_u64().expect("index") as usize;
            texts[i].push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            finished[i] |= choice["finish_reason"] == "stop";
        }
    }
    assert_eq!(texts, ["Hello", "Hello"], "{text}");
    assert_eq!(text.matches("[DONE]").count(), 1);
    assert_eq!(usage, Some(json!(2 * one)), "usage of both choices");
    for (extra, what) in [(json!({"n": 17}), "range"), (json!({"n": 0}), "range")] {
        let (status, error, _) = openai_error(server.post_json(path, &ask(extra)).await).await;
        assert_eq!(
            (status, error["param"].as_str()),
            (400, Some("n")),
            "{what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_answers_are_asked_for_in_each_providers_way() {
    let mock = mock_llm::start_with(mock_llm::Script {
        deltas: vec!["{\"value\": ".into(), "1}".into()],
        ..Default::default()
    })
    .await;
    let server = super::every_provider(&mock);
    let path = "/api/ai/llm/v1/chat/completions";
    let inner = json!({"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"], "additionalProperties": false});
    let schema = json!({"name": "answer", "strict": true, "schema": inner});
    let format = json!({"response_format": {"type": "json_schema", "json_schema": schema}});
    let content = |body: Value| body["choices"][0]["message"]["content"].clone();

    // OpenAI: as it is.
    let response = server
        .post_json(path, &chat("gpt-4o-mini", format.clone()))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        content(response.json().await.expect("json")),
        "{\"value\": 1}"
    );
    assert_eq!(
        mock.last().body["response_format"],
        json!({"type": "json_schema", "json_schema": schema})
    );
    // Gemini: a JSON MIME type, with the schema as JSON Schema.
    let object = json!({"response_format": {"type": "json_object"}});
    let response = server
        .post_json(path, &chat("gemini-2.5-flash", object.clone()))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        mock.last().body["generationConfig"]["responseMimeType"],
        "application/json"
    );
    let response = server
        .post_json(path, &chat("gemini-2.5-flash", format.clone()))
        .await;
    assert_eq!(response.status(), 200);
    let config = &mock.last().body["generationConfig"];
    assert_eq!(config["responseJsonSchema"], inner);
    assert_eq!(config["responseMimeType"], "application/json");
    // Anthropic: a forced tool whose input is the answer, whole and streamed.
    let response = server
        .post_json(path, &chat("claude-haiku-4-5", format.clone()))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(content(body.clone()), "{\"value\":1}");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["choices"][0]["message"].get("tool_calls").is_none());
    let sent = mock.last().body;
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "json_answer"})
    );
    assert_eq!(sent["tools"][0]["input_schema"], inner);
    let mut streamed = chat("claude-haiku-4-5", object);
    streamed["stream"] = json!(true);
    let text = server
        .post_json(path, &streamed)
        .await
        .text()
        .await
        .expect("text");
    let mut joined = String::new();
    for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).expect("chunk");
        assert!(chunk["choices"][0]["delta"].get("tool_calls").is_none());
        joined.push_str(
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or(""),
        );
    }
    assert_eq!(joined, "{\"value\": 1}", "the input as streamed");
    assert!(text.contains("\"finish_reason\":\"stop\""), "{text}");
    assert_eq!(
        mock.last().body["tools"][0]["input_schema"],
        json!({"type": "object"})
    );

    let calls = mock.calls();
    let tools =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let mut with_tools = format.clone();
    with_tools["tools"] = tools;
    for (model, body) in [
        ("claude-haiku-4-5", with_tools),
        ("gpt-4o-mini", json!({"response_format": {"type": "xml"}})),
        (
            "gpt-4o-mini",
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
        ),
        (
            "gpt-4o-mini",
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": true, "schema": {"type": 7}}}}),
        ),
    ] {
        let (status, error, _) =
            openai_error(server.post_json(path, &chat(model, body.clone())).await).await;
        assert_eq!(
            (status, error["param"].as_str()),
            (400, Some("response_format")),
            "{model} {body}"
        );
    }
    assert_eq!(mock.calls(), calls, "refused before any call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_answer_off_its_schema_is_asked_again_once_then_refused() {
    let mock = mock_llm::start_with(mock_llm::Script {
        deltas: vec!["{\"value\": \"one\"}".into()],
        ..Default::default()
    })
    .await;
    let server = super::every_provider(&mock);
    let schema = json!({"name": "answer", "strict": true, "schema": {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"]}});
    for model in ["gemini-2.5-flash", "claude-haiku-4-5"] {
        let calls = mock.calls();
        let body = chat(
            model,
            json!({"response_format": {"type": "json_schema", "json_schema": schema}}),
        );
        let (status, error, _) = openai_error(
            server
                .post_json("/api/ai/llm/v1/chat/completions", &body)
                .await,
        )
        .await;
        assert_eq!(status, 502, "{model}");
        assert_eq!(error["code"], "schema_violation");
        let message = error["message"].as_str().expect("message");
        assert!(message.contains("/value"), "{message}");
        assert_eq!(mock.calls() - calls, 2, "{model}: one more try");
    }
    // Streamed, the answer is checked at its end: an error instead of the end, not cached.
    let mut streamed = chat(
        "gemini-2.5-flash",
        json!({"response_format": {"type": "json_schema", "json_schema": schema}, "stream": true, "temperature": 0}),
    );
    for _ in 0..2 {
        let response = server
            .post_json("/api/ai/llm/v1/chat/completions", &streamed)
            .await;
        assert_eq!(response.headers()["x-cache"], "MISS", "never cached");
        let text = response.text().await.expect("text");
        assert!(text.contains("does not follow the schema"), "{text}");
        assert!(!text.contains("[DONE]"), "{text}");
    }
    // A prefill cannot lead a JSON answer.
    streamed["stream"] = json!(false);
    streamed["messages"] =
        json!([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Sure:"}]);
    let (status, error, _) = openai_error(
        server
            .post_json("/api/ai/llm/v1/chat/completions", &streamed)
            .await,
    )
    .await;
    assert_eq!(
        (status, error["param"].as_str()),
        (400, Some("response_format"))
    );
    // Without strict the answer is the caller's to check.
    let mut loose = schema.clone();
    loose["strict"] = json!(false);
    let body = chat(
        "gemini-2.5-flash",
        json!({"response_format": {"type": "json_schema", "json_schema": loose}}),
    );
    let response = server
        .post_json("/api/ai/llm/v1/chat/completions", &body)
        .await;
    assert_eq!(response.status(), 200);
}
