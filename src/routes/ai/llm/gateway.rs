//! Running a plan for a whole answer, shared by both faces (native and OpenAI-compatible):
//! the cache first, then each model with timeouts and retries; the answer is logged and
//! cached. Streamed answers are in `stream.rs`, which shares the cache lookup here.

use std::pin::Pin;

use futures_util::Stream;

use super::cache::CachedAnswer;
use super::plan::Plan;
use super::providers::http::{read_answer, send};
use super::providers::{self, ProviderError, Usage};
use super::retry::with_retries;
use super::state::Llm;
use super::timing::{Clock, log_answer};
use crate::platform::error::AppError;

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The model that answered.
    pub model: String,
    /// The full text: prefill and continuation.
    pub text: String,
    pub usage: Usage,
    pub finish_reason: Option<String>,
    pub cached: bool,
}

/// What a streamed answer yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Delta(String),
    /// The stream broke after it started (the status cannot change any more).
    Error(String),
    End {
        usage: Usage,
        finish_reason: Option<String>,
    },
}

/// A streamed answer.
pub struct Streamed {
    pub model: String,
    pub cached: bool,
    pub events: Pin<Box<dyn Stream<Item = Event> + Send>>,
}

/// The cached answer to this plan, if there is one (logged as a hit).
pub async fn cache_hit(llm: &Llm, plan: &Plan, clock: &Clock) -> Option<CachedAnswer> {
    let hit = llm.cache.get(plan.cache_key.as_deref()?).await?;
    log_answer(
        &llm.metrics,
        None,
        &plan.model,
        &hit.model,
        hit.usage(),
        clock,
    );
    Some(hit)
}

/// Cuts `text` at the first stop sequence (for models that cannot stop by themselves).
fn cut_at_stop(text: &mut String, stop: &[String]) {
    if let Some(at) = stop.iter().filter_map(|s| text.find(s.as_str())).min() {
        text.truncate(at);
    }
}

/// A whole answer: from the cache, or from the first model that gives one.
pub async fn complete(llm: &Llm, plan: &Plan) -> Result<Answer, AppError> {
    let mut clock = Clock::new(plan.started);
    if let Some(hit) = cache_hit(llm, plan, &clock).await {
        return Ok(Answer {
            text: hit.text(),
            usage: hit.usage(),
            model: hit.model,
            finish_reason: hit.finish_reason,
            cached: true,
        });
    }
    let config = &llm.app.config;
    let client = llm.app.outbound.trusted()?.clone();
    let total = config.llm_timeout_s;
    let (response, index) = with_retries(
        plan,
        config.llm_max_retries,
        &llm.metrics,
        &mut clock,
        |index| {
            let attempt = &plan.attempts[index];
            let provider = providers::for_kind(attempt.provider.kind);
            let request = provider.request(&client, &attempt.provider, &attempt.chat, false);
            let call = async move {
                let body = read_answer(send(request).await?).await?;
                provider.parse_response(&body)
            };
            async move {
                match tokio::time::timeout(total, call).await {
                    Ok(result) => result,
                    Err(_) => Err(ProviderError::Timeout("total")),
                }
            }
        },
    )
    .await?;
    let attempt = &plan.attempts[index];
    let mut text = response.text;
    if attempt.local_stop {
        cut_at_stop(&mut text, &plan.stop);
    }
    let text = format!("{}{text}", plan.prefill);
    log_answer(
        &llm.metrics,
        Some(&attempt.provider.name),
        &plan.model,
        &attempt.model.id,
        response.usage,
        &clock,
    );
    if let Some(key) = &plan.cache_key {
        let entry = CachedAnswer {
            model: attempt.model.id.clone(),
            deltas: vec![text.clone()],
            finish_reason: response.finish_reason.clone(),
            input_tokens: response.usage.input_tokens,
            output_tokens: response.usage.output_tokens,
        };
        llm.cache.put_later(key.clone(), entry);
    }
    Ok(Answer {
        model: attempt.model.id.clone(),
        text,
        usage: response.usage,
        finish_reason: response.finish_reason,
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_sequences_cut_locally() {
        let mut text = "one END two STOP".to_owned();
        cut_at_stop(&mut text, &["STOP".into(), "END".into()]);
        assert_eq!(text, "one ");
    }
}
