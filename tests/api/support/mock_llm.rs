//! Mock LLM providers in their documented wire formats — OpenAI Chat Completions,
//! Anthropic Messages, Gemini generateContent — bound to 127.0.0.1:0 inside the test
//! process. Streams are sent with every event split across two TCP writes. Calls are
//! counted and recorded; failures, delays and endless streams are scripted.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};

/// What the mock does on its next calls.
#[derive(Debug, Clone)]
pub struct Script {
    /// The answer, as stream deltas (a whole answer is their concatenation).
    pub deltas: Vec<String>,
    /// The first this-many calls fail with `fail_status`.
    pub fail_first: usize,
    pub fail_status: u16,
    /// Wait before answering at all.
    pub delay: Duration,
    /// Wait between stream events.
    pub event_delay: Duration,
    /// Stream deltas forever (for cancellation tests).
    pub endless: bool,
    /// Break the stream with the provider's error event after this many deltas.
    pub error_after: Option<usize>,
    /// Tool calls the answer makes after its text: (name, arguments as JSON text).
    pub tool_calls: Vec<(String, String)>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            deltas: vec!["Hel".into(), "lo".into()],
            fail_first: 0,
            fail_status: 500,
            delay: Duration::ZERO,
            event_delay: Duration::from_millis(2),
            endless: false,
            error_after: None,
            tool_calls: Vec::new(),
        }
    }
}

/// One call as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
pub struct MockState {
    pub calls: AtomicUsize,
    pub requests: Mutex<Vec<Recorded>>,
    pub script: Mutex<Script>,
    /// Streams whose body was dropped (finished or cancelled by the client).
    pub streams_closed: AtomicUsize,
    /// Streams that sent their last event.
    pub streams_finished: AtomicUsize,
    /// Calls whose caller went away while the mock was still waiting to answer.
    pub calls_cancelled: AtomicUsize,
}

/// Counts a call as cancelled unless disarmed.
struct Pending<'a>(&'a MockState, bool);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.calls_cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

pub struct Mock {
    /// `http://127.0.0.1:port` (no path).
    pub url: String,
    pub state: Arc<MockState>,
}

impl Mock {
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn set(&self, script: Script) {
        *self.state.script.lock().expect("script") = script;
    }

    pub fn last(&self) -> Recorded {
        self.state
            .requests
            .lock()
            .expect("requests")
            .last()
            .cloned()
            .expect("a recorded request")
    }

    /// The bodies of the calls to `path`, in order.
    pub fn requests_to(&self, path: &str) -> Vec<Value> {
        self.state
            .requests
            .lock()
            .expect("requests")
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.body.clone())
            .collect()
    }
}

/// Starts a mock serving all three formats.
pub async fn start() -> Mock {
    start_with(Script::default()).await
}

pub async fn start_with(script: Script) -> Mock {
    let state = Arc::new(MockState::default());
    *state.script.lock().expect("script") = script;
    let app = Router::new()
        .route("/v1/chat/completions", post(openai))
        .route("/v1/embeddings", post(openai_embeddings))
        .route("/v1/messages", post(anthropic))
        .route("/v1beta/models/{action}", post(gemini))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind mock");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Mock { url, state }
}

/// Counts and records the call; returns the script, or the failure to answer with.
async fn begin(
    state: &MockState,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Value,
) -> Result<Script, StatusCode> {
    let n = state.calls.fetch_add(1, Ordering::SeqCst);
    state.requests.lock().expect("requests").push(Recorded {
        path,
        query,
        headers,
        body,
    });
    let script = state.script.lock().expect("script").clone();
    let mut pending = Pending(state, false);
    tokio::time::sleep(script.delay).await;
    pending.1 = true;
    if n < script.fail_first {
        return Err(StatusCode::from_u16(script.fail_status).expect("status"));
    }
    Ok(script)
}

/// Sets a counter when dropped.
struct OnDrop(Arc<MockState>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.streams_closed.fetch_add(1, Ordering::SeqCst);
    }
}

/// An SSE body: each event written in two halves with a pause between, then the next.
fn sse_body(
    state: Arc<MockState>,
    events: Vec<String>,
    script: &Script,
    endless_event: Option<String>,
) -> Response {
    let mut pieces: VecDeque<Bytes> = VecDeque::new();
    for event in events {
        let bytes = event.into_bytes();
        let half = bytes.len() / 2;
        pieces.push_back(Bytes::copy_from_slice(&bytes[..half]));
        pieces.push_back(Bytes::copy_from_slice(&bytes[half..]));
    }
    let delay = script.event_delay;
    let guard = OnDrop(state.clone());
    let stream = futures_util::stream::unfold(
        (pieces, guard, endless_event),
        move |(mut pieces, guard, endless)| async move {
            tokio::time::sleep(delay).await;
            if let Some(piece) = pieces.pop_front() {
                return Some((Ok::<_, std::io::Error>(piece), (pieces, guard, endless)));
            }
            if let Some(event) = &endless {
                return Some((Ok(Bytes::from(event.clone())), (pieces, guard, endless)));
            }
            guard.0.streams_finished.fetch_add(1, Ordering::SeqCst);
            None
        },
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .expect("response")
}

/// A text cut in two (at a character boundary), as providers split arguments.
fn halves(text: &str) -> (String, String) {
    let mut at = text.len() / 2;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    (text[..at].to_owned(), text[at..].to_owned())
}

/// An error answer; a 429 asks for a one-second wait, as providers do.
fn error(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    response
}

/// The mock's embedding of the `index`th input: its index first, `dimensions` long (3 by
/// default).
fn vector(index: usize, dimensions: Option<u64>) -> Vec<f64> {
    let mut v = vec![index as f64, 0.5, -0.25];
    v.resize(dimensions.unwrap_or(3) as usize, 0.125);
    v
}

/// OpenAI's embeddings, answered out of order (as `index` allows).
async fn openai_embeddings(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let count = body["input"].as_array().map_or(1, Vec::len);
    let dimensions = body["dimensions"].as_u64();
    if let Err(status) = begin(
        &state,
        "/v1/embeddings".into(),
        String::new(),
        headers,
        body,
    )
    .await
    {
        return error(
            status,
            json!({"error": {"message": format!("mock failure {}", status.as_u16()), "type": "server_error", "param": null, "code": null}}),
        );
    }
    let data: Vec<Value> = (0..count)
        .rev()
        .map(|i| json!({"object": "embedding", "index": i, "embedding": vector(i, dimensions)}))
        .collect();
    axum::Json(json!({"object": "list", "data": data, "model": "m", "usage": {"prompt_tokens": 4 * count, "total_tokens": 4 * count}}))
        .into_response()
}

async fn openai(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let stream = body["stream"] == true;
    let script = match begin(
        &state,
        "/v1/chat/completions".into(),
        String::new(),
        headers,
        body,
    )
    .await
    {
        Ok(s) => s,
        Err(status) => {
            return error(
                status,
                json!({"error": {"message": format!("mock failure {}", status.as_u16()), "type": "server_error", "param": null, "code": null}}),
            );
        }
    };
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1735000000,
                   "model": "mock", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}], "usage": null})
        )
    };
    let finish = if script.tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    if !stream {
        let mut message =
            json!({"role": "assistant", "content": script.deltas.concat(), "refusal": null});
        if !script.tool_calls.is_empty() {
            let calls: Vec<Value> = script
                .tool_calls
                .iter()
                .enumerate()
                .map(|(i, (name, arguments))| json!({"id": format!("call_{i}"), "type": "function", "function": {"name": name, "arguments": arguments}}))
                .collect();
            message["tool_calls"] = json!(calls);
        }
        return axum::Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1735000000, "model": "mock",
            "choices": [{"index": 0, "message": message,
                         "logprobs": null, "finish_reason": finish}],
            "usage": {"prompt_tokens": 19, "completion_tokens": 2, "total_tokens": 21}
        }))
        .into_response();
    }
    let mut events = vec![
        ": OPENROUTER PROCESSING\n\n".to_owned(),
        chunk(
            json!({"role": "assistant", "content": "", "refusal": null}),
            Value::Null,
        ),
    ];
    for (i, d) in script.deltas.iter().enumerate() {
        if script.error_after == Some(i) {
            events.push(format!(
                "data: {}\n\n",
                json!({"error": {"message": "mock broke mid-stream", "type": "server_error", "param": null, "code": null}})
            ));
            return sse_body(state.clone(), events, &script, None);
        }
        events.push(chunk(json!({"content": d}), Value::Null));
    }
    let endless = script
        .endless
        .then(|| chunk(json!({"content": "more "}), Value::Null));
    for (i, (name, arguments)) in script.tool_calls.iter().enumerate() {
        events.push(chunk(
            json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function", "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ));
        let (a, b) = halves(arguments);
        for piece in [a, b] {
            events.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    events.push(chunk(json!({}), json!(finish)));
    events.push(format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1735000000, "model": "mock",
               "choices": [], "usage": {"prompt_tokens": 19, "completion_tokens": 2, "total_tokens": 21}})
    ));
    events.push("data: [DONE]\n\n".into());
    if script.endless {
        events.truncate(2 + script.deltas.len());
    }
    sse_body(state.clone(), events, &script, endless)
}

async fn anthropic(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let stream = body["stream"] == true;
    // Toolshed's JSON answers come through this forced tool.
    let forced = (body.pointer("/tool_choice/name") == Some(&json!("json_answer")))
        .then(|| "json_answer".to_owned());
    let script = match begin(&state, "/v1/messages".into(), String::new(), headers, body).await {
        Ok(s) => s,
        Err(status) => {
            return error(
                status,
                json!({"type": "error", "error": {"type": "overloaded_error", "message": format!("mock failure {}", status.as_u16())}, "request_id": "req_1"}),
            );
        }
    };
    let mut script = script;
    if let Some(name) = forced {
        // A forced tool: the scripted text is the tool's input.
        script.tool_calls = vec![(name, script.deltas.concat())];
        script.deltas.clear();
    }
    let stop_reason = if script.tool_calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    if !stream {
        let mut content = Vec::new();
        if !script.deltas.is_empty() {
            content.push(json!({"type": "text", "text": script.deltas.concat()}));
        }
        for (i, (name, arguments)) in script.tool_calls.iter().enumerate() {
            let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
            content.push(json!({"type": "tool_use", "id": format!("toolu_{i}"), "name": name, "input": input}));
        }
        return axum::Json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "mock",
            "content": content,
            "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": 25, "output_tokens": 6}
        }))
        .into_response();
    }
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "mock", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 11, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    for (i, d) in script.deltas.iter().enumerate() {
        if script.error_after == Some(i) {
            events.push(event("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})));
            return sse_body(state.clone(), events, &script, None);
        }
        events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}})));
    }
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    for (i, (name, arguments)) in script.tool_calls.iter().enumerate() {
        let index = i + 1;
        events.push(event("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": format!("toolu_{i}"), "name": name, "input": {}}})));
        let (a, b) = halves(arguments);
        for piece in [a, b] {
            events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})));
        }
        events.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    events.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": 6}})));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    sse_body(state.clone(), events, &script, None)
}

async fn gemini(
    State(state): State<Arc<MockState>>,
    Path(action): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let query_text = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let stream = action.ends_with(":streamGenerateContent");
    let embed = action.ends_with(":batchEmbedContents");
    let path = format!("/v1beta/models/{action}");
    let requests = body["requests"].as_array().cloned().unwrap_or_default();
    let script = match begin(&state, path, query_text.clone(), headers, body).await {
        Ok(s) => s,
        Err(status) => {
            return error(
                status,
                json!({"error": {"code": status.as_u16(), "message": format!("mock failure {}", status.as_u16()), "status": "UNAVAILABLE"}}),
            );
        }
    };
    if embed {
        let embeddings: Vec<Value> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"values": vector(i, r["outputDimensionality"].as_u64())}))
            .collect();
        return axum::Json(json!({"embeddings": embeddings})).into_response();
    }
    let calls: Vec<Value> = script
        .tool_calls
        .iter()
        .map(|(name, arguments)| {
            let args: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
            json!({"functionCall": {"name": name, "args": args}, "thoughtSignature": "c2ln"})
        })
        .collect();
    if !stream {
        let mut parts = vec![json!({"text": script.deltas.concat()})];
        parts.extend(calls);
        return axum::Json(json!({
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 2, "totalTokenCount": 14},
            "modelVersion": "mock", "responseId": "r1"
        }))
        .into_response();
    }
    if query_text != "alt=sse" {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": 400, "message": "mock wants alt=sse", "status": "INVALID_ARGUMENT"}}),
        );
    }
    let mut pieces: Vec<Vec<Value>> = script
        .deltas
        .iter()
        .map(|d| vec![json!({"text": d})])
        .collect();
    if !calls.is_empty() {
        pieces.push(calls);
    }
    let last = pieces.len().saturating_sub(1);
    let events = pieces
        .into_iter()
        .enumerate()
        .map(|(i, parts)| {
            let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
            if i == last {
                candidate["finishReason"] = json!("STOP");
            }
            format!(
                "data: {}\r\n\r\n",
                json!({"candidates": [candidate], "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": i + 1, "totalTokenCount": 13 + i}, "modelVersion": "mock", "responseId": "r1"})
            )
        })
        .collect();
    sse_body(state.clone(), events, &script, None)
}
