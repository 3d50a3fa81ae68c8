//! `/api/ai/transcribe` and the OpenAI transcription route against mock fal.ai and OpenAI
//! servers in their documented wire formats, with WAV audio written here.

use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::support::mock_speech::{self, Mock, wav};
use crate::support::{self, TestServer, client};

fn server(mock: &Mock, extra: &[(&str, &str)]) -> TestServer {
    let openai = format!("{}/v1", mock.url);
    let mut env = vec![
        ("FAL_KEY", "fal-key"),
        ("FAL_QUEUE_URL", mock.url.as_str()),
        ("OPENAI_API_KEY", "openai-key"),
        ("OPENAI_BASE_URL", openai.as_str()),
    ];
    env.extend_from_slice(extra);
    support::spawn_with(&env)
}

async fn post_audio(
    server: &TestServer,
    path: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> reqwest::Response {
    client()
        .post(server.url(path))
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("send")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_is_transcribed_once_then_answered_from_the_cache() {
    let mock = mock_speech::start().await;
    let server = server(&mock, &[]);
    let audio = wav(1600);
    let response = post_audio(&server, "/api/ai/transcribe", audio.clone(), "audio/wav").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-cache"], "MISS");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"response_type": "full", "transcription": "Hello there. How are you?",
               "chunks": [{"timestamp": [0.0, 1.2], "text": " Hello there."},
                          {"timestamp": [1.2, 2.5], "text": " How are you?"}]})
    );
    let input = mock.last_fal_input();
    assert!(
        input["audio_url"]
            .as_str()
            .expect("url")
            .starts_with("data:audio/wav;base64,UklGR")
    );
    assert_eq!(input["task"], "transcribe");

    // The same audio as a multipart file, other shapes of the answer: all from the cache.
    let form = Form::new().part(
        "file",
        Part::bytes(audio.clone())
            .file_name("a.wav")
            .mime_str("audio/wav")
            .expect("mime"),
    );
    let response = client()
        .post(server.url("/api/ai/transcribe?response_type=text"))
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_eq!(response.headers()["x-cache"], "HIT");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"response_type": "text", "transcription": "Hello there. How are you?"})
    );
    let response = post_audio(
        &server,
        "/api/ai/transcribe?response_type=chunks",
        audio.clone(),
        "audio/x-wav",
    )
    .await;
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["response_type"], "chunks");
    assert!(body.get("transcription").is_none());
    assert_eq!(mock.calls(), 1);

    // Options are part of the key; an OpenAI model gets a multipart form asking for segments.
    let response = post_audio(
        &server,
        "/api/ai/transcribe?model=openai/whisper-1&language=en&prompt=Toolshed",
        audio.clone(),
        "audio/wav",
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["transcription"], "Hello from OpenAI.");
    assert_eq!(
        body["chunks"],
        json!([{"timestamp": [0.0, 2.5], "text": " Hello from OpenAI."}])
    );
    let form = mock.last_form();
    assert_eq!(form.file, audio);
    assert_eq!(form.file_name.as_deref(), Some("audio.wav"));
    assert_eq!(form.file_type.as_deref(), Some("audio/wav"));
    for field in [
        ("model", "whisper-1"),
        ("response_format", "verbose_json"),
        ("language", "en"),
        ("prompt", "Toolshed"),
    ] {
        assert!(
            form.fields.contains(&(field.0.into(), field.1.into())),
            "{field:?} in {:?}",
            form.fields
        );
    }
    assert_eq!(mock.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_identical_requests_at_once_make_one_call() {
    let mock = mock_speech::start().await;
    mock.set_delay(Duration::from_millis(300));
    let server = server(&mock, &[]);
    let audio = wav(3200);
    let requests =
        (0..10).map(|_| post_audio(&server, "/api/ai/transcribe", audio.clone(), "audio/wav"));
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(mock.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_audio_is_refused_before_any_provider_call() {
    let mock = mock_speech::start().await;
    let server = server(&mock, &[("TOOLSHED_TRANSCRIBE_MAX_BYTES", "4096")]);
    let audio = wav(100);
    for (bytes, content_type, status, says) in [
        (Vec::new(), "audio/wav", 400, "empty"),
        (audio.clone(), "text/plain", 415, "audio/mpeg"),
        (audio.clone(), "audio/mpeg", 400, "not mp3"),
        (b"<html></html>".to_vec(), "audio/ogg", 400, "not ogg"),
        (wav(4000), "audio/wav", 413, "larger"),
    ] {
        let response = post_audio(&server, "/api/ai/transcribe", bytes, content_type).await;
        assert_eq!(response.status(), status, "{content_type} {says}");
        let body: Value = response.json().await.expect("json");
        let message = body["error"].as_str().expect("message");
        assert!(message.contains(says), "{message} says {says}");
    }
    for query in [
        "?prompt=x",
        "?response_type=srt",
        "?model=whisper",
        "?colour=red",
    ] {
        let response = post_audio(
            &server,
            &format!("/api/ai/transcribe{query}"),
            audio.clone(),
            "audio/wav",
        )
        .await;
        assert!(
            response.status() == 400 || response.status() == 422,
            "{query}: {}",
            response.status()
        );
    }
    let form = Form::new().text("language", "en");
    let response = client()
        .post(server.url("/api/ai/transcribe"))
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400, "a form without a file");
    assert_eq!(mock.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_route_answers_in_each_format() {
    let mock = mock_speech::start().await;
    let server = server(&mock, &[]);
    let audio = wav(800);
    let ask = |format: &str| {
        Form::new()
            .part(
                "file",
                Part::bytes(audio.clone())
                    .file_name("speech.wav")
                    .mime_str("audio/wav")
                    .expect("mime"),
            )
            .text("model", "whisper-1")
            .text("response_format", format.to_owned())
            .text("timestamp_granularities[]", "segment")
    };
    let path = server.url("/api/ai/llm/v1/audio/transcriptions");
    let send = |form: Form| client().post(&path).multipart(form).send();
    let json_answer: Value = send(ask("json"))
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(json_answer, json!({"text": "Hello there. How are you?"}));
    let text = send(ask("text"))
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert_eq!(text, "Hello there. How are you?");
    let verbose: Value = send(ask("verbose_json"))
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(verbose["task"], "transcribe");
    assert_eq!(verbose["language"], "en");
    assert_eq!(verbose["duration"], 2.5);
    assert_eq!(verbose["segments"][1]["start"], 1.2);
    assert_eq!(verbose["segments"][1]["text"], " How are you?");
    let srt = send(ask("srt"))
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        srt.starts_with("1\n00:00:00,000 --> 00:00:01,200\nHello there.\n\n2\n"),
        "{srt}"
    );
    let vtt = send(ask("vtt"))
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.200\n"),
        "{vtt}"
    );
    assert_eq!(mock.calls(), 1, "one transcription, five formats");

    let refused = send(ask("json").text("include[]", "logprobs"))
        .await
        .expect("send");
    assert_eq!(refused.status(), 400);
    let error: Value = refused.json().await.expect("json");
    assert_eq!(error["error"]["param"], "include[]", "{error}");
    let refused = send(ask("json").text("timestamp_granularities[]", "word"))
        .await
        .expect("send");
    assert_eq!(refused.status(), 400);
    let not_form = client()
        .post(&path)
        .json(&json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(not_form.status(), 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_audio_goes_through_a_job() {
    let mock = mock_speech::start().await;
    let server = server(&mock, &[]);
    let response = post_audio(
        &server,
        "/api/ai/transcribe/jobs?response_type=text",
        wav(16000),
        "audio/wav",
    )
    .await;
    assert_eq!(response.status(), 202);
    let created: Value = response.json().await.expect("json");
    let url = created["url"].as_str().expect("url").to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    let job = loop {
        let job = server.get_json(&url).await;
        if job["status"] == "done" || job["status"] == "failed" {
            break job;
        }
        assert!(Instant::now() < deadline, "still {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(
        job["result"],
        json!({"response_type": "text", "transcription": "Hello there. How are you?"})
    );
    assert_eq!(
        server.get("/api/ai/transcribe/jobs/999").await.status(),
        404
    );
    let refused = post_audio(
        &server,
        "/api/ai/transcribe/jobs",
        b"nope".to_vec(),
        "audio/wav",
    )
    .await;
    assert_eq!(refused.status(), 400);
}
