//! One HTTP exchange with a provider: send, turn an error status into the provider's
//! message (and the wait it asks for), read a whole answer within its cap. Retrying and
//! streaming build on this.

use std::time::Duration;

use bytes::Bytes;

use super::{ProviderError, error_message};
use crate::platform::outbound::{OutboundError, classify, read_capped};

/// Largest error body read from a provider.
const MAX_ERROR_BYTES: usize = 64 * 1024;
/// Largest non-streamed answer read from a provider.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Sends a request and returns the response if its status is a success; an error status
/// becomes `ProviderError::Status` with the provider's message.
pub async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let body = read_capped(response, MAX_ERROR_BYTES)
        .await
        .unwrap_or_default();
    Err(ProviderError::Status {
        status: status.as_u16(),
        message: error_message(&body),
        retry_after,
    })
}

/// A whole (non-streamed) answer's body.
pub async fn read_answer(response: reqwest::Response) -> Result<Bytes, ProviderError> {
    read_capped(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| match e {
            OutboundError::Timeout => ProviderError::Timeout("total"),
            other => ProviderError::Transport(other.to_string()),
        })
}

/// The wait a provider asks for: `retry-after-ms` (OpenAI), else `retry-after` in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    // A provider may send anything: an absurd wait is no wait we can honour (the caller
    // bounds it anyway).
    let seconds = |s: f64| Duration::try_from_secs_f64(s).ok();
    number("retry-after-ms")
        .and_then(|ms| seconds(ms / 1000.0))
        .or_else(|| number("retry-after").and_then(seconds))
}

/// A failure to send or read, as a provider error.
pub fn transport(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::Timeout("total");
    }
    ProviderError::Transport(classify(e).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_headers_are_read() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "2".parse().expect("value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "250".parse().expect("value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
        headers.insert("retry-after-ms", "soon".parse().expect("value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.remove("retry-after-ms");
        headers.insert("retry-after", "1e300".parse().expect("value"));
        assert_eq!(retry_after(&headers), None, "no panic on an absurd wait");
    }
}
