//! The image providers, each in its own file speaking its own wire format: fal.ai's queue
//! API and OpenAI's Images API (which OpenAI-compatible local servers speak too). Both end
//! with the image's bytes; where a provider answers with a URL, the image is downloaded
//! through the shared outbound guard.

pub mod fal;
pub mod openai;

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use reqwest::Url;

use super::params::{Params, Provider};
use crate::env::Config;
use crate::platform::error::AppError;
use crate::platform::outbound::{FETCH_HEADER, Outbound, OutboundError, classify, read_capped};

/// Why an image was not made.
#[derive(Debug, thiserror::Error)]
pub enum ImgError {
    #[error("{provider} is not configured: set {env}")]
    NotConfigured {
        provider: &'static str,
        env: &'static str,
    },
    #[error("{provider} answered {status}: {message}")]
    Status {
        provider: &'static str,
        status: u16,
        message: String,
        /// The error's `code`, where the provider gives one.
        code: Option<String>,
    },
    /// The provider's safety checker refused the prompt or the image.
    #[error("{provider} refused the image: {message}")]
    Refused {
        provider: &'static str,
        message: String,
    },
    #[error("{0} did not finish the image in time")]
    Timeout(&'static str),
    #[error("{provider}: {message}")]
    Protocol {
        provider: &'static str,
        message: String,
    },
    #[error("cannot download the image: {0}")]
    Download(String),
}

impl From<ImgError> for AppError {
    fn from(e: ImgError) -> Self {
        let message = e.to_string();
        let (status, code) = match &e {
            ImgError::NotConfigured { .. } => (StatusCode::BAD_REQUEST, "provider_not_configured"),
            ImgError::Status { status, .. } => match status {
                400 | 404 | 422 => (StatusCode::BAD_REQUEST, "upstream_bad_request"),
                429 => (StatusCode::TOO_MANY_REQUESTS, "upstream_rate_limited"),
                _ => (StatusCode::BAD_GATEWAY, "upstream_error"),
            },
            ImgError::Refused { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "content_refused"),
            ImgError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
            ImgError::Protocol { .. } | ImgError::Download(_) => {
                (StatusCode::BAD_GATEWAY, "upstream_error")
            }
        };
        AppError::new(status, code, message)
    }
}

/// What generating needs from the app.
pub struct Context<'a> {
    pub config: &'a Config,
    pub outbound: &'a Outbound,
    /// Largest image accepted (the blob store's cap).
    pub max_bytes: usize,
}

/// The image's bytes, from the provider the parameters name.
pub async fn generate(cx: &Context<'_>, params: &Params) -> Result<Bytes, ImgError> {
    match params.provider {
        Provider::Fal => fal::generate(cx, params).await,
        Provider::OpenAi => openai::generate(cx, params).await,
    }
}

/// The message of an error body (`detail`, `error.message`, `message`), else the body.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let found = value
            .pointer("/error/message")
            .or_else(|| value.get("detail"))
            .or_else(|| value.get("message"));
        if let Some(found) = found {
            return match found {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
        }
    }
    String::from_utf8_lossy(body).chars().take(500).collect()
}

/// A provider's answer as an error when its status is one.
pub async fn check_status(
    provider: &'static str,
    response: reqwest::Response,
) -> Result<reqwest::Response, ImgError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = read_capped(response, 64 * 1024).await.unwrap_or_default();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/code")
                .and_then(|c| c.as_str())
                .map(str::to_owned)
        });
    Err(ImgError::Status {
        provider,
        status: status.as_u16(),
        message: error_message(&body),
        code,
    })
}

/// Reads a provider's JSON answer.
pub async fn read_json(
    provider: &'static str,
    response: reqwest::Response,
) -> Result<serde_json::Value, ImgError> {
    let body = read_capped(response, 16 * 1024 * 1024)
        .await
        .map_err(|e| transport(provider, e))?;
    serde_json::from_slice(&body).map_err(|e| ImgError::Protocol {
        provider,
        message: format!("an answer that is not JSON ({e})"),
    })
}

pub fn transport(provider: &'static str, e: OutboundError) -> ImgError {
    match e {
        OutboundError::Timeout => ImgError::Timeout(provider),
        other => ImgError::Protocol {
            provider,
            message: other.to_string(),
        },
    }
}

/// The bytes behind an image URL a provider gave: a `data:` URL decoded, anything else
/// downloaded through the outbound guard.
pub async fn download(cx: &Context<'_>, url: &str, timeout: Duration) -> Result<Bytes, ImgError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let data = rest
            .split_once(";base64,")
            .map(|(_, d)| d)
            .ok_or_else(|| ImgError::Download("a data: URL without base64".into()))?;
        return STANDARD
            .decode(data)
            .map(Bytes::from)
            .map_err(|e| ImgError::Download(format!("bad base64 ({e})")));
    }
    let parsed = Url::parse(url).map_err(|e| ImgError::Download(format!("{url}: {e}")))?;
    cx.outbound
        .check(&parsed)
        .map_err(|e| ImgError::Download(e.to_string()))?;
    let fetch = cx
        .outbound
        .begin_fetch(timeout)
        .await
        .map_err(|e| ImgError::Download(e.to_string()))?;
    let client = cx
        .outbound
        .guarded()
        .map_err(|e| ImgError::Download(e.to_string()))?;
    let response = client
        .get(parsed)
        .header(FETCH_HEADER, fetch.token.as_str())
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| ImgError::Download(classify(e).to_string()))?;
    if !response.status().is_success() {
        return Err(ImgError::Download(format!(
            "{url} answered {}",
            response.status()
        )));
    }
    read_capped(response, cx.max_bytes)
        .await
        .map_err(|e| ImgError::Download(e.to_string()))
}
