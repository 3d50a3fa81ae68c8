//! `POST /api/ai/llm/v1/embeddings` against mock OpenAI and Gemini servers.

use base64::Engine;
use serde_json::{Value, json};

use crate::support::mock_llm;

const PATH: &str = "/api/ai/llm/v1/embeddings";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_embedded_in_order_and_cached() {
    let mock = mock_llm::start().await;
    let server = super::every_provider(&mock);
    let ask = json!({"model": "text-embedding-3-small", "input": ["a", "b", "c"], "dimensions": 4});
    let response = server.post_json(PATH, &ask).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-cache"], "MISS");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "openai:text-embedding-3-small");
    assert_eq!(body["usage"]["prompt_tokens"], 12);
    let data = body["data"].as_array().expect("data");
    assert_eq!(data.len(), 3);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["index"], i);
        assert_eq!(
            item["embedding"][0], i as f64,
            "in input order though the mock answered reversed"
        );
        assert_eq!(item["embedding"].as_array().expect("vector").len(), 4);
    }
    let sent = mock.last();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.body["input"], json!(["a", "b", "c"]));
    assert_eq!(sent.body["dimensions"], 4);

    let again = server.post_json(PATH, &ask).await;
    assert_eq!(again.headers()["x-cache"], "HIT");
    assert_eq!(again.json::<Value>().await.expect("json"), body);
    assert_eq!(
        mock.calls(),
        1,
        "embeddings are deterministic: served from the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_gets_batch_embed_contents_and_base64_is_little_endian_f32() {
    let mock = mock_llm::start().await;
    let server = super::every_provider(&mock);
    let ask =
        json!({"model": "gemini-embedding-001", "input": "one text", "encoding_format": "base64"});
    let response = server.post_json(PATH, &ask).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let sent = mock.last();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(
        sent.body["requests"][0]["model"],
        "models/gemini-embedding-001"
    );
    assert_eq!(
        sent.body["requests"][0]["content"]["parts"][0]["text"],
        "one text"
    );
    let encoded = body["data"][0]["embedding"].as_str().expect("base64 text");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    let floats: Vec<f32> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(floats, vec![0.0, 0.5, -0.25]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_embedded_is_named() {
    let mock = mock_llm::start().await;
    let server = super::every_provider(&mock);
    for (ask, status, param) in [
        (json!({"model": "nomic-embed", "input": "x"}), 404, "model"),
        (
            json!({"model": "anthropic/claude-haiku-4-5", "input": "x"}),
            400,
            "model",
        ),
        (
            json!({"model": "text-embedding-3-small", "input": []}),
            400,
            "input",
        ),
        (
            json!({"model": "text-embedding-3-small", "input": [""]}),
            400,
            "input",
        ),
        (
            json!({"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"}),
            400,
            "encoding_format",
        ),
        (
            json!({"model": "gemini-embedding-001", "input": "x", "user": "ada"}),
            400,
            "user",
        ),
    ] {
        let response = server.post_json(PATH, &ask).await;
        assert_eq!(response.status(), status, "{ask}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["param"], param, "{ask}: {body}");
    }
    // Token arrays and unknown fields: the wrong shape.
    for ask in [
        json!({"model": "text-embedding-3-small", "input": [[1, 2, 3]]}),
        json!({"model": "text-embedding-3-small", "input": "x", "truncate": true}),
    ] {
        assert_eq!(server.post_json(PATH, &ask).await.status(), 422, "{ask}");
    }
    assert_eq!(mock.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_failure_is_openai_shaped() {
    let mock = mock_llm::start_with(mock_llm::Script {
        fail_first: 100,
        fail_status: 429,
        ..Default::default()
    })
    .await;
    let server = super::every_provider(&mock);
    let response = server
        .post_json(
            PATH,
            &json!({"model": "text-embedding-3-small", "input": "x"}),
        )
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
}
