//! Images in messages: `data:` URLs and fetched URLs, sent to each provider in its shape,
//! only to models that take images.

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::{self, mock_llm};

const PATH: &str = "/api/ai/llm/v1/chat/completions";
/// A PNG as far as anyone who reads its first bytes can tell.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-not-really";

/// A web server with `/cat.png`, `/page.html` and nothing else.
async fn image_server() -> String {
    let app = Router::new()
        .route("/cat.png", get(|| async { PNG }))
        .route("/page.html", get(|| async { "<html></html>" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

fn ask(model: &str, image: Value) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, image,
    ]}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_reach_each_provider_as_it_takes_them() {
    let mock = mock_llm::start().await;
    let site = image_server().await;
    let dir = support::temp_dir();
    let file = dir.path().join("models.toml");
    std::fs::write(
        &file,
        format!(
            "[providers.local]\nkind = \"openai\"\nbase_url = \"{}/v1\"\n\n[models.\"local:text\"]\nprovider = \"local\"\nupstream = \"text-only\"\ncapabilities = {{ context_window = 8192, max_output_tokens = 1024, streaming = true, system_prompt = true, stop_sequences = true, prefill = false, images = false }}\n",
            mock.url
        ),
    )
    .expect("models file");
    let openai = format!("{}/v1", mock.url);
    let server = support::spawn_with(&[
        ("OPENAI_BASE_URL", openai.as_str()),
        ("OPENAI_API_KEY", "k"),
        ("ANTHROPIC_BASE_URL", &mock.url),
        ("ANTHROPIC_API_KEY", "k"),
        ("GEMINI_BASE_URL", &mock.url),
        ("GEMINI_API_KEY", "k"),
        ("TOOLSHED_LLM_MODELS", file.to_str().expect("path")),
        ("TOOLSHED_OUTBOUND_ALLOW_HOSTS", "127.0.0.1"),
    ]);
    let data = format!("data:image/png;base64,{}", STANDARD.encode(PNG));
    let by_data = json!({"type": "image_url", "image_url": {"url": data, "detail": "auto"}});
    let by_url = json!({"type": "image", "url": format!("{site}/cat.png")});

    for image in [by_data.clone(), by_url.clone()] {
        let response = server
            .post_json(PATH, &ask("gpt-4o-mini", image.clone()))
            .await;
        assert_eq!(response.status(), 200, "{image}");
        assert_eq!(
            mock.last().body["messages"][0]["content"][1],
            json!({"type": "image_url", "image_url": {"url": data}})
        );
        let response = server
            .post_json(PATH, &ask("claude-haiku-4-5", image.clone()))
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            mock.last().body["messages"][0]["content"],
            json!([{"type": "text", "text": "What is this?"},
                   {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": STANDARD.encode(PNG)}}])
        );
        let response = server
            .post_json(PATH, &ask("gemini-2.5-flash", image.clone()))
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            mock.last().body["contents"][0]["parts"][1],
            json!({"inlineData": {"mimeType": "image/png", "data": STANDARD.encode(PNG)}})
        );
    }
    // The native face takes the same parts.
    let native =
        json!({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": [by_url]}]});
    assert_eq!(server.post_json("/api/ai/llm", &native).await.status(), 200);
    assert_eq!(
        mock.last().body["messages"][0]["content"][0]["type"],
        "image"
    );

    let calls = mock.calls();
    for (model, image, status, param) in [
        ("local:text", by_data.clone(), 400, "messages"),
        (
            "gpt-4o-mini",
            json!({"type": "image_url", "image_url": {"url": data, "detail": "high"}}),
            400,
            "messages",
        ),
        (
            "gpt-4o-mini",
            json!({"type": "image_url", "image_url": {"url": format!("{site}/page.html")}}),
            400,
            "messages",
        ),
        (
            "gpt-4o-mini",
            json!({"type": "image_url", "image_url": {"url": format!("{site}/gone.png")}}),
            400,
            "messages",
        ),
        (
            "gpt-4o-mini",
            json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}),
            400,
            "messages",
        ),
        (
            "gpt-4o-mini",
            json!({"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}),
            400,
            "messages",
        ),
        (
            "gpt-4o-mini",
            json!({"type": "input_audio", "input_audio": {}}),
            400,
            "messages",
        ),
    ] {
        let response = server.post_json(PATH, &ask(model, image.clone())).await;
        assert_eq!(response.status(), status, "{model} {image}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["param"], param, "{error}");
        if model == "local:text" {
            let message = error["error"]["message"].as_str().expect("message");
            assert!(message.contains("local:text"), "{message}");
        }
    }
    // An internal address not allowed by the guard is refused, not fetched.
    let blocked = json!({"type": "image_url", "image_url": {"url": "http://10.0.0.1/cat.png"}});
    let response = server.post_json(PATH, &ask("gpt-4o-mini", blocked)).await;
    assert_eq!(response.status(), 403);
    assert_eq!(mock.calls(), calls, "refused before any call");
}
