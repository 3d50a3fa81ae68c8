//! The timings of one answer and the `llm answer` log line: model, tokens, total time,
//! provider time and the gateway's own overhead — never prompt or answer text.

use std::time::{Duration, Instant};

use super::metrics::LlmMetrics;
use super::providers::Usage;

/// When the gateway took the request, and how much of the time since went to providers.
pub struct Clock {
    pub started: Instant,
    pub provider: Duration,
}

impl Clock {
    pub fn new(started: Instant) -> Clock {
        Clock {
            started,
            provider: Duration::ZERO,
        }
    }
}

/// Logs an answer and counts it: `provider` answered it, or the cache did (`None`).
pub fn log_answer(
    metrics: &LlmMetrics,
    provider: Option<&str>,
    plan_model: &str,
    answer_model: &str,
    usage: Usage,
    clock: &Clock,
) {
    let total = clock.started.elapsed();
    let overhead = total.saturating_sub(clock.provider);
    metrics.answered(provider, usage, overhead.as_secs_f64());
    let cache = if provider.is_some() { "miss" } else { "hit" };
    tracing::info!(
        model = plan_model,
        answered_by = answer_model,
        cache,
        input_tokens = usage.input_tokens,
        output_tokens = usage.output_tokens,
        total_ms = total.as_secs_f64() * 1000.0,
        provider_ms = clock.provider.as_secs_f64() * 1000.0,
        overhead_ms = overhead.as_secs_f64() * 1000.0,
        "llm answer"
    );
}
