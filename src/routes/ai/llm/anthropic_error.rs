//! Errors on the Anthropic-compatible face as Anthropic's API writes them,
//! `{"type": "error", "error": {"type", "message"}}`, so the Anthropic SDKs raise the
//! matching exception (`NotFoundError`, `RateLimitError` …) with the message. What the
//! gateway already retried carries `x-should-retry: false`, as on the OpenAI face.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::error::AppError;

const SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");

/// An error answer, as Anthropic writes one.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"type": "error", "error": {"type": "not_found_error", "message": "no model \"claude-9\""}}))]
pub struct AnthropicErrorBody {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: String,
    pub error: AnthropicErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnthropicErrorDetail {
    /// `invalid_request_error`, `authentication_error`, `not_found_error`,
    /// `request_too_large`, `rate_limit_error`, `timeout_error` or `api_error`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

/// The error type Anthropic gives a status.
pub fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// A failed request on the Anthropic face.
#[derive(Debug)]
pub struct AnthropicError(pub AppError);

impl From<AppError> for AnthropicError {
    fn from(error: AppError) -> Self {
        AnthropicError(error)
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let error = self.0;
        let status = match error.code {
            "unknown_model" => StatusCode::NOT_FOUND,
            _ => error.status,
        };
        let body = AnthropicErrorBody {
            kind: "error".into(),
            error: AnthropicErrorDetail {
                kind: error_type(status).to_owned(),
                message: error.message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = error.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status.is_server_error() {
            headers.insert(SHOULD_RETRY, HeaderValue::from_static("false"));
        }
        response
    }
}
