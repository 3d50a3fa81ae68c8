//! Mock speech-to-text providers in their documented wire formats, bound to 127.0.0.1:0 in
//! the test process: fal.ai's queue API for `fal-ai/wizper` (submit, status through
//! IN_QUEUE and IN_PROGRESS to COMPLETED, result with `chunks`) and OpenAI's multipart
//! `POST /v1/audio/transcriptions` (`verbose_json` with segments). Calls are recorded.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// A short WAV file: 16-bit mono PCM at 16 kHz, `samples` long (a tone, so the bytes vary).
pub fn wav(samples: usize) -> Vec<u8> {
    let data_len = (samples * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&32_000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let phase = (i as f64) * 440.0 * std::f64::consts::TAU / 16_000.0;
        let sample = (phase.sin() * 8000.0) as i16;
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// One OpenAI transcription request as received: its text fields and its file.
#[derive(Debug, Clone, Default)]
pub struct Form {
    pub fields: Vec<(String, String)>,
    pub file_name: Option<String>,
    pub file_type: Option<String>,
    pub file: Vec<u8>,
}

#[derive(Default)]
pub struct MockState {
    pub calls: AtomicUsize,
    pub polls: AtomicUsize,
    pub fal_inputs: Mutex<Vec<Value>>,
    pub forms: Mutex<Vec<Form>>,
    pub base: Mutex<String>,
    /// Wait before answering a submit or a transcription.
    pub delay: Mutex<Duration>,
}

pub struct Mock {
    pub url: String,
    pub state: Arc<MockState>,
}

impl Mock {
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn last_fal_input(&self) -> Value {
        self.state
            .fal_inputs
            .lock()
            .expect("inputs")
            .last()
            .cloned()
            .expect("a fal input")
    }

    pub fn last_form(&self) -> Form {
        self.state
            .forms
            .lock()
            .expect("forms")
            .last()
            .cloned()
            .expect("a form")
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().expect("delay") = delay;
    }
}

pub async fn start() -> Mock {
    let state = Arc::new(MockState::default());
    let app = Router::new()
        .route("/fal-ai/wizper", post(fal_submit))
        .route("/fal-ai/wizper/requests/r1/status", get(fal_status))
        .route("/fal-ai/wizper/requests/r1", get(fal_result))
        .route("/v1/audio/transcriptions", post(openai))
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
    state.calls.fetch_add(1, Ordering::SeqCst);
    state.polls.store(0, Ordering::SeqCst);
    state.fal_inputs.lock().expect("inputs").push(body);
    let delay = *state.delay.lock().expect("delay");
    tokio::time::sleep(delay).await;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Key fal-key") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"detail": "bad key"})),
        )
            .into_response();
    }
    let base = state.base.lock().expect("base").clone();
    axum::Json(json!({
        "request_id": "r1",
        "status_url": format!("{base}/fal-ai/wizper/requests/r1/status"),
        "response_url": format!("{base}/fal-ai/wizper/requests/r1"),
        "cancel_url": format!("{base}/fal-ai/wizper/requests/r1/cancel"),
    }))
    .into_response()
}

async fn fal_status(State(state): State<Arc<MockState>>) -> Response {
    let n = state.polls.fetch_add(1, Ordering::SeqCst);
    let status = match n {
        0 => "IN_QUEUE",
        1 => "IN_PROGRESS",
        _ => "COMPLETED",
    };
    axum::Json(json!({"status": status})).into_response()
}

async fn fal_result() -> Response {
    axum::Json(json!({
        "text": " Hello there. How are you?",
        "chunks": [
            {"timestamp": [0.0, 1.2], "text": " Hello there."},
            {"timestamp": [1.2, 2.5], "text": " How are you?"},
        ],
        "languages": ["en"],
    }))
    .into_response()
}

async fn openai(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let mut form = Form::default();
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            form.file_name = field.file_name().map(str::to_owned);
            form.file_type = field.content_type().map(str::to_owned);
            form.file = field.bytes().await.expect("file").to_vec();
        } else {
            form.fields.push((name, field.text().await.expect("text")));
        }
    }
    state.forms.lock().expect("forms").push(form);
    let delay = *state.delay.lock().expect("delay");
    tokio::time::sleep(delay).await;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer openai-key") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"message": "bad key", "type": "invalid_request_error"}})),
        )
            .into_response();
    }
    axum::Json(json!({
        "task": "transcribe", "language": "english", "duration": 2.5,
        "text": "Hello from OpenAI.",
        "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": 2.5, "text": " Hello from OpenAI.",
                      "tokens": [1, 2], "temperature": 0.0, "avg_logprob": -0.2,
                      "compression_ratio": 1.0, "no_speech_prob": 0.01}],
    }))
    .into_response()
}
