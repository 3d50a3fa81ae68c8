//! The timings of one answer and the `llm answer` log line: model, tokens, total time,
//! provider time and the gateway's own overhead — never prompt or answer text.

use std::time::{Duration, Instant};

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

pub fn log_answer(plan_model: &str, answer_model: &str, usage: Usage, clock: &Clock, cache: &str) {
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
