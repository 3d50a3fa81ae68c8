//! The built-in task kind `http`: a request against this instance's own `/api` routes,
//! performed in-process (no socket), so services use each other only through their HTTP
//! faces, even from the queue.
//!
//! It runs with the rights of the caller that enqueued it (`platform::auth::OnBehalfOf`):
//! while that caller's token is in force, and never with a token of the payload's own
//! (an `authorization` or `x-api-key` header is refused at enqueue time); it never
//! reaches `/api/admin`.
//!
//! A 2xx answer is success and becomes the task's result; 429, 5xx and timeouts are retried;
//! any other 4xx kills the task at once (sending it again would not help).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::schemas::HttpTaskPayload;
use crate::platform::auth::{Fingerprint, OnBehalfOf};
use crate::platform::state::AppHandle;
use crate::storage::queue::Outcome;
use crate::storage::worker::{TaskFuture, TaskHandler, TaskRun};

/// The kind's name in `POST /api/queue/tasks`, and the kind of a task that names none.
pub const KIND: &str = crate::storage::task::DEFAULT_KIND;
/// The largest answer body kept as a result.
const MAX_RESULT_BYTES: usize = 1024 * 1024;

/// Checks a payload at enqueue time, so a malformed task is refused instead of dying later.
pub fn validate(payload: &Value) -> Result<HttpTaskPayload, String> {
    let parsed: HttpTaskPayload = serde_json::from_value(payload.clone())
        .map_err(|e| format!("payload of an http task: {e}"))?;
    Method::from_bytes(parsed.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("payload.method {:?} is not an HTTP method", parsed.method))?;
    if !parsed.path.starts_with("/api/") {
        return Err(format!(
            "payload.path must be one of this instance's routes under /api/, got {:?}",
            parsed.path
        ));
    }
    parsed
        .path
        .parse::<axum::http::Uri>()
        .map_err(|_| format!("payload.path {:?} is not a valid path", parsed.path))?;
    for (name, value) in &parsed.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("payload.headers: {name:?} is not a header name"))?;
        if header == axum::http::header::AUTHORIZATION || header == "x-api-key" {
            return Err(format!(
                "payload.headers: {header} is not taken: a task runs with the rights of the caller that enqueued it"
            ));
        }
        HeaderValue::from_str(value)
            .map_err(|_| format!("payload.headers[{name:?}] is not a valid header value"))?;
    }
    Ok(parsed)
}

/// The handler; holds the app it calls into.
pub struct HttpTask {
    app: AppHandle,
}

impl HttpTask {
    pub fn new(app: AppHandle) -> HttpTask {
        HttpTask { app }
    }
}

fn build_request(payload: HttpTaskPayload, attempt: u32) -> Result<Request<Body>, String> {
    let method = Method::from_bytes(payload.method.to_ascii_uppercase().as_bytes())
        .map_err(|e| e.to_string())?;
    let mut builder = Request::builder().method(method).uri(&payload.path);
    let mut has_content_type = false;
    for (name, value) in &payload.headers {
        has_content_type |= name.eq_ignore_ascii_case("content-type");
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder = builder.header("x-toolshed-task-attempt", attempt.to_string());
    let body = match payload.body {
        Some(body) => {
            if !has_content_type {
                builder = builder.header("content-type", "application/json");
            }
            Body::from(serde_json::to_vec(&body).map_err(|e| e.to_string())?)
        }
        None => Body::empty(),
    };
    builder.body(body).map_err(|e| e.to_string())
}

impl TaskHandler for HttpTask {
    fn validate(&self, payload: &Value) -> Result<(), String> {
        validate(payload).map(|_| ())
    }

    fn run(&self, run: TaskRun) -> TaskFuture {
        let app = self.app.get().cloned();
        Box::pin(async move {
            let Some(app) = app else {
                return Outcome::Retry("the app is not ready yet".into());
            };
            let request = match validate(&run.payload).and_then(|p| build_request(p, run.attempt)) {
                Ok(request) => request,
                Err(e) => return Outcome::Fatal(e),
            };
            // The caller's rights go with the request as an extension, which only code in
            // this process can set; the access layer checks the caller's token is still in
            // force. A fingerprint that does not parse acts for nobody.
            let caller = run.created_by.as_deref().map(Fingerprint::parse);
            let mut request = request;
            request.extensions_mut().insert(OnBehalfOf(match caller {
                Some(Some(fingerprint)) => Some(fingerprint),
                _ => None,
            }));
            let response = match app.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let status = response.status();
            let headers: BTreeMap<String, String> = response
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
                .collect();
            // The request has had its effect whatever its answer's size: an answer too
            // large to keep must not make the task run again.
            let body = match axum::body::to_bytes(response.into_body(), MAX_RESULT_BYTES).await {
                Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
                    .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(&bytes).into_owned())),
                Err(_) => {
                    json!({"truncated": format!("the answer was larger than {MAX_RESULT_BYTES} bytes")})
                }
            };
            outcome_for(status, headers, body)
        })
    }
}

/// 2xx succeeds; 408, 429 and 5xx may pass, so retry; any other status will not change.
fn outcome_for(status: StatusCode, headers: BTreeMap<String, String>, body: Value) -> Outcome {
    if status.is_success() {
        Outcome::Succeeded(json!({"status": status.as_u16(), "headers": headers, "body": body}))
    } else if status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        Outcome::Retry(format!("the route answered {status}: {body}"))
    } else {
        Outcome::Fatal(format!("the route answered {status}: {body}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_answers() {
        let outcome = |code: u16| {
            outcome_for(
                StatusCode::from_u16(code).expect("status"),
                BTreeMap::new(),
                json!(null),
            )
        };
        assert!(matches!(outcome(200), Outcome::Succeeded(_)));
        assert!(matches!(outcome(204), Outcome::Succeeded(_)));
        assert!(matches!(outcome(429), Outcome::Retry(_)));
        assert!(matches!(outcome(408), Outcome::Retry(_)));
        assert!(matches!(outcome(503), Outcome::Retry(_)));
        assert!(matches!(outcome(500), Outcome::Retry(_)));
        assert!(matches!(outcome(404), Outcome::Fatal(_)));
        assert!(matches!(outcome(400), Outcome::Fatal(_)));
    }

    #[test]
    fn refuses_paths_outside_api_and_bad_methods() {
        assert!(validate(&json!({"method": "GET", "path": "/api/health"})).is_ok());
        assert!(validate(&json!({"method": "GET", "path": "/openapi.json"})).is_err());
        assert!(validate(&json!({"method": "GET", "path": "http://example.com/api/x"})).is_err());
        assert!(validate(&json!({"method": "G ET", "path": "/api/health"})).is_err());
        assert!(validate(&json!({"path": "/api/health"})).is_err());
    }
}
