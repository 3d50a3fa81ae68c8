//! Planning a request: check it, resolve its model (or task) and fallbacks in the registry,
//! and fit the conversation to each model's capabilities — system text where there is no
//! system prompt, a prefill emulated where a model cannot continue a turn, limits clamped —
//! and compute its cache key. No I/O: `gateway` and `stream` run the plan.

use std::time::Instant;

use axum::http::StatusCode;
use serde_json::json;

use super::models::{Kind, LookupError, Model, ProviderConfig, Registry};
use super::providers::{ChatRequest, Message, ResponseFormat, Role, Sampling};
use crate::platform::error::AppError;
use crate::platform::hash::cache_key;

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
    pub sampling: Sampling,
    /// The end user the caller names (`user`), forwarded where the provider takes one.
    pub user: Option<String>,
    pub response_format: ResponseFormat,
    pub cache: bool,
    /// Whether the gateway retries a provider's 429 (the native face), or hands it to a
    /// caller that retries on its own (the OpenAI SDKs do).
    pub retry_rate_limits: bool,
}

/// One model to try, with the request fitted to it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub model: Model,
    pub provider: ProviderConfig,
    pub chat: ChatRequest,
    /// Whether the model cannot honour stop sequences (we cut the text ourselves).
    pub local_stop: bool,
}

/// A request ready to run: the models in order, the prefill and the cache key.
#[derive(Debug, Clone)]
pub struct Plan {
    pub attempts: Vec<Attempt>,
    /// The trailing assistant text the answer continues (returned in front of it).
    pub prefill: String,
    /// `None` when the caller said `cache: false`.
    pub cache_key: Option<String>,
    /// The first model's gateway id.
    pub model: String,
    /// The caller's stop sequences (cut locally for models without them).
    pub stop: Vec<String>,
    /// When the gateway took the request (for the overhead in the log).
    pub started: Instant,
    /// See `Ask::retry_rate_limits`.
    pub retry_rate_limits: bool,
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
    let first_id = first.id.clone();
    let mut chain = vec![(first, first_provider.clone())];
    for name in &ask.fallbacks {
        let (model, provider) = registry.resolve(name)?;
        chain.push((model, provider.clone()));
    }
    for (model, provider) in &chain {
        // Gemini has no field for the end user.
        let no_user = ask.user.is_some() && provider.kind == Kind::Gemini;
        let no_format = !ask.response_format.supported_by(provider.kind);
        if let Some(param) = ask
            .sampling
            .unsupported_by(provider.kind)
            .or(no_user.then_some("user"))
            .or(no_format.then_some("response_format"))
        {
            return Err(AppError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_parameter",
                format!(
                    "model {} (provider {}) has no {param}; remove it, or pick a model that has",
                    model.id, provider.name
                ),
            )
            .with_param(param));
        }
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
        cache_key(
            &json!({
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
                "top_p": ask.sampling.top_p,
                "seed": ask.sampling.seed,
                "presence_penalty": ask.sampling.presence_penalty,
                "frequency_penalty": ask.sampling.frequency_penalty,
                "response_format": ask.response_format.cache_part(),
            })
            .to_string(),
        )
    });
    Ok(Plan {
        model: first_id,
        attempts,
        prefill,
        cache_key,
        stop: ask.stop.clone(),
        started,
        retry_rate_limits: ask.retry_rate_limits,
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
    if !caps.system_prompt
        && let Some(text) = system.take()
    {
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
        sampling: ask.sampling,
        user: ask.user.clone(),
        response_format: ask.response_format.clone(),
    }
}
