//! The one way a request fails: `AppError` renders `{"error": "...", "code": "..."}` with
//! the right status.
//!
//! Handlers return `Result<_, AppError>`. The `code` is short and stable so that tests,
//! clients and metrics can match on it while the human message is free to improve.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A failed request: status, stable code and a message meant for the caller.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds the caller should wait before trying again (`Retry-After`), when known.
    pub retry_after_s: Option<u64>,
    /// The request field at fault, when one is (the OpenAI face names it as `param`).
    pub param: Option<String>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "no route for GET /api/nope", "code": "not_found"}))]
pub struct ErrorBody {
    /// What went wrong, for a human.
    pub error: String,
    /// A short stable identifier of the kind of failure.
    pub code: String,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
            param: None,
        }
    }

    /// The same error, naming the request field at fault.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// The same error, telling the caller to wait `seconds` before trying again.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// A failure on our side. The detail goes to the log, the caller gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after_s;
        let body = ErrorBody {
            error: self.message,
            code: self.code.to_owned(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// Malformed JSON is 400, JSON of the wrong shape 422, a missing JSON content type 415, a
/// body over the limit 413: axum's rejection already knows the status, we only reshape it.
impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            _ => "bad_request",
        };
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                "request body is larger than this route accepts".into()
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "expected a request body with content-type: application/json".into()
            }
            _ => rejection.body_text(),
        };
        AppError::new(status, code, message)
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::bad_request(rejection.body_text())
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        AppError::bad_request(rejection.body_text())
    }
}

/// Input problems keep their message; failures of the store itself are logged and hidden.
impl From<crate::storage::StorageError> for AppError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError as E;
        match e {
            E::Invalid(m) => AppError::bad_request(m),
            E::TooLarge(m) => AppError::payload_too_large(m),
            E::NotFound(m) => AppError::not_found(m),
            E::Conflict(m) => AppError::conflict(m),
            E::Closed => AppError::unavailable("the store is shutting down"),
            other => AppError::internal(other),
        }
    }
}

/// Refusals by the guard are the caller's doing (400/403); failures of the other side are a
/// bad gateway (502) or a gateway timeout (504).
impl From<crate::platform::outbound::OutboundError> for AppError {
    fn from(e: crate::platform::outbound::OutboundError) -> Self {
        use crate::platform::outbound::OutboundError as E;
        match e {
            E::BadUrl(m) => AppError::bad_request(m),
            E::Blocked(m) => AppError::new(StatusCode::FORBIDDEN, "forbidden_address", m),
            E::Timeout => AppError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "the upstream server did not answer in time",
            ),
            E::TooManyRedirects => {
                AppError::new(StatusCode::BAD_GATEWAY, "too_many_redirects", e.to_string())
            }
            E::TooLarge(_) => {
                AppError::new(StatusCode::BAD_GATEWAY, "upstream_too_large", e.to_string())
            }
            E::Transport(m) => AppError::new(StatusCode::BAD_GATEWAY, "upstream_unreachable", m),
            E::Busy(m) => AppError::new(StatusCode::SERVICE_UNAVAILABLE, "outbound_busy", m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_status_and_json_body() {
        let response = AppError::not_found("no such thing").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "errors are JSON"
        );
    }
}
