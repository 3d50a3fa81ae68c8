//! Planning a request: check it, resolve its model (or task) and fallbacks in the registry,
//! and fit the conversation to each model's capabilities — system text where there is no
//! system prompt, a prefill emulated where a model cannot continue a turn, limits clamped —
//! and compute its cache key. No I/O: `gateway` and `stream` run the plan.

use std::time::Instant;

use axum::http::StatusCode;
use serde_json::json;

use super::models::{Kind, LookupError, Model, ProviderConfig, Registry};
use super::providers::{
    ChatRequest, Message, Part, ResponseFormat, Role, Sampling, ToolChoice, Tools,
};
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

/// One message as a face hands it over (a tool's answer is a user message with a
/// `ToolResult` part whose name the plan fills in).
#[derive(Debug, Clone)]
pub struct AskMessage {
    pub role: AskRole,
    pub parts: Vec<Part>,
}

/// A request as both faces hand it over: already parsed, not yet fitted to a model.
#[derive(Debug, Clone)]
pub struct Ask {
    pub messages: Vec<AskMessage>,
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
    pub tools: Tools,
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
    /// Whether a JSON answer comes as the input of a forced tool call (Anthropic), to be
    /// read back as the answer's text.
    pub json_tool: bool,
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
    /// The schema a whole answer must follow (`response_format` with `strict: true`).
    pub strict: Option<StrictSchema>,
}

/// A compiled JSON Schema that answers are checked against.
#[derive(Clone)]
pub struct StrictSchema(std::sync::Arc<jsonschema::Validator>);

impl std::fmt::Debug for StrictSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StrictSchema")
    }
}

impl StrictSchema {
    /// Why `text` does not follow the schema, if it does not.
    pub fn violation(&self, text: &str) -> Option<String> {
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => return Some(format!("the answer is not JSON ({e})")),
        };
        self.0.validate(&value).err().map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{e} (at {at})")
            }
        })
    }
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
    let has_images = ask
        .messages
        .iter()
        .any(|m| m.parts.iter().any(|p| matches!(p, Part::Image(_))));
    for (model, provider) in &chain {
        // Gemini has no field for the end user, nor a way to keep to one call per answer.
        let no_user = ask.user.is_some() && provider.kind == Kind::Gemini;
        let no_serial = ask.tools.parallel == Some(false) && provider.kind == Kind::Gemini;
        // Anthropic's JSON answers are a forced tool call: no room for the caller's tools.
        let no_format = provider.kind == Kind::Anthropic
            && ask.response_format != ResponseFormat::Text
            && !ask.tools.list.is_empty();
        if let Some(param) = ask
            .sampling
            .unsupported_by(provider.kind)
            .or(no_user.then_some("user"))
            .or(no_serial.then_some("parallel_tool_calls"))
            .or(no_format.then_some("response_format"))
        {
            let why = if no_format && param == "response_format" {
                " beside tools"
            } else {
                ""
            };
            return Err(AppError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_parameter",
                format!(
                    "model {} (provider {}) has no {param}{why}; remove it, or pick a model that has",
                    model.id, provider.name
                ),
            )
            .with_param(param));
        }
        if has_images && !model.capabilities.images {
            return Err(AppError::new(
                StatusCode::BAD_REQUEST,
                "images_not_supported",
                format!(
                    "model {} does not take images; send text only, or pick a model with the images capability",
                    model.id
                ),
            )
            .with_param("messages"));
        }
    }
    check_tools(&ask.tools)?;
    let strict = match ask.response_format.strict_schema() {
        Some(schema) => Some(StrictSchema(std::sync::Arc::new(
            jsonschema::validator_for(schema).map_err(|e| {
                AppError::bad_request(format!(
                    "response_format's schema is not a valid JSON Schema: {e}"
                ))
                .with_param("response_format")
            })?,
        ))),
        None => None,
    };
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
    let mut system: Vec<String> = ask.system.iter().cloned().collect();
    let mut turns: Vec<Message> = Vec::new();
    let mut call_names: Vec<(String, String)> = Vec::new();
    for message in &ask.messages {
        let role = match message.role {
            AskRole::System => {
                system.push(
                    Message {
                        role: Role::User,
                        parts: message.parts.clone(),
                    }
                    .joined_text(),
                );
                continue;
            }
            AskRole::User => Role::User,
            AskRole::Assistant => Role::Assistant,
        };
        let mut parts = message.parts.clone();
        for part in &mut parts {
            match part {
                Part::ToolCall(call) => call_names.push((call.id.clone(), call.name.clone())),
                Part::ToolResult(result) => {
                    result.name = call_names
                        .iter()
                        .rev()
                        .find(|(id, _)| *id == result.call_id)
                        .map(|(_, name)| name.clone())
                        .ok_or_else(|| {
                            AppError::bad_request(format!(
                                "the tool answer for {:?} follows no assistant tool call with that id",
                                result.call_id
                            ))
                            .with_param("messages")
                        })?;
                }
                _ => {}
            }
        }
        // Consecutive turns of one role become one (Anthropic wants alternation).
        match turns.last_mut() {
            Some(last) if last.role == role => append_parts(&mut last.parts, parts),
            _ => turns.push(Message { role, parts }),
        }
    }
    if !turns.iter().any(|m| m.role == Role::User) {
        return Err(AppError::bad_request(
            "\"messages\" needs at least one user message",
        ));
    }
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    // A prefill (a trailing assistant turn of text) loses its trailing whitespace (Anthropic
    // refuses it, and models continue better without it); an empty one is no prefill.
    if let Some(last) = turns
        .last_mut()
        .filter(|m| m.role == Role::Assistant && m.is_text())
    {
        let text = last.joined_text();
        let text = text.trim_end();
        if text.is_empty() {
            turns.pop();
        } else {
            *last = Message::text(Role::Assistant, text);
        }
    }
    let prefill = match turns.last() {
        Some(last) if last.role == Role::Assistant && last.is_text() => last.joined_text(),
        _ => String::new(),
    };
    if !prefill.is_empty() && ask.response_format != ResponseFormat::Text {
        return Err(AppError::bad_request(
            "a JSON answer cannot continue a prefill (a trailing assistant message); remove one of them",
        )
        .with_param("response_format"));
    }

    let attempts = chain
        .into_iter()
        .map(|(model, provider)| {
            let chat = fit(&model, &provider, &turns, system.as_deref(), &prefill, ask);
            Attempt {
                local_stop: !model.capabilities.stop_sequences && !ask.stop.is_empty(),
                json_tool: provider.kind == Kind::Anthropic
                    && ask.response_format != ResponseFormat::Text,
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
                    .map(|m| json!([matches!(m.role, Role::User), parts_key(m)]))
                    .collect::<Vec<_>>(),
                "tools": tools_key(&ask.tools),
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
        strict,
    })
}

/// Appends a turn's parts to the turn before it of the same role; two texts meeting are
/// joined as paragraphs.
fn append_parts(parts: &mut Vec<Part>, more: Vec<Part>) {
    for part in more {
        match (parts.last_mut(), part) {
            (Some(Part::Text(last)), Part::Text(text)) => {
                last.push_str("\n\n");
                last.push_str(&text);
            }
            (_, part) => parts.push(part),
        }
    }
}

/// A turn as its cache key sees it: its text when it is text only, else every part.
fn parts_key(m: &Message) -> serde_json::Value {
    if m.is_text() {
        return json!(m.joined_text());
    }
    m.parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => json!({"text": t}),
            Part::Image(url) => json!({"image": url}),
            Part::ToolCall(c) => json!({"call": [c.id, c.name, c.arguments]}),
            Part::ToolResult(r) => json!({"result": [r.call_id, r.content]}),
        })
        .collect()
}

fn tools_key(tools: &Tools) -> serde_json::Value {
    if *tools == Tools::default() {
        return serde_json::Value::Null;
    }
    json!({
        "list": tools.list.iter().map(|t| json!([t.name, t.description, t.parameters])).collect::<Vec<_>>(),
        "choice": tools.choice.as_ref().map(|c| format!("{c:?}")),
        "parallel": tools.parallel,
    })
}

/// Tool names are unique, and a named choice names one of them.
fn check_tools(tools: &Tools) -> Result<(), AppError> {
    let bad = |message: String, param: &str| AppError::bad_request(message).with_param(param);
    for (i, tool) in tools.list.iter().enumerate() {
        if tools.list[..i].iter().any(|t| t.name == tool.name) {
            return Err(bad(format!("two tools are named {:?}", tool.name), "tools"));
        }
    }
    match &tools.choice {
        Some(ToolChoice::Named(name)) if !tools.list.iter().any(|t| t.name == *name) => Err(bad(
            format!("tool_choice names {name:?}, which is not among the tools"),
            "tool_choice",
        )),
        Some(ToolChoice::Required | ToolChoice::Named(_)) if tools.list.is_empty() => Err(bad(
            "tool_choice asks for a tool call, but there are no tools".into(),
            "tool_choice",
        )),
        _ => Ok(()),
    }
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
        messages.push(Message::text(Role::User, CONTINUE_INSTRUCTION));
    }
    let mut system = system.map(str::to_owned);
    if !caps.system_prompt
        && let Some(text) = system.take()
    {
        match messages.iter_mut().find(|m| m.role == Role::User) {
            Some(first) => match first.parts.first_mut() {
                Some(Part::Text(t)) => *t = format!("{text}\n\n{t}"),
                _ => first.parts.insert(0, Part::Text(text)),
            },
            None => messages.insert(0, Message::text(Role::User, text)),
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
        tools: ask.tools.clone(),
    }
}
