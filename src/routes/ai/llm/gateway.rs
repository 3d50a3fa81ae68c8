//! The gateway proper, shared by both faces (native and OpenAI-compatible): adapt a request
//! to each model's capabilities, consult the cache, call the provider with timeouts,
//! retries and fallbacks, stream or collect the answer, log usage and overhead.
//!
//! Streaming: the upstream call is retried or replaced by a fallback only until its first
//! token arrives; after that the bytes are the caller's. The response stream owns the
//! upstream response, so a caller who goes away drops the upstream request with it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::json;

use super::cache::{self, CachedAnswer};
use super::models::{Kind, LookupError, Model, Provider as ProviderConfig, Registry, registry};
use super::providers::{
    self, ChatRequest, Message, ProviderError, Role, StreamPart, Usage, error_message,
};
use super::sse::SseDecoder;
use crate::platform::error::AppError;
use crate::platform::state::AppState;

/// Largest non-streamed answer read from a provider.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Largest error body read from a provider.
const MAX_ERROR_BYTES: usize = 64 * 1024;
/// First retry waits about this long; each further one twice as long.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// No retry waits longer than this.
const BACKOFF_MAX: Duration = Duration::from_secs(4);
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
struct Attempt {
    model: Model,
    provider: ProviderConfig,
    chat: ChatRequest,
    /// Whether the model cannot honour stop sequences (we cut the text ourselves).
    local_stop: bool,
}

/// A request ready to run: the models in order, the prefill and the cache key.
#[derive(Debug, Clone)]
pub struct Plan {
    attempts: Vec<Attempt>,
    /// The trailing assistant text the answer continues (returned in front of it).
    pub prefill: String,
    /// `None` when the caller said `cache: false`.
    cache_key: Option<String>,
    /// The first model's gateway id.
    pub model: String,
    /// The caller's stop sequences (cut locally for models without them).
    stop: Vec<String>,
    /// When the gateway took the request (for the overhead in the log).
    started: Instant,
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
fn upstream_error(model: &Model, provider: &ProviderConfig, e: &ProviderError) -> AppError {
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

/// How long to wait before retry number `n` (0-based): exponential with jitter in
/// [50%, 100%], bounded.
fn backoff(n: u32) -> Duration {
    let full = BACKOFF_BASE
        .saturating_mul(1u32 << n.min(16))
        .min(BACKOFF_MAX);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u32; // 0..1000
    full / 2 + full / 2 * jitter / 1000
}

/// Sends a request and returns the response if its status is a success; an error status
/// becomes `ProviderError::Status` with the provider's message.
async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
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

fn transport(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::Timeout("total");
    }
    ProviderError::Transport(crate::platform::outbound::classify(e).to_string())
}

/// Timings of one answer, for the log.
struct Clock {
    started: Instant,
    provider: Duration,
}

fn log_answer(plan_model: &str, answer_model: &str, usage: Usage, clock: &Clock, cache: &str) {
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
async fn with_retries<T, F, Fut>(
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
    let client = state.outbound.trusted().clone();
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

fn ttl_ms(state: &AppState) -> u64 {
    u64::try_from(state.config.llm.cache_ttl.as_millis()).unwrap_or(u64::MAX)
}

/// An upstream SSE response read as text deltas.
struct Upstream {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    decoder: SseDecoder,
    provider: &'static dyn providers::Provider,
    pending: VecDeque<StreamPart>,
    ended: bool,
    usage: Usage,
    finish_reason: Option<String>,
}

impl Upstream {
    fn new(response: reqwest::Response, provider: &'static dyn providers::Provider) -> Upstream {
        Upstream {
            body: Box::pin(response.bytes_stream()),
            decoder: SseDecoder::default(),
            provider,
            pending: VecDeque::new(),
            ended: false,
            usage: Usage::default(),
            finish_reason: None,
        }
    }

    /// A whole answer read as a stream of one piece.
    fn whole(
        answer: providers::ChatResponse,
        provider: &'static dyn providers::Provider,
    ) -> Upstream {
        let mut pending = VecDeque::from([StreamPart::Usage(answer.usage)]);
        if !answer.text.is_empty() {
            pending.push_front(StreamPart::Text(answer.text));
        }
        if let Some(reason) = answer.finish_reason {
            pending.push_back(StreamPart::Finish(reason));
        }
        pending.push_back(StreamPart::Done);
        Upstream {
            body: Box::pin(futures_util::stream::empty()),
            decoder: SseDecoder::default(),
            provider,
            pending,
            ended: false,
            usage: Usage::default(),
            finish_reason: None,
        }
    }

    /// The next piece of text; `None` at the end of the answer.
    async fn next_text(&mut self) -> Result<Option<String>, ProviderError> {
        loop {
            if let Some(part) = self.pending.pop_front() {
                match part {
                    StreamPart::Text(text) => return Ok(Some(text)),
                    StreamPart::Usage(u) => {
                        self.usage.input_tokens = self.usage.input_tokens.max(u.input_tokens);
                        self.usage.output_tokens = self.usage.output_tokens.max(u.output_tokens);
                    }
                    StreamPart::Finish(reason) => self.finish_reason = Some(reason),
                    StreamPart::Done => {
                        self.ended = true;
                        self.pending.clear();
                    }
                }
                continue;
            }
            if self.ended {
                return Ok(None);
            }
            let events = match self.body.next().await {
                Some(Ok(bytes)) => self.decoder.push(&bytes),
                Some(Err(e)) => return Err(transport(e)),
                None => {
                    self.ended = true;
                    self.decoder.finish()
                }
            };
            for event in events {
                self.pending.extend(self.provider.parse_event(&event)?);
            }
        }
    }
}

/// A streamed answer: replayed from the cache, or from the first model whose stream
/// yields a first token in time.
pub async fn stream(state: &AppState, plan: &Plan) -> Result<Streamed, AppError> {
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
        let end = Event::End {
            usage,
            finish_reason: hit.finish_reason.clone(),
        };
        let events = hit
            .deltas
            .into_iter()
            .map(Event::Delta)
            .chain(std::iter::once(end));
        return Ok(Streamed {
            model: hit.model,
            cached: true,
            events: Box::pin(futures_util::stream::iter(events)),
        });
    }
    let client = state.outbound.trusted().clone();
    let ttft = state.config.llm.ttft_timeout;
    let total = state.config.llm.timeout;
    let started = Instant::now();
    let ((upstream, first), index) = with_retries(state, plan, &mut clock, |index| {
        let attempt = &plan.attempts[index];
        let provider = providers::for_kind(attempt.provider.kind);
        let streams = attempt.model.capabilities.streaming;
        let request = provider.request(&client, &attempt.provider, &attempt.chat, streams);
        async move {
            let opened = async {
                let response = send(request).await?;
                let mut upstream = if streams {
                    Upstream::new(response, provider)
                } else {
                    // A model that cannot stream answers whole: one delta.
                    let body = crate::platform::outbound::read_capped(response, MAX_ANSWER_BYTES)
                        .await
                        .map_err(|e| ProviderError::Transport(e.to_string()))?;
                    Upstream::whole(provider.parse_response(&body)?, provider)
                };
                let first = upstream.next_text().await?;
                Ok::<_, ProviderError>((upstream, first))
            };
            match tokio::time::timeout(ttft, opened).await {
                Ok(result) => result,
                Err(_) => Err(ProviderError::Timeout("first token")),
            }
        }
    })
    .await?;
    let attempt = &plan.attempts[index];
    let answered_by = attempt.model.id.clone();
    let deadline = tokio::time::Instant::from_std(started) + total;

    let mut head: VecDeque<String> = VecDeque::new();
    if !plan.prefill.is_empty() {
        head.push_back(plan.prefill.clone());
    }
    head.extend(first);
    let finish = Finisher {
        state: state.clone(),
        cache_key: plan.cache_key.clone(),
        plan_model: plan.model.clone(),
        answered_by: answered_by.clone(),
        clock,
        upstream_started: Instant::now(),
        deltas: Vec::new(),
    };
    let run = Run {
        label: format!(
            "provider {} (model {})",
            attempt.provider.name, attempt.model.upstream
        ),
        upstream,
        head,
        finish: Some(finish),
        deadline,
    };
    let events = futures_util::stream::unfold(run, |mut run| async move {
        let finish = run.finish.as_mut()?;
        if let Some(text) = run.head.pop_front() {
            finish.deltas.push(text.clone());
            return Some((Event::Delta(text), run));
        }
        let next = tokio::time::timeout_at(run.deadline, run.upstream.next_text()).await;
        match next {
            Ok(Ok(Some(text))) => {
                finish.deltas.push(text.clone());
                Some((Event::Delta(text), run))
            }
            Ok(Ok(None)) => {
                let finish = run.finish.take()?;
                let event = Event::End {
                    usage: run.upstream.usage,
                    finish_reason: run.upstream.finish_reason.clone(),
                };
                finish.done(run.upstream.usage, run.upstream.finish_reason.clone());
                Some((event, run))
            }
            Ok(Err(e)) => {
                run.finish = None;
                tracing::warn!(error = %e, "llm stream broke");
                Some((Event::Error(format!("{} {e}", run.label)), run))
            }
            Err(_) => {
                run.finish = None;
                tracing::warn!("llm stream exceeded the total timeout");
                let message = format!("{} {}", run.label, ProviderError::Timeout("total"));
                Some((Event::Error(message), run))
            }
        }
    });
    Ok(Streamed {
        model: answered_by,
        cached: false,
        events: Box::pin(events),
    })
}

/// The state of a streamed answer in flight.
struct Run {
    /// "provider … (model …)", for error messages.
    label: String,
    upstream: Upstream,
    head: VecDeque<String>,
    /// `None` once the stream is over.
    finish: Option<Finisher>,
    deadline: tokio::time::Instant,
}

/// What happens when a stream completes: log, then cache.
struct Finisher {
    state: AppState,
    cache_key: Option<String>,
    plan_model: String,
    answered_by: String,
    clock: Clock,
    upstream_started: Instant,
    deltas: Vec<String>,
}

impl Finisher {
    fn done(mut self, usage: Usage, finish_reason: Option<String>) {
        self.clock.provider += self.upstream_started.elapsed();
        log_answer(
            &self.plan_model,
            &self.answered_by,
            usage,
            &self.clock,
            "miss",
        );
        if let Some(key) = &self.cache_key {
            let entry = CachedAnswer {
                model: self.answered_by.clone(),
                deltas: std::mem::take(&mut self.deltas),
                finish_reason,
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
            };
            cache::put_later(&self.state.store, key.clone(), entry, ttl_ms(&self.state));
        }
    }
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
    fn stop_sequences_cut_locally() {
        let mut text = "one END two STOP".to_owned();
        cut_at_stop(&mut text, &["STOP".into(), "END".into()]);
        assert_eq!(text, "one ");
    }
}
