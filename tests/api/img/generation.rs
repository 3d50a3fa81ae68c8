//! Making, caching and serving images.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::mock_img::{self, Mock, PNG, Script};
use crate::support::{self, TestServer, client};

/// An instance with both providers pointed at `mock` (its downloads allowed through the
/// outbound guard), on `dir` when given.
pub fn server(mock: &Mock, dir: Option<&Path>, extra: &[(&str, &str)]) -> TestServer {
    let openai = format!("{}/v1", mock.url);
    let mut env = vec![
        ("FAL_KEY", "fal-key"),
        ("FAL_QUEUE_URL", mock.url.as_str()),
        ("OPENAI_API_KEY", "openai-key"),
        ("OPENAI_BASE_URL", openai.as_str()),
        ("TOOLSHED_OUTBOUND_ALLOW_HOSTS", "127.0.0.1"),
    ];
    env.extend_from_slice(extra);
    match dir {
        Some(dir) => support::spawn_in(dir, &env),
        None => support::spawn_with(&env),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_is_made_once_then_served_from_the_cache() {
    let mock = mock_img::start().await;
    let dir = support::temp_dir();
    let server = server(&mock, Some(dir.path()), &[]);
    let response = server.get("/api/ai/img?prompt=a%20lighthouse").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(
        headers["content-type"], "image/png",
        "read from the bytes, not fal's word"
    );
    assert_eq!(headers["x-cache"], "MISS");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = headers["etag"].to_str().expect("etag").to_owned();
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG);
    let (path, sent_headers, body) = mock.last();
    assert_eq!(path, "/fal-ai/flux/schnell");
    assert_eq!(sent_headers["authorization"], "Key fal-key");
    assert_eq!(body["prompt"], "a lighthouse");
    assert_eq!(body["image_size"], json!({"width": 1024, "height": 768}));
    assert_eq!(
        mock.state.polls.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "IN_QUEUE, IN_PROGRESS, COMPLETED"
    );

    // The same image, asked for another way, is a hit.
    let response = server
        .post_json(
            "/api/ai/img",
            &json!({"image_size": "landscape_4_3", "prompt": "a lighthouse"}),
        )
        .await;
    assert_eq!(response.headers()["x-cache"], "HIT");
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG);
    assert_eq!(mock.submits(), 1);

    // JSON, the file by its URL, a range of it, and a revalidation.
    let response = client()
        .post(server.url("/api/ai/img"))
        .header("accept", "application/json")
        .json(&json!({"prompt": "a lighthouse"}))
        .send()
        .await
        .expect("send");
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["content_type"], "image/png");
    assert_eq!(answer["cached"], true);
    let url = answer["url"].as_str().expect("url").to_owned();
    assert_eq!(
        server
            .get(&url)
            .await
            .bytes()
            .await
            .expect("bytes")
            .as_ref(),
        PNG
    );
    let part = client()
        .get(server.url(&url))
        .header("range", "bytes=0-3")
        .send()
        .await
        .expect("send");
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-type"], "image/png");
    assert_eq!(part.bytes().await.expect("bytes").as_ref(), &PNG[..4]);
    let again = client()
        .get(server.url(&url))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), 304);
    assert_eq!(server.get("/api/ai/img/files/nope").await.status(), 404);
    assert_eq!(
        server
            .get(&format!("/api/ai/img/files/{}", "0".repeat(64)))
            .await
            .status(),
        404
    );

    // Blobs and the cache survive a restart.
    drop(server);
    let server = self::server(&mock, Some(dir.path()), &[]);
    let response = server.get("/api/ai/img?prompt=a%20lighthouse").await;
    assert_eq!(response.headers()["x-cache"], "HIT");
    assert_eq!(mock.submits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_at_once_make_one_image() {
    let mock = mock_img::start_with(Script {
        submit_delay: std::time::Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let server = server(&mock, None, &[]);
    let body = json!({"prompt": "ten at once", "seed": 5});
    let requests = (0..10).map(|_| server.post_json("/api/ai/img", &body));
    let responses = futures_util::future::join_all(requests).await;
    for response in responses {
        assert_eq!(response.status(), 200);
        assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG);
    }
    assert_eq!(mock.submits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_images_come_as_base64_or_a_url() {
    let mock = mock_img::start().await;
    let server = server(&mock, None, &[]);
    let ask = json!({"prompt": "a fox", "model": "openai/gpt-image-1", "output_format": "png"});
    let response = server.post_json("/api/ai/img", &ask).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG);
    let (path, headers, body) = mock.last();
    assert_eq!(path, "/v1/images/generations");
    assert_eq!(headers["authorization"], "Bearer openai-key");
    assert_eq!(
        body,
        json!({"model": "gpt-image-1", "prompt": "a fox", "n": 1, "size": "1024x1024", "output_format": "png"})
    );
    mock.set(Script {
        openai_url: true,
        ..Default::default()
    });
    let ask = json!({"prompt": "a fox by url", "model": "openai/dall-e-3", "width": 1792, "height": 1024});
    let response = server.post_json("/api/ai/img", &ask).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG);
    assert_eq!(mock.last().2["size"], "1792x1024");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_failures_are_clear_errors() {
    let mock = mock_img::start().await;
    let server = server(&mock, None, &[("TOOLSHED_IMG_TIMEOUT_S", "2")]);
    let error = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        (status, body)
    };
    mock.set(Script {
        nsfw: true,
        ..Default::default()
    });
    let (status, body) = error(
        server
            .post_json("/api/ai/img", &json!({"prompt": "flagged"}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("content_refused")),
        "{body}"
    );
    let (status, body) = error(
        server
            .post_json(
                "/api/ai/img",
                &json!({"prompt": "forbidden", "model": "openai/gpt-image-1"}),
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("content_refused")),
        "{body}"
    );
    mock.set(Script {
        result_status: Some(500),
        ..Default::default()
    });
    let (status, body) = error(
        server
            .post_json("/api/ai/img", &json!({"prompt": "broken"}))
            .await,
    )
    .await;
    assert_eq!(status, 502);
    let message = body["error"].as_str().expect("message");
    assert!(
        message.contains("fal") && message.contains("mock generation failed"),
        "{message}"
    );
    mock.set(Script {
        image: b"<html>not an image</html>".to_vec(),
        ..Default::default()
    });
    let (status, _) = error(
        server
            .post_json("/api/ai/img", &json!({"prompt": "html"}))
            .await,
    )
    .await;
    assert_eq!(status, 502);
    mock.set(Script {
        polls_before_done: 1000,
        ..Default::default()
    });
    let (status, body) = error(
        server
            .post_json("/api/ai/img", &json!({"prompt": "slow"}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (504, Some("upstream_timeout")),
        "{body}"
    );

    // Bad requests never reach a provider.
    let submits = mock.submits();
    for (body, param) in [
        (json!({"prompt": "x", "image_size": "poster"}), "image_size"),
        (
            json!({"prompt": "x", "model": "openai/gpt-image-1", "seed": 1}),
            "seed",
        ),
        (json!({"prompt": " "}), "prompt"),
    ] {
        let (status, answer) = error(server.post_json("/api/ai/img", &body).await).await;
        assert_eq!(status, 400, "{answer}");
        let message = answer["error"].as_str().expect("message");
        assert!(message.contains(param), "{message} names {param}");
    }
    let (status, _) = error(
        server
            .post_json("/api/ai/img", &json!({"prompt": "x", "colour": "red"}))
            .await,
    )
    .await;
    assert_eq!(status, 422, "unknown fields are refused");
    assert_eq!(mock.submits(), submits);

    let bare = support::spawn();
    let (status, body) = error(bare.get("/api/ai/img?prompt=x").await).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().expect("message").contains("FAL_KEY"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_images_route_answers_a_url_or_base64() {
    use base64::Engine;
    let mock = mock_img::start().await;
    let server = server(&mock, None, &[]);
    let path = "/api/ai/llm/v1/images/generations";
    let body: Value = server
        .post_json(path, &json!({"prompt": "a heron", "size": "1024x768"}))
        .await
        .json()
        .await
        .expect("json");
    let url = body["data"][0]["url"].as_str().expect("url");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let bytes = client()
        .get(url)
        .send()
        .await
        .expect("send")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(bytes.as_ref(), PNG);
    assert_eq!(
        mock.last().0,
        "/fal-ai/flux/schnell",
        "the instance's default model"
    );
    let body: Value = server
        .post_json(
            path,
            &json!({"prompt": "a heron", "model": "gpt-image-1", "response_format": "b64_json", "n": 1}),
        )
        .await
        .json()
        .await
        .expect("json");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(body["data"][0]["b64_json"].as_str().expect("b64"))
        .expect("base64");
    assert_eq!(decoded, PNG);
    assert_eq!(mock.last().2["model"], "gpt-image-1");
    for (extra, param) in [
        (json!({"n": 2}), "n"),
        (json!({"style": "vivid"}), "style"),
        (json!({"quality": "hd"}), "quality"),
        (json!({"size": "big"}), "size"),
    ] {
        let mut ask = json!({"prompt": "x"});
        for (k, v) in extra.as_object().expect("object") {
            ask[k] = v.clone();
        }
        let response = server.post_json(path, &ask).await;
        assert_eq!(response.status(), 400, "{ask}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["param"], param, "{error}");
    }
}
