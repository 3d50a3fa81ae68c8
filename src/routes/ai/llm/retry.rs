//! Calling a provider with retries: exponential backoff with jitter (or the provider's own
//! `retry-after`, within bounds) on transient failures, then the next model in the plan.
//! Also the shared pieces of one HTTP exchange with a provider: sending, reading its error,
//! and the timings the log reports.

use std::time::{Duration, Instant};

use super::gateway::{Plan, upstream_error};
use super::providers::{ProviderError, Usage, error_message};
use crate::platform::error::AppError;
use crate::platform::state::AppState;

/// Largest error body read from a provider.
const MAX_ERROR_BYTES: usize = 64 * 1024;
/// First retry waits about this long; each further one twice as long.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// No retry waits longer than this.
const BACKOFF_MAX: Duration = Duration::from_secs(4);

/// How long to wait before retry number `n` (0-based): exponential with jitter in
/// [50%, 100%], bounded.
pub(super) fn backoff(n: u32) -> Duration {
    let full = BACKOFF_BASE
        .saturating_mul(1u32 << n.min(16))
        .min(BACKOFF_MAX);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u32; // 0..1000
    full / 2 + full / 2 * jitter / 1000
}

/// Sends a request and returns the response if its status is a success; an error status
/// becomes `ProviderError::Status` with the provider's message.
pub(super) async fn send(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ProviderError> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let body = crate::platform::outbound::read_capped(response, MAX_ERROR_BYTES)
        .await
        .unwrap_or_default();
    Err(ProviderError::Status {
        status: status.as_u16(),
        message: error_message(&body),
        retry_after,
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
    number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))
}

pub(super) fn transport(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::Timeout("total");
    }
    ProviderError::Transport(crate::platform::outbound::classify(e).to_string())
}

/// Timings of one answer, for the log.
pub(super) struct Clock {
    pub(super) started: Instant,
    pub(super) provider: Duration,
}

pub(super) fn log_answer(
    plan_model: &str,
    answer_model: &str,
    usage: Usage,
    clock: &Clock,
    cache: &str,
) {
    let total = clock.started.elapsed();
    tracing::info!(
        model = plan_model,
        answered_by = answer_model,
        cache,
        input_tokens = usage.input_tokens,
        output_tokens = usage.output_tokens,
        total_ms = total.as_secs_f64() * 1000.0,
        provider_ms = clock.provider.as_secs_f64() * 1000.0,
        overhead_ms = total.saturating_sub(clock.provider).as_secs_f64() * 1000.0,
        "llm answer"
    );
}

/// Runs the attempts in order, each retried, until one succeeds; `call` makes one try.
pub(super) async fn with_retries<T, F, Fut>(
    state: &AppState,
    plan: &Plan,
    clock: &mut Clock,
    mut call: F,
) -> Result<(T, usize), AppError>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let max_retries = state.config.llm.max_retries;
    let mut last: Option<AppError> = None;
    for (index, attempt) in plan.attempts.iter().enumerate() {
        for n in 0..=max_retries {
            let sent = Instant::now();
            let result = call(index).await;
            clock.provider += sent.elapsed();
            match result {
                Ok(value) => return Ok((value, index)),
                Err(e) => {
                    tracing::warn!(
                        model = %attempt.model.id,
                        try_number = n + 1,
                        error = %e,
                        "llm call failed"
                    );
                    let retry = e.retryable() && n < max_retries;
                    last = Some(upstream_error(&attempt.model, &attempt.provider, &e));
                    if !retry {
                        break;
                    }
                    // The provider's own wait if it asked for one, within our bound.
                    let wait = match &e {
                        ProviderError::Status {
                            retry_after: Some(asked),
                            ..
                        } => (*asked).max(backoff(n)).min(BACKOFF_MAX),
                        _ => backoff(n),
                    };
                    clock.provider += wait;
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| AppError::internal("no model to try")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        for n in 0..20 {
            let wait = backoff(n);
            let full = BACKOFF_BASE.saturating_mul(1 << n.min(16)).min(BACKOFF_MAX);
            assert!(wait >= full / 2 && wait <= full, "{n}: {wait:?}");
        }
    }

    #[test]
    fn retry_after_headers_are_read() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "2".parse().expect("value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "250".parse().expect("value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
        headers.insert("retry-after-ms", "soon".parse().expect("value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
    }
}
