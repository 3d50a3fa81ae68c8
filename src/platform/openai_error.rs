//! Errors on the OpenAI-compatible routes (the LLM gateway's, speech's) as OpenAI's API writes
//! them, `{"error": {"message", "type", "param", "code"}}`, so the SDKs show the message and
//! retry only what is worth retrying: an unknown model is 404 `model_not_found`, a provider's
//! rate limit 429 with `Retry-After`, and what a service already retried (502, 504) carries
//! `x-should-retry: false`. Native routes keep `{"error", "code"}`.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::error::AppError;

/// The header OpenAI's SDKs read before their own retry logic.
const SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");

/// An error answer, as OpenAI writes one.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"message": "no model \"gpt-9\"", "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}))]
pub struct OpenAiErrorBody {
    pub error: OpenAiErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorDetail {
    /// What went wrong, for a human.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error`, `timeout_error`
    /// or `api_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, when one is.
    pub param: Option<String>,
    /// A short stable identifier (the native face's `code`).
    pub code: Option<String>,
}

/// A failed request on the OpenAI face.
#[derive(Debug)]
pub struct OpenAiError(pub AppError);

impl From<AppError> for OpenAiError {
    fn from(error: AppError) -> Self {
        OpenAiError(error)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let error = self.0;
        let (status, code, param) = match error.code {
            "unknown_model" => (StatusCode::NOT_FOUND, "model_not_found", Some("model")),
            "unknown_task" | "provider_not_configured" => (error.status, error.code, Some("model")),
            "upstream_rate_limited" => (error.status, "rate_limit_exceeded", None),
            code => (error.status, code, None),
        };
        let kind = match status.as_u16() {
            401 => "authentication_error",
            429 => "rate_limit_error",
            504 => "timeout_error",
            400..=499 => "invalid_request_error",
            _ => "api_error",
        };
        let body = OpenAiErrorBody {
            error: OpenAiErrorDetail {
                message: error.message,
                kind: kind.to_owned(),
                param: error.param.or(param.map(str::to_owned)),
                code: Some(code.to_owned()),
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn an_unknown_model_is_openai_s_404() {
        let error = AppError::new(StatusCode::BAD_REQUEST, "unknown_model", "no model \"x\"");
        let response = OpenAiError(error).into_response();
        assert_eq!(response.status(), 404);
        let body = body(response).await;
        assert_eq!(body["error"]["code"], "model_not_found");
        assert_eq!(body["error"]["param"], "model");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["message"], "no model \"x\"");
    }

    #[tokio::test]
    async fn retries_are_steered() {
        let limited = AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "upstream_rate_limited",
            "slow down",
        )
        .with_retry_after(3);
        let response = OpenAiError(limited).into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert!(
            response.headers().get(&SHOULD_RETRY).is_none(),
            "the SDK may retry a 429"
        );
        let failed = AppError::new(StatusCode::BAD_GATEWAY, "upstream_error", "provider failed");
        let response = OpenAiError(failed).into_response();
        assert_eq!(response.headers()[&SHOULD_RETRY], "false");
        assert_eq!(body(response).await["error"]["type"], "api_error");
    }
}
