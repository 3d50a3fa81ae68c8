//! Running a plan for a whole answer, shared by both faces (native and OpenAI-compatible):
//! the cache first, then each model with timeouts and retries; the answer is logged and
//! cached. Streamed answers are in `stream.rs`, which shares the cache lookup here.

use std::pin::Pin;

use axum::http::StatusCode;
use futures_util::Stream;

use super::cache::CachedAnswer;
use super::plan::{Attempt, Plan};
use super::providers::http::{read_answer, send};
use super::providers::{self, ChatResponse, JSON_TOOL, ProviderError, ToolCall, Usage};
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
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub finish_reason: Option<String>,
    pub cached: bool,
}

/// What a streamed answer yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Delta(String),
    ToolCall(ToolDelta),
    /// The stream broke after it started (the status cannot change any more).
    Error(String),
    End {
        usage: Usage,
        finish_reason: Option<String>,
    },
}

/// A piece of a streamed tool call, as OpenAI streams them: the first piece of call `index`
/// has its id and name, the others only add to its arguments.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ToolDelta {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub arguments: String,
}

impl ToolDelta {
    /// A whole call as one piece.
    pub fn whole(index: usize, call: &ToolCall) -> ToolDelta {
        ToolDelta {
            index,
            id: Some(call.id.clone()),
            name: Some(call.name.clone()),
            arguments: call.arguments.clone(),
        }
    }
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

/// An answer as the caller asked for it: a JSON answer that came as a forced tool call is
/// text again, and an answer with tool calls finishes with `tool_calls`.
pub fn read_back(attempt: &Attempt, mut response: ChatResponse) -> ChatResponse {
    if attempt.json_tool {
        if let Some(call) = response.tool_calls.iter().find(|c| c.name == JSON_TOOL) {
            response.text = call.arguments.clone();
        }
        response.tool_calls.clear();
        if response.finish_reason.as_deref() == Some("tool_calls") {
            response.finish_reason = Some("stop".into());
        }
    } else if !response.tool_calls.is_empty() && response.finish_reason.as_deref() == Some("stop") {
        response.finish_reason = Some("tool_calls".into());
    }
    response
}

/// A whole answer: from the cache, or from the first model that gives one. An answer that
/// breaks the plan's strict schema is asked for once more, then refused.
pub async fn complete(llm: &Llm, plan: &Plan) -> Result<Answer, AppError> {
    let mut clock = Clock::new(plan.started);
    if let Some(hit) = cache_hit(llm, plan, &clock).await {
        return Ok(Answer {
            text: hit.text(),
            usage: hit.usage(),
            model: hit.model,
            tool_calls: hit.tool_calls,
            finish_reason: hit.finish_reason,
            cached: true,
        });
    }
    let mut retried = false;
    loop {
        let (response, index) = call(llm, plan, &mut clock).await?;
        let attempt = &plan.attempts[index];
        let response = read_back(attempt, response);
        let mut text = response.text;
        if attempt.local_stop {
            cut_at_stop(&mut text, &plan.stop);
        }
        let text = format!("{}{text}", plan.prefill);
        // Tool calls and refusals carry no JSON answer to check.
        let checked = response.tool_calls.is_empty()
            && !response
                .finish_reason
                .as_deref()
                .is_some_and(|r| r.starts_with("content_filter"));
        let violation = plan
            .strict
            .as_ref()
            .filter(|_| checked)
            .and_then(|s| s.violation(&text));
        if let Some(why) = violation {
            tracing::warn!(model = %attempt.model.id, %why, "answer does not follow the schema");
            log_answer(
                &llm.metrics,
                Some(&attempt.provider.name),
                &plan.model,
                &attempt.model.id,
                response.usage,
                &clock,
            );
            if !retried {
                retried = true;
                continue;
            }
            return Err(AppError::new(
                StatusCode::BAD_GATEWAY,
                "schema_violation",
                format!(
                    "model {} answered twice with JSON that does not follow the schema: {why}",
                    attempt.model.id
                ),
            ));
        }
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
                tool_calls: response.tool_calls.clone(),
                finish_reason: response.finish_reason.clone(),
                input_tokens: response.usage.input_tokens,
                output_tokens: response.usage.output_tokens,
            };
            llm.cache.put_later(key.clone(), entry);
        }
        return Ok(Answer {
            model: attempt.model.id.clone(),
            text,
            tool_calls: response.tool_calls,
            usage: response.usage,
            finish_reason: response.finish_reason,
            cached: false,
        });
    }
}

/// One whole answer from the first model that gives one, with timeouts and retries.
async fn call(
    llm: &Llm,
    plan: &Plan,
    clock: &mut Clock,
) -> Result<(ChatResponse, usize), AppError> {
    let config = &llm.app.config;
    let client = llm.app.outbound.trusted()?.clone();
    let total = config.llm_timeout_s;
    with_retries(plan, config.llm_max_retries, &llm.metrics, clock, |index| {
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
    })
    .await
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
