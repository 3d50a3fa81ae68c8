//! The LLM gateway's native face against a mock OpenAI server: translation both ways,
//! streaming as NDJSON, the model registry and models file, and every error.

use crate::support;
use crate::support::mock_llm;

use crate::support::{client, spawn_with, temp_dir};
use serde_json::{Value, json};

fn openai_env(mock: &mock_llm::Mock) -> Vec<(String, String)> {
    vec![
        ("OPENAI_BASE_URL".into(), format!("{}/v1", mock.url)),
        ("OPENAI_API_KEY".into(), "test-key".into()),
    ]
}

fn spawn_env(env: &[(String, String)]) -> support::TestServer {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_with(&pairs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_whole_answer_translates_both_ways() {
    let mock = mock_llm::start().await;
    let server = spawn_env(&openai_env(&mock));
    let response = server
        .post_json(
            "/api/ai/llm",
            &json!({
                "messages": [{"role": "user", "content": "Hi"}],
                "system": "Be terse.",
                "model": "gpt-4o-mini",
                "max_tokens": 50,
                "stop_token": "END",
                "temperature": 0.5,
            }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-cache"], "MISS");
    assert_eq!(response.headers()["x-model"], "openai:gpt-4o-mini");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"role": "assistant", "content": "Hello"}));

    let sent = mock.last();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.headers["authorization"], "Bearer test-key");
    assert_eq!(
        sent.body,
        json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}],
            "max_completion_tokens": 50,
            "stop": ["END"],
            "temperature": 0.5,
        })
    );
    // Usage and timings reach the log; the prompt never does.
    let line = server.wait_for_log(|l| l["message"] == "llm answer");
    assert_eq!(line["input_tokens"], 19);
    assert_eq!(line["output_tokens"], 2);
    assert!(line["overhead_ms"].as_f64().is_some(), "{line}");
    let logs = server.logs.lock().expect("logs").join("\n");
    assert!(!logs.contains("Be terse") && !logs.contains("test-key"));
    // And the metrics, by provider.
    let metrics = server.get("/metrics").await.text().await.expect("metrics");
    for needle in [
        r#"toolshed_llm_upstream_requests_total{provider="openai",outcome="ok"} 1"#,
        r#"toolshed_llm_tokens_total{provider="openai",direction="input"} 19"#,
        r#"toolshed_llm_tokens_total{provider="openai",direction="output"} 2"#,
        "toolshed_llm_gateway_overhead_seconds_count 1",
    ] {
        assert!(metrics.contains(needle), "no {needle:?} in:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_stream_becomes_ndjson_strings() {
    let mock = mock_llm::start_with(mock_llm::Script {
        deltas: vec!["Hel".into(), "lo".into(), " \"world\"\n".into()],
        ..Default::default()
    })
    .await;
    let server = spawn_env(&openai_env(&mock));
    let response = server.post_json("/api/ai/llm", &json!({"messages": [{"role": "user", "content": "Hi"}], "model": "openai:gpt-4o", "stream": true}))
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.expect("body");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(
        lines,
        vec![json!("Hel"), json!("lo"), json!(" \"world\"\n")]
    );
    let sent = mock.last().body;
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["model"], "gpt-4o");
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_and_missing_keys_are_400_with_help() {
    let mock = mock_llm::start().await;
    let server = spawn_env(&openai_env(&mock));
    let msgs = json!([{"role": "user", "content": "Hi"}]);

    let response = server
        .post_json(
            "/api/ai/llm",
            &json!({"messages": msgs, "model": "gpt-4o-mni"}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "unknown_model");
    let error = body["error"].as_str().expect("error");
    assert!(
        error.contains("gpt-4o-mni") && error.contains("gpt-4o-mini"),
        "{error}"
    );

    let response = server
        .post_json("/api/ai/llm", &json!({"messages": msgs, "task": "codng"}))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "unknown_task");
    assert!(body["error"].as_str().expect("error").contains("codng"));

    let response = server
        .post_json(
            "/api/ai/llm",
            &json!({"messages": msgs, "model": "claude-haiku-4-5"}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "provider_not_configured");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("ANTHROPIC_API_KEY"),
        "{body}"
    );

    let response = server
        .post_json(
            "/api/ai/llm",
            &json!({"messages": msgs, "model": "gpt-4o", "fallbacks": ["nope-model"]}),
        )
        .await;
    assert_eq!(response.status(), 400);

    for body in [
        json!({"messages": msgs}),
        json!({"messages": msgs, "model": "gpt-4o", "task": "x"}),
    ] {
        let response = server.post_json("/api/ai/llm", &body).await;
        assert_eq!(response.status(), 400);
    }
    let response = server
        .post_json("/api/ai/llm", &json!({"messages": [], "model": "gpt-4o"}))
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(mock.calls(), 0, "no bad request reached the provider");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_json_errors() {
    let mock = mock_llm::start().await;
    let server = spawn_env(&openai_env(&mock));
    let http = client();
    let raw = |body: &'static str, content_type: &'static str| {
        http.post(server.url("/api/ai/llm"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_eq!(
        raw("{", "application/json").await.expect("send").status(),
        400
    );
    assert_eq!(
        raw(r#"{"messages": "x"}"#, "application/json")
            .await
            .expect("send")
            .status(),
        422
    );
    assert_eq!(
        raw(
            r#"{"messages": [{"role": "wizard", "content": "x"}], "model": "gpt-4o"}"#,
            "application/json"
        )
        .await
        .expect("send")
        .status(),
        422
    );
    let response = raw("hello", "text/plain").await.expect("send");
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.expect("json");
    assert!(body["code"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_errors_are_502_with_status_and_message() {
    let mock = mock_llm::start_with(mock_llm::Script {
        fail_first: 100,
        fail_status: 401,
        ..Default::default()
    })
    .await;
    let server = spawn_env(&openai_env(&mock));
    for stream in [false, true] {
        let response = server.post_json("/api/ai/llm", &json!({"messages": [{"role": "user", "content": "Hi"}], "model": "gpt-4o", "stream": stream}))
        .await;
        assert_eq!(response.status(), 502);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["code"], "upstream_error");
        let error = body["error"].as_str().expect("error");
        assert!(
            error.contains("401") && error.contains("mock failure 401"),
            "{error}"
        );
    }
    assert_eq!(mock.calls(), 2, "a 401 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_models_list_is_filtered() {
    let mock = mock_llm::start().await;
    let server = spawn_env(&openai_env(&mock));
    let get = |query: &'static str| {
        let url = server.url(&format!("/api/ai/llm/models{query}"));
        async move { client().get(url).send().await.expect("send") }
    };
    let ids = |body: &Value| -> Vec<String> {
        body["models"]
            .as_array()
            .expect("models")
            .iter()
            .map(|m| m["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let all: Value = get("").await.json().await.expect("json");
    let offered = ids(&all);
    assert!(offered.contains(&"openai:gpt-4o-mini".to_owned()));
    assert!(
        offered.iter().all(|id| id.starts_with("openai:")),
        "only configured providers: {offered:?}"
    );
    let mini = &all["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["id"] == "openai:gpt-4o-mini")
        .expect("mini")
        .clone();
    assert_eq!(mini["aliases"], json!(["gpt-4o-mini"]));
    assert_eq!(mini["capabilities"]["context_window"], 128000);

    let found: Value = get("?search=MINI").await.json().await.expect("json");
    assert!(ids(&found).iter().all(|id| id.contains("mini")) && !ids(&found).is_empty());

    let prefill: Value = get("?capability=prefill,streaming")
        .await
        .json()
        .await
        .expect("json");
    assert!(ids(&prefill).is_empty(), "no OpenAI model takes a prefill");

    let everything: Value = get("?all=true&capability=prefill")
        .await
        .json()
        .await
        .expect("json");
    let claude = ids(&everything);
    assert!(
        claude.iter().any(|id| id.starts_with("anthropic:")),
        "{claude:?}"
    );
    assert!(
        everything["models"]
            .as_array()
            .expect("m")
            .iter()
            .all(|m| m["available"] == false)
    );

    assert_eq!(get("?capability=telepathy").await.status(), 400);
    assert_eq!(get("?task=nope").await.status(), 400);

    let v1: Value = server.get_json("/api/ai/llm/v1/models").await;
    assert_eq!(v1["object"], "list");
    assert!(
        v1["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|m| m["id"] == "openai:gpt-4o-mini" && m["object"] == "model")
    );
    let ids: Vec<&str> = v1["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"gpt-4o-mini"), "aliases listed too: {ids:?}");
    assert!(
        !ids.contains(&"claude-haiku-4-5"),
        "no key, not listed: {ids:?}"
    );
    for (id, status) in [
        ("gpt-4o-mini", 200),
        ("openai:gpt-4o-mini", 200),
        ("claude-haiku-4-5", 404),
        ("nope", 404),
    ] {
        let response = client()
            .get(server.url(&format!("/api/ai/llm/v1/models/{id}")))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), status, "{id}");
        if status == 200 {
            let model: Value = response.json().await.expect("json");
            assert_eq!(model["id"], "openai:gpt-4o-mini");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_models_file_adds_a_provider_model_and_task() {
    let mock = mock_llm::start().await;
    let dir = temp_dir();
    let file = dir.path().join("models.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[providers.local]
kind = "openai"
base_url = "{}/v1"
api_key_env = "LOCAL_LLM_KEY"

[models."local:gemma"]
provider = "local"
upstream = "gemma-3-270m"
aliases = ["gemma"]
capabilities = {{ context_window = 32768, max_output_tokens = 8192, streaming = true, system_prompt = false, stop_sequences = true, prefill = false, images = false }}

[tasks]
coding = "local:gemma"
"#,
            mock.url
        ),
    )
    .expect("write models file");
    let server = spawn_with(&[
        ("TOOLSHED_LLM_MODELS", file.to_str().expect("path")),
        ("LOCAL_LLM_KEY", "local-secret"),
    ]);
    let response = server
        .post_json(
            "/api/ai/llm",
            &json!({
                "messages": [{"role": "user", "content": "Write code"}],
                "system": "You are a coder.",
                "task": "coding",
                "max_tokens": 100000,
            }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-model"], "local:gemma");
    let sent = mock.last();
    assert_eq!(sent.headers["authorization"], "Bearer local-secret");
    assert_eq!(sent.body["model"], "gemma-3-270m");
    assert_eq!(
        sent.body["max_tokens"], 8192,
        "clamped, and compatible servers get max_tokens"
    );
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": "You are a coder.\n\nWrite code"}]),
        "no system prompt: it goes in front of the first message"
    );
    let listed: Value = server.get_json("/api/ai/llm/models?task=coding").await;
    assert_eq!(listed["models"].as_array().expect("models").len(), 1);
    assert_eq!(listed["models"][0]["id"], "local:gemma");
    assert_eq!(listed["models"][0]["tasks"], json!(["coding"]));
}

#[test]
fn an_invalid_models_file_stops_the_start_naming_the_problem() {
    let dir = temp_dir();
    let file = dir.path().join("models.toml");
    std::fs::write(&file, "[models.\"x:y\"]\nprovider = \"nowhere\"\n").expect("write");
    let output = std::process::Command::new(support::binary())
        .env_clear()
        .env("PORT", "0")
        .env("TOOLSHED_DATA_DIR", dir.path())
        .env("TOOLSHED_LLM_MODELS", &file)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("models.toml") && stderr.contains("nowhere"),
        "{stderr}"
    );
}
