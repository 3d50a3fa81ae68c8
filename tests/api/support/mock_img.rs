//! Mock image providers in their documented wire formats, bound to 127.0.0.1:0 in the test
//! process: fal.ai's queue API (submit, status polled through IN_QUEUE and IN_PROGRESS to
//! COMPLETED, result, the image file) and OpenAI's `POST /v1/images/generations`
//! (`b64_json` or `url`). Calls are recorded; outcomes are scripted.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// A small valid-looking PNG (its first bytes are what matter).
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRmock-image-bytes-0123456789";

/// What the mock does.
#[derive(Debug, Clone)]
pub struct Script {
    /// Status polls answered IN_QUEUE, then IN_PROGRESS, before COMPLETED.
    pub polls_before_done: usize,
    /// Wait before answering a submit.
    pub submit_delay: Duration,
    /// fal's result flags the image.
    pub nsfw: bool,
    /// fal's result answers this status with a `detail` instead of the output.
    pub result_status: Option<u16>,
    /// OpenAI answers a `url` instead of `b64_json`.
    pub openai_url: bool,
    /// The image's bytes.
    pub image: Vec<u8>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            polls_before_done: 2,
            submit_delay: Duration::ZERO,
            nsfw: false,
            result_status: None,
            openai_url: false,
            image: PNG.to_vec(),
        }
    }
}

#[derive(Default)]
pub struct MockState {
    pub submits: AtomicUsize,
    pub polls: AtomicUsize,
    pub downloads: AtomicUsize,
    pub requests: Mutex<Vec<(String, HeaderMap, Value)>>,
    pub script: Mutex<Option<Script>>,
    pub base: Mutex<String>,
}

pub struct Mock {
    pub url: String,
    pub state: Arc<MockState>,
}

impl Mock {
    pub fn submits(&self) -> usize {
        self.state.submits.load(Ordering::SeqCst)
    }

    pub fn set(&self, script: Script) {
        *self.state.script.lock().expect("script") = Some(script);
    }

    /// The last submit or generation: path, headers and body.
    pub fn last(&self) -> (String, HeaderMap, Value) {
        self.state
            .requests
            .lock()
            .expect("requests")
            .last()
            .cloned()
            .expect("a request")
    }
}

fn script(state: &MockState) -> Script {
    state
        .script
        .lock()
        .expect("script")
        .clone()
        .unwrap_or_default()
}

pub async fn start() -> Mock {
    start_with(Script::default()).await
}

pub async fn start_with(script: Script) -> Mock {
    let state = Arc::new(MockState::default());
    *state.script.lock().expect("script") = Some(script);
    let app = Router::new()
        .route("/fal-ai/flux/schnell", post(fal_submit))
        .route("/fal-ai/flux/requests/r1/status", get(fal_status))
        .route("/fal-ai/flux/requests/r1", get(fal_result))
        .route("/files/image", get(image_file))
        .route("/v1/images/generations", post(openai))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    *state.base.lock().expect("base") = url.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Mock { url, state }
}

async fn fal_submit(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    state.submits.fetch_add(1, Ordering::SeqCst);
    state.polls.store(0, Ordering::SeqCst);
    state.requests.lock().expect("requests").push((
        "/fal-ai/flux/schnell".into(),
        headers.clone(),
        body,
    ));
    let script = script(&state);
    tokio::time::sleep(script.submit_delay).await;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Key fal-key") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"detail": "bad key"})),
        )
            .into_response();
    }
    let base = state.base.lock().expect("base").clone();
    // fal's status and result paths drop the model's subpath.
    axum::Json(json!({
        "request_id": "r1",
        "status_url": format!("{base}/fal-ai/flux/requests/r1/status"),
        "response_url": format!("{base}/fal-ai/flux/requests/r1"),
        "cancel_url": format!("{base}/fal-ai/flux/requests/r1/cancel"),
        "queue_position": 0,
    }))
    .into_response()
}

async fn fal_status(State(state): State<Arc<MockState>>, headers: HeaderMap) -> Response {
    if headers.get("authorization").is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let n = state.polls.fetch_add(1, Ordering::SeqCst);
    let script = script(&state);
    let status = if n >= script.polls_before_done {
        "COMPLETED"
    } else if n == 0 {
        "IN_QUEUE"
    } else {
        "IN_PROGRESS"
    };
    let base = state.base.lock().expect("base").clone();
    axum::Json(json!({"status": status, "queue_position": 0,
                      "response_url": format!("{base}/fal-ai/flux/requests/r1")}))
    .into_response()
}

async fn fal_result(State(state): State<Arc<MockState>>) -> Response {
    let script = script(&state);
    if let Some(status) = script.result_status {
        return (
            StatusCode::from_u16(status).expect("status"),
            axum::Json(json!({"detail": "mock generation failed"})),
        )
            .into_response();
    }
    let base = state.base.lock().expect("base").clone();
    // fal says jpeg whatever the bytes are; the gateway must read them.
    axum::Json(json!({
        "images": [{"url": format!("{base}/files/image"), "width": 1024, "height": 768, "content_type": "image/jpeg"}],
        "timings": {"inference": 0.1}, "seed": 42, "has_nsfw_concepts": [script.nsfw], "prompt": "p",
    }))
    .into_response()
}

async fn image_file(State(state): State<Arc<MockState>>) -> Response {
    state.downloads.fetch_add(1, Ordering::SeqCst);
    ([("content-type", "image/jpeg")], script(&state).image).into_response()
}

async fn openai(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    state.submits.fetch_add(1, Ordering::SeqCst);
    state.requests.lock().expect("requests").push((
        "/v1/images/generations".into(),
        headers,
        body.clone(),
    ));
    let script = script(&state);
    if body["prompt"]
        .as_str()
        .is_some_and(|p| p.contains("forbidden"))
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": "Your request was rejected as a result of our safety system.", "type": "invalid_request_error", "param": null, "code": "content_policy_violation"}})),
        )
            .into_response();
    }
    let base = state.base.lock().expect("base").clone();
    let image = if script.openai_url {
        json!({"url": format!("{base}/files/image"), "revised_prompt": "p"})
    } else {
        json!({"b64_json": STANDARD.encode(&script.image)})
    };
    axum::Json(json!({"created": 1735000000, "data": [image]})).into_response()
}
