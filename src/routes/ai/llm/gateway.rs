//! The gateway proper, shared by both faces (native and OpenAI-compatible): adapt a request
//! to each model's capabilities, consult the cache, call the provider with timeouts,
//! retries and fallbacks, stream or collect the answer, log usage and overhead.
//!
//! Retrying is in `retry.rs`, streamed answers in `stream.rs`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures_util::Stream;
use serde_json::json;

use super::cache::{self, CachedAnswer};
use super::models::{Kind, LookupError, Model, Provider as ProviderConfig, Registry, registry};
use super::providers::{self, ChatRequest, Message, ProviderError, Role, Usage};
use super::retry::{Clock, log_answer, send, with_retries};
use crate::platform::error::AppError;
use crate::platform::state::AppState;

/// Largest non-streamed answer read from a provider.
pub(super) const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// The instruction that emulates a prefill on models that cannot continue a turn.
const CONTINUE_INSTRUCTION: &str = "Continue your last message exactly where it stops. Reply with the continuation only, without repeating any of it.";

/// Who said a message, as callers may write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskRole {
    System,
    User,
    Assistant,
}

/// A request as both faces hand it over: already parsed, not yet fitted to a model.
#[derive(Debug, Clone)]
pub struct Ask {
    pub messages: Vec<(AskRole, String)>,
    pub system: Option<String>,
    pub model: Option<String>,
    pub task: Option<String>,
    pub fallbacks: Vec<String>,
    pub max_tokens: Option<u64>,
    pub stop: Vec<String>,
    pub temperature: Option<f64>,
    pub cache: bool,
}

/// One model to try, with the request fitted to it.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    pub(super) model: Model,
    pub(super) provider: ProviderConfig,
    pub(super) chat: ChatRequest,
    /// Whether the model cannot honour stop sequences (we cut the text ourselves).
    pub(super) local_stop: bool,
}

/// A request ready to run: the models in order, the prefill and the cache key.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(super) attempts: Vec<Attempt>,
    /// The trailing assistant text the answer continues (returned in front of it).
    pub prefill: String,
    /// `None` when the caller said `cache: false`.
    pub(super) cache_key: Option<String>,
    /// The first model's gateway id.
    pub model: String,
    /// The caller's stop sequences (cut locally for models without them).
    pub(super) stop: Vec<String>,
    /// When the gateway took the request (for the overhead in the log).
    pub(super) started: Instant,
}

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

impl From<LookupError> for AppError {
    fn from(e: LookupError) -> Self {
        let code = match e {
            LookupError::UnknownModel { .. } => "unknown_model",
            LookupError::UnknownTask { .. } => "unknown_task",
            LookupError::NotConfigured { .. } => "provider_not_configured",
        };
        AppError::new(StatusCode::BAD_REQUEST, code, e.to_string())
    }
}

/// The registry, or a 500 naming what is wrong with the models file.
pub fn the_registry(state: &AppState) -> Result<Arc<Registry>, AppError> {
    registry(&state.config.llm)
        .map_err(|e| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "llm_models_file", e))
}

/// The error a failed provider call becomes.
pub(super) fn upstream_error(
    model: &Model,
    provider: &ProviderConfig,
    e: &ProviderError,
) -> AppError {
    let message = format!("provider {} (model {}) {e}", provider.name, model.upstream);
    match e {
        ProviderError::Timeout(_) => {
            AppError::new(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", message)
        }
        _ => AppError::new(StatusCode::BAD_GATEWAY, "upstream_error", message),
    }
}

/// Checks the request, resolves the models and fits the request to each. Call it first
/// thing: the gateway's overhead in the log is counted from here.
pub fn plan(registry: &Registry, ask: &Ask) -> Result<Plan, AppError> {
    let started = Instant::now();
    let (first, first_provider) = match (&ask.model, &ask.task) {
        (Some(model), None) => registry.resolve(model)?,
        (None, Some(task)) => registry.resolve_task(task)?,
        _ => {
            return Err(AppError::bad_request(
                "give exactly one of \"model\" or \"task\"",
            ));
        }
    };
    let mut chain = vec![(first.clone(), first_provider.clone())];
    for name in &ask.fallbacks {
        let (model, provider) = registry.resolve(name)?;
        chain.push((model.clone(), provider.clone()));
    }
    if ask.max_tokens == Some(0) {
        return Err(AppError::bad_request("max_tokens must be at least 1"));
    }
    if ask.stop.len() > 4 {
        return Err(AppError::bad_request("at most 4 stop sequences"));
    }
    if ask.stop.iter().any(String::is_empty) {
        return Err(AppError::bad_request("stop sequences cannot be empty"));
    }

    // System text: the field, then any system messages, in order.
    let mut system: Vec<&str> = ask.system.iter().map(String::as_str).collect();
    let mut turns: Vec<Message> = Vec::new();
    for (role, content) in &ask.messages {
        let role = match role {
            AskRole::System => {
                system.push(content);
                continue;
            }
            AskRole::User => Role::User,
            AskRole::Assistant => Role::Assistant,
        };
        // Consecutive turns of one role become one (Anthropic wants alternation).
        match turns.last_mut() {
            Some(last) if last.role == role => {
                last.content.push_str("\n\n");
                last.content.push_str(content);
            }
            _ => turns.push(Message {
                role,
                content: content.clone(),
            }),
        }
    }
    if !turns.iter().any(|m| m.role == Role::User) {
        return Err(AppError::bad_request(
            "\"messages\" needs at least one user message",
        ));
    }
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    // A prefill loses its trailing whitespace (Anthropic refuses it, and models continue
    // better without it); an empty one is no prefill.
    if let Some(last) = turns.last_mut().filter(|m| m.role == Role::Assistant) {
        last.content.truncate(last.content.trim_end().len());
        if last.content.is_empty() {
            turns.pop();
        }
    }
    let prefill = match turns.last() {
        Some(last) if last.role == Role::Assistant => last.content.clone(),
        _ => String::new(),
    };

    let attempts = chain
        .into_iter()
        .map(|(model, provider)| {
            let chat = fit(&model, &provider, &turns, system.as_deref(), &prefill, ask);
            Attempt {
                local_stop: !model.capabilities.stop_sequences && !ask.stop.is_empty(),
                model,
                provider,
                chat,
            }
        })
        .collect::<Vec<_>>();

    let cache_key = ask.cache.then(|| {
        cache::key_of(&json!({
            "v": 1,
            "models": attempts
                .iter()
                .map(|a| [&a.model.id, &a.provider.name, &a.model.upstream])
                .collect::<Vec<_>>(),
            "system": system,
            "messages": turns
                .iter()
                .map(|m| json!([matches!(m.role, Role::User), m.content]))
                .collect::<Vec<_>>(),
            "max_tokens": ask.max_tokens,
            "stop": ask.stop,
            "temperature": ask.temperature,
        }))
    });
    Ok(Plan {
        model: first.id.clone(),
        attempts,
        prefill,
        cache_key,
        stop: ask.stop.clone(),
        started,
    })
}

/// The request as one model can take it: system text prepended where there is no system
/// prompt, a prefill emulated where it cannot continue a turn, limits clamped.
fn fit(
    model: &Model,
    provider: &ProviderConfig,
    turns: &[Message],
    system: Option<&str>,
    prefill: &str,
    ask: &Ask,
) -> ChatRequest {
    let caps = &model.capabilities;
    let mut messages = turns.to_vec();
    if !prefill.is_empty() && !caps.prefill {
        messages.push(Message {
            role: Role::User,
            content: CONTINUE_INSTRUCTION.into(),
        });
    }
    let mut system = system.map(str::to_owned);
    if !caps.system_prompt {
        if let Some(text) = system.take() {
            match messages.iter_mut().find(|m| m.role == Role::User) {
                Some(first) => first.content = format!("{text}\n\n{}", first.content),
                None => messages.insert(
                    0,
                    Message {
                        role: Role::User,
                        content: text,
                    },
                ),
            }
        }
    }
    let limit = (caps.max_output_tokens > 0).then_some(caps.max_output_tokens);
    let max_tokens = match (ask.max_tokens, limit) {
        (Some(asked), Some(limit)) => Some(asked.min(limit)),
        (Some(asked), None) => Some(asked),
        // Anthropic requires `max_tokens`; the others have their own default.
        (None, Some(limit)) if provider.kind == Kind::Anthropic => Some(limit.min(4096)),
        (None, _) => None,
    };
    ChatRequest {
        upstream: model.upstream.clone(),
        system,
        messages,
        max_tokens,
        stop: if caps.stop_sequences {
            ask.stop.clone()
        } else {
            Vec::new()
        },
        temperature: ask.temperature,
    }
}

/// Cuts `text` at the first stop sequence (for models that cannot stop by themselves).
fn cut_at_stop(text: &mut String, stop: &[String]) {
    if let Some(at) = stop.iter().filter_map(|s| text.find(s.as_str())).min() {
        text.truncate(at);
    }
}

/// A whole answer: from the cache, or from the first model that gives one.
pub async fn complete(state: &AppState, plan: &Plan) -> Result<Answer, AppError> {
    let mut clock = Clock {
        started: plan.started,
        provider: Duration::ZERO,
    };
    if let Some(hit) = plan
        .cache_key
        .as_deref()
        .and_then(|k| cache::get(&state.store, k))
    {
        let usage = Usage {
            input_tokens: hit.input_tokens,
            output_tokens: hit.output_tokens,
        };
        log_answer(&plan.model, &hit.model, usage, &clock, "hit");
        return Ok(Answer {
            text: hit.text(),
            model: hit.model,
            usage,
            finish_reason: hit.finish_reason,
            cached: true,
        });
    }
    let client = state.outbound.trusted()?.clone();
    let total = state.config.llm.timeout;
    let (response, index) = with_retries(state, plan, &mut clock, |index| {
        let attempt = &plan.attempts[index];
        let provider = providers::for_kind(attempt.provider.kind);
        let request = provider.request(&client, &attempt.provider, &attempt.chat, false);
        let call = async move {
            let response = send(request).await?;
            let body = crate::platform::outbound::read_capped(response, MAX_ANSWER_BYTES)
                .await
                .map_err(|e| match e {
                    crate::platform::outbound::OutboundError::Timeout => {
                        ProviderError::Timeout("total")
                    }
                    other => ProviderError::Transport(other.to_string()),
                })?;
            provider.parse_response(&body)
        };
        async move {
            match tokio::time::timeout(total, call).await {
                Ok(result) => result,
                Err(_) => Err(ProviderError::Timeout("total")),
            }
        }
    })
    .await?;
    let attempt = &plan.attempts[index];
    let mut text = response.text;
    if attempt.local_stop {
        cut_at_stop(&mut text, &plan.stop);
    }
    let text = format!("{}{text}", plan.prefill);
    log_answer(
        &plan.model,
        &attempt.model.id,
        response.usage,
        &clock,
        "miss",
    );
    if let Some(key) = &plan.cache_key {
        let entry = CachedAnswer {
            model: attempt.model.id.clone(),
            deltas: vec![text.clone()],
            finish_reason: response.finish_reason.clone(),
            input_tokens: response.usage.input_tokens,
            output_tokens: response.usage.output_tokens,
        };
        cache::put_later(&state.store, key.clone(), entry, ttl_ms(state));
    }
    Ok(Answer {
        model: attempt.model.id.clone(),
        text,
        usage: response.usage,
        finish_reason: response.finish_reason,
        cached: false,
    })
}

pub(super) fn ttl_ms(state: &AppState) -> u64 {
    u64::try_from(state.config.llm.cache_ttl.as_millis()).unwrap_or(u64::MAX)
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
