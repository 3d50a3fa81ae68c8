//! `toolshed_llm_*`: calls to providers by provider and outcome, tokens in and out by
//! provider, and the gateway's own time per answer (everything but waiting on providers).
//! Labels are the provider names of the models file and fixed outcome words: never a
//! model's answer, a prompt or an error text.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;

use super::providers::{ProviderError, Usage};
use crate::platform::state::AppState;

/// The gateway adds about a tenth of a millisecond: finer buckets than a request's.
const OVERHEAD_BUCKETS: [f64; 12] = [
    0.000_05, 0.0001, 0.000_25, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    provider: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: String,
    direction: &'static str,
}

/// The LLM gateway's metrics; cheap to clone.
#[derive(Clone)]
pub struct LlmMetrics {
    calls: Family<CallLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    overhead: Histogram,
}

/// A call's outcome as a label.
fn outcome(result: Result<(), &ProviderError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(ProviderError::Status { status: 429, .. }) => "rate_limited",
        Err(ProviderError::Status { status, .. }) if *status >= 500 => "server_error",
        Err(ProviderError::Status { .. }) => "client_error",
        Err(ProviderError::Timeout(_)) => "timeout",
        Err(ProviderError::Transport(_)) => "unreachable",
        Err(ProviderError::Protocol(_)) => "unreadable",
    }
}

impl LlmMetrics {
    pub fn register(app: &AppState) -> LlmMetrics {
        let metrics = LlmMetrics {
            calls: Family::default(),
            tokens: Family::default(),
            overhead: Histogram::new(OVERHEAD_BUCKETS),
        };
        app.metrics.register(|registry| {
            registry.register(
                "llm_upstream_requests",
                "Calls to LLM providers by provider and outcome (ok, rate_limited, server_error, client_error, timeout, unreachable, unreadable)",
                metrics.calls.clone(),
            );
            registry.register(
                "llm_tokens",
                "Tokens providers counted, by provider and direction (input, output)",
                metrics.tokens.clone(),
            );
            registry.register_with_unit(
                "llm_gateway_overhead",
                "The gateway's own time per answer: all of it but the wait on providers",
                Unit::Seconds,
                metrics.overhead.clone(),
            );
        });
        metrics
    }

    /// One call to `provider` ended so.
    pub fn call(&self, provider: &str, result: Result<(), &ProviderError>) {
        self.calls
            .get_or_create(&CallLabels {
                provider: provider.to_owned(),
                outcome: outcome(result),
            })
            .inc();
    }

    /// An answer is complete: `provider` answered it (`None`: the cache did).
    pub fn answered(&self, provider: Option<&str>, usage: Usage, overhead_s: f64) {
        self.overhead.observe(overhead_s);
        let Some(provider) = provider else { return };
        for (direction, count) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
        ] {
            self.tokens
                .get_or_create(&TokenLabels {
                    provider: provider.to_owned(),
                    direction,
                })
                .inc_by(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_fixed_words() {
        let status = |status| ProviderError::Status {
            status,
            message: "secret prompt text".into(),
            retry_after: None,
        };
        assert_eq!(outcome(Ok(())), "ok");
        assert_eq!(outcome(Err(&status(429))), "rate_limited");
        assert_eq!(outcome(Err(&status(503))), "server_error");
        assert_eq!(outcome(Err(&status(400))), "client_error");
        assert_eq!(outcome(Err(&ProviderError::Timeout("total"))), "timeout");
        assert_eq!(
            outcome(Err(&ProviderError::Transport("x".into()))),
            "unreachable"
        );
    }
}
