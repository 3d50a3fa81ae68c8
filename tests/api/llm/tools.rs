//! Tool calling through both faces, translated to each provider's wire format and back,
//! whole and streamed; and images in messages.

use serde_json::{Value, json};

use crate::support::mock_llm::{self, Script};

const PATH: &str = "/api/ai/llm/v1/chat/completions";
const MODELS: [&str; 3] = ["gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"];

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }}])
}

fn calling() -> Script {
    Script {
        deltas: vec![],
        tool_calls: vec![
            ("get_weather".into(), r#"{"city": "Paris"}"#.into()),
            ("get_weather".into(), r#"{"city": "Tōkyō"}"#.into()),
        ],
        ..Default::default()
    }
}

/// The tool calls of a stream of chunks, joined as the OpenAI SDK joins them.
fn joined_calls(sse: &str) -> (Vec<Value>, Option<String>) {
    let mut calls: Vec<Value> = Vec::new();
    let mut finish = None;
    for data in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).expect("chunk");
        let choice = &chunk["choices"][0];
        if let Some(reason) = choice["finish_reason"].as_str() {
            finish = Some(reason.to_owned());
        }
        for piece in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = piece["index"].as_u64().expect("index") as usize;
            if index == calls.len() {
                assert!(
                    piece["id"].is_string(),
                    "a call starts with its id: {piece}"
                );
                assert_eq!(piece["type"], "function");
                calls.push(
                    json!({"id": piece["id"], "name": piece["function"]["name"], "arguments": ""}),
                );
            }
            let arguments = piece["function"]["arguments"].as_str().unwrap_or("");
            let joined = format!(
                "{}{arguments}",
                calls[index]["arguments"].as_str().expect("text")
            );
            calls[index]["arguments"] = json!(joined);
        }
    }
    (calls, finish)
}

fn arguments(call: &Value) -> Value {
    serde_json::from_str(call.as_str().expect("arguments text")).expect("arguments JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_come_back_whole_and_streamed_from_every_provider() {
    let mock = mock_llm::start_with(calling()).await;
    let server = super::every_provider(&mock);
    for model in MODELS {
        let ask = json!({
            "model": model, "messages": [{"role": "user", "content": "Weather in Paris and Tokyo?"}],
            "tools": weather_tools(), "tool_choice": "auto",
        });
        let response = server.post_json(PATH, &ask).await;
        assert_eq!(response.status(), 200, "{model}");
        let body: Value = response.json().await.expect("json");
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls", "{model}");
        assert_eq!(choice["message"]["content"], Value::Null, "{model}");
        let calls = choice["message"]["tool_calls"].as_array().expect("calls");
        assert_eq!(calls.len(), 2, "{model}");
        assert_eq!(calls[0]["type"], "function");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        assert_eq!(
            arguments(&calls[1]["function"]["arguments"]),
            json!({"city": "Tōkyō"})
        );
        assert_ne!(
            calls[0]["id"], calls[1]["id"],
            "{model}: ids tell calls apart"
        );

        // What the provider was sent.
        let sent = mock.last().body;
        let parameters = &weather_tools()[0]["function"]["parameters"];
        match model {
            "gpt-4o-mini" => {
                assert_eq!(sent["tools"], weather_tools());
                assert_eq!(sent["tool_choice"], "auto");
            }
            "claude-haiku-4-5" => {
                assert_eq!(sent["tools"][0]["name"], "get_weather");
                assert_eq!(sent["tools"][0]["input_schema"], *parameters);
                assert_eq!(sent["tool_choice"], json!({"type": "auto"}));
            }
            _ => {
                let declaration = &sent["tools"][0]["functionDeclarations"][0];
                assert_eq!(declaration["name"], "get_weather");
                assert_eq!(declaration["parametersJsonSchema"], *parameters);
                assert_eq!(
                    sent["toolConfig"],
                    json!({"functionCallingConfig": {"mode": "AUTO"}})
                );
            }
        }

        let mut streamed = ask.clone();
        streamed["stream"] = json!(true);
        let text = server
            .post_json(PATH, &streamed)
            .await
            .text()
            .await
            .expect("text");
        let (calls, finish) = joined_calls(&text);
        assert_eq!(finish.as_deref(), Some("tool_calls"), "{model}: {text}");
        assert_eq!(calls.len(), 2, "{model}: {text}");
        assert_eq!(calls[0]["name"], "get_weather");
        assert_eq!(arguments(&calls[0]["arguments"]), json!({"city": "Paris"}));
        assert_eq!(arguments(&calls[1]["arguments"]), json!({"city": "Tōkyō"}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_results_reach_each_provider_in_its_shape() {
    let mock = mock_llm::start().await;
    let server = super::every_provider(&mock);
    let call = json!({"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}});
    for model in MODELS {
        let ask = json!({
            "model": model, "tools": weather_tools(),
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_0", "content": "{\"celsius\": 21}"},
            ],
        });
        let response = server.post_json(PATH, &ask).await;
        assert_eq!(response.status(), 200, "{model}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["choices"][0]["message"]["content"], "Hello");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        let sent = mock.last().body;
        match model {
            "gpt-4o-mini" => {
                assert_eq!(
                    sent["messages"][1],
                    json!({"role": "assistant", "content": null, "tool_calls": [call]})
                );
                assert_eq!(
                    sent["messages"][2],
                    json!({"role": "tool", "tool_call_id": "call_0", "content": "{\"celsius\": 21}"})
                );
            }
            "claude-haiku-4-5" => {
                assert_eq!(
                    sent["messages"][1]["content"],
                    json!([{"type": "tool_use", "id": "call_0", "name": "get_weather", "input": {"city": "Paris"}}])
                );
                assert_eq!(
                    sent["messages"][2],
                    json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_0", "content": "{\"celsius\": 21}"}]})
                );
            }
            _ => {
                assert_eq!(
                    sent["contents"][1],
                    json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]})
                );
                assert_eq!(
                    sent["contents"][2]["parts"][0],
                    json!({"functionResponse": {"name": "get_weather", "response": {"celsius": 21}}})
                );
            }
        }
    }
    // A Gemini thought signature rides in the call id and goes back with the call.
    mock.set(calling());
    let ask = json!({"model": "gemini-2.5-flash", "tools": weather_tools(),
                     "messages": [{"role": "user", "content": "Weather?"}]});
    let body: Value = server
        .post_json(PATH, &ask)
        .await
        .json()
        .await
        .expect("json");
    let made = body["choices"][0]["message"].clone();
    mock.set(Script::default());
    let id = made["tool_calls"][0]["id"].as_str().expect("id").to_owned();
    let next = json!({"model": "gemini-2.5-flash", "tools": weather_tools(), "messages": [
        {"role": "user", "content": "Weather?"}, made,
        {"role": "tool", "tool_call_id": id, "content": "sunny"},
    ]});
    assert_eq!(server.post_json(PATH, &next).await.status(), 200);
    let sent = mock.last().body;
    assert_eq!(sent["contents"][1]["parts"][0]["thoughtSignature"], "c2ln");
    assert_eq!(
        sent["contents"][2]["parts"][0]["functionResponse"]["response"],
        json!({"content": "sunny"}),
        "a plain-text result is wrapped in an object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_choice_and_bad_tool_requests() {
    let mock = mock_llm::start().await;
    let server = super::every_provider(&mock);
    let named = json!({"type": "function", "function": {"name": "get_weather"}});
    for model in MODELS {
        let ask = json!({"model": model, "messages": [{"role": "user", "content": "Hi"}],
                         "tools": weather_tools(), "tool_choice": named,
                         "parallel_tool_calls": model == "gemini-2.5-flash"});
        assert_eq!(server.post_json(PATH, &ask).await.status(), 200, "{model}");
        let sent = mock.last().body;
        match model {
            "gpt-4o-mini" => {
                assert_eq!(sent["tool_choice"], named);
                assert_eq!(sent["parallel_tool_calls"], false);
            }
            "claude-haiku-4-5" => assert_eq!(
                sent["tool_choice"],
                json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true})
            ),
            _ => assert_eq!(
                sent["toolConfig"],
                json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
            ),
        }
    }
    let calls = mock.calls();
    let user = json!({"role": "user", "content": "Hi"});
    for (body, param) in [
        (
            json!({"model": "gemini-2.5-flash", "tools": weather_tools(), "parallel_tool_calls": false}),
            "parallel_tool_calls",
        ),
        (
            json!({"model": "gpt-4o-mini", "tools": weather_tools(), "tool_choice": {"type": "function", "function": {"name": "nope"}}}),
            "tool_choice",
        ),
        (
            json!({"model": "gpt-4o-mini", "tool_choice": "required"}),
            "tool_choice",
        ),
        (
            json!({"model": "gpt-4o-mini", "tools": [{"type": "function", "function": {"name": "bad name"}}]}),
            "tools",
        ),
        (
            json!({"model": "gpt-4o-mini", "tools": [{"type": "function", "function": {"name": "f", "strict": true}}]}),
            "tools",
        ),
        (
            json!({"model": "gpt-4o-mini", "tools": [{"type": "code_interpreter", "function": {"name": "f"}}]}),
            "tools",
        ),
        (
            json!({"model": "gpt-4o-mini", "extra_messages": [{"role": "tool", "tool_call_id": "nobody", "content": "x"}]}),
            "messages",
        ),
        (
            json!({"model": "gpt-4o-mini", "extra_messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "not json"}}]}]}),
            "messages",
        ),
    ] {
        let mut ask = body.clone();
        let mut messages = vec![user.clone()];
        if let Some(extra) = ask
            .as_object_mut()
            .expect("object")
            .remove("extra_messages")
        {
            messages.extend(extra.as_array().expect("list").iter().cloned());
        }
        ask["messages"] = json!(messages);
        let response = server.post_json(PATH, &ask).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["param"], param, "{body}: {error}");
    }
    assert_eq!(mock.calls(), calls, "refused before any call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_face_takes_tools_and_answers_tool_calls() {
    let mock = mock_llm::start_with(calling()).await;
    let server = super::every_provider(&mock);
    let ask = json!({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "Weather?"}],
                     "tools": weather_tools()});
    let body: Value = server
        .post_json("/api/ai/llm", &ask)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(
        arguments(&body["tool_calls"][0]["function"]["arguments"]),
        json!({"city": "Paris"})
    );
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let text = server
        .post_json("/api/ai/llm", &streamed)
        .await
        .text()
        .await
        .expect("text");
    let pieces: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    let first = pieces
        .iter()
        .find(|p| p["tool_call"]["index"] == 1)
        .expect("second call");
    assert_eq!(first["tool_call"]["name"], "get_weather");
    let joined: String = pieces
        .iter()
        .filter(|p| p["tool_call"]["index"] == 1)
        .filter_map(|p| p["tool_call"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&joined).expect("json"),
        json!({"city": "Tōkyō"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_tool_calls_replay_whole_and_streamed() {
    let mock = mock_llm::start_with(calling()).await;
    let server = super::every_provider(&mock);
    let mut ask = json!({"model": "gpt-4o-mini", "temperature": 0, "stream": true,
                         "messages": [{"role": "user", "content": "Weather?"}], "tools": weather_tools()});
    let first = server
        .post_json(PATH, &ask)
        .await
        .text()
        .await
        .expect("text");
    let response = server.post_json(PATH, &ask).await;
    assert_eq!(response.headers()["x-cache"], "HIT");
    let again = response.text().await.expect("text");
    assert_eq!(joined_calls(&first), joined_calls(&again));
    ask["stream"] = json!(false);
    let body: Value = server
        .post_json(PATH, &ask)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][1]["id"],
        "call_1"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(mock.calls(), 1);
}
