//! Calling the models of a plan with retries: exponential backoff with jitter (or the
//! provider's own `retry-after`, within bounds) on transient failures, then the next model
//! in the plan.

use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::metrics::LlmMetrics;
use super::models::{Model, ProviderConfig};
use super::plan::Plan;
use super::providers::ProviderError;
use super::timing::Clock;
use crate::platform::error::AppError;

/// First retry waits about this long; each further one twice as long.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// No retry waits longer than this.
const BACKOFF_MAX: Duration = Duration::from_secs(4);

/// How long to wait before retry number `n` (0-based): exponential with jitter in
/// [50%, 100%], bounded.
fn backoff(n: u32) -> Duration {
    let full = BACKOFF_BASE
        .saturating_mul(1u32 << n.min(16))
        .min(BACKOFF_MAX);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u32; // 0..1000
    full / 2 + full / 2 * jitter / 1000
}

/// The error a failed provider call becomes. What the caller can act on keeps its status: a
/// request the provider refused as malformed is 400 (with the provider's message), its rate
/// limit 429 (with the wait it asked for); the provider refusing our credentials, failing or
/// talking nonsense is 502, not answering in time 504.
pub fn upstream_error(model: &Model, provider: &ProviderConfig, e: &ProviderError) -> AppError {
    let message = format!("provider {} (model {}) {e}", provider.name, model.upstream);
    match e {
        ProviderError::Timeout(_) => {
            AppError::new(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", message)
        }
        ProviderError::Status {
            status: 400 | 422, ..
        } => AppError::new(StatusCode::BAD_REQUEST, "upstream_bad_request", message),
        ProviderError::Status {
            status: 429,
            retry_after,
            ..
        } => {
            // Whole seconds, at least one: what Retry-After can say.
            let seconds = retry_after.map_or(1, |wait| wait.as_secs_f64().ceil().max(1.0) as u64);
            AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "upstream_rate_limited",
                message,
            )
            .with_retry_after(seconds)
        }
        _ => AppError::new(StatusCode::BAD_GATEWAY, "upstream_error", message),
    }
}

/// Runs the plan's attempts in order, each retried up to `max_retries` times, until one
/// succeeds; `call` makes one try of attempt `index`. Answers the value and its index.
pub async fn with_retries<T, F, Fut>(
    plan: &Plan,
    max_retries: u32,
    metrics: &LlmMetrics,
    clock: &mut Clock,
    mut call: F,
) -> Result<(T, usize), AppError>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let mut last: Option<AppError> = None;
    for (index, attempt) in plan.attempts.iter().enumerate() {
        for n in 0..=max_retries {
            let sent = Instant::now();
            let result = call(index).await;
            clock.provider += sent.elapsed();
            metrics.call(&attempt.provider.name, result.as_ref().map(|_| ()));
            let e = match result {
                Ok(value) => return Ok((value, index)),
                Err(e) => e,
            };
            tracing::warn!(
                model = %attempt.model.id,
                try_number = n + 1,
                error = %e,
                "llm call failed"
            );
            last = Some(upstream_error(&attempt.model, &attempt.provider, &e));
            // A caller that retries rate limits itself (an SDK) gets the provider's 429 at
            // once: our retries under its retries would multiply the calls.
            let rate_limited = matches!(e, ProviderError::Status { status: 429, .. });
            if !e.retryable() || n == max_retries || (rate_limited && !plan.retry_rate_limits) {
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
}
