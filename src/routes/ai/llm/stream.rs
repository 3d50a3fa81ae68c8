//! Streamed answers: an upstream SSE response read as text deltas, the first token awaited
//! within the time-to-first-token limit (retries and fallbacks happen only until then), the
//! rest relayed within the total limit, then logged and cached.
//!
//! The response stream owns the upstream response, so a caller who goes away drops the
//! upstream request with it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Instant;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::cache::{AnswerCache, CachedAnswer};
use super::gateway::{Event, Streamed, ToolDelta, cache_hit};
use super::metrics::LlmMetrics;
use super::plan::{Plan, StrictSchema};
use super::providers::http::{read_answer, send, transport};
use super::providers::{self, ProviderError, StreamPart, ToolCall, Usage};
use super::retry::with_retries;
use super::sse::SseDecoder;
use super::state::Llm;
use super::timing::{Clock, log_answer};
use crate::platform::error::AppError;

/// A tool call seen in a stream: how the provider tells its pieces apart.
struct CallSeen {
    key: Option<u64>,
    id: Option<String>,
    has_arguments: bool,
}

/// An upstream SSE response read as text deltas and tool-call pieces.
struct Upstream {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    decoder: SseDecoder,
    provider: &'static dyn providers::Provider,
    pending: VecDeque<StreamPart>,
    ended: bool,
    usage: Usage,
    finish_reason: Option<String>,
    /// The tool calls so far, in order: a call's position is its index in the stream we
    /// send.
    calls: Vec<CallSeen>,
    /// See `Attempt::json_tool`: tool-call pieces are the answer's text.
    json_tool: bool,
}

impl Upstream {
    fn new(
        response: reqwest::Response,
        provider: &'static dyn providers::Provider,
        json_tool: bool,
    ) -> Upstream {
        Upstream::from_parts(
            Box::pin(response.bytes_stream()),
            provider,
            VecDeque::new(),
            json_tool,
        )
    }

    fn from_parts(
        body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
        provider: &'static dyn providers::Provider,
        pending: VecDeque<StreamPart>,
        json_tool: bool,
    ) -> Upstream {
        Upstream {
            body,
            decoder: SseDecoder::default(),
            provider,
            pending,
            ended: false,
            usage: Usage::default(),
            finish_reason: None,
            calls: Vec::new(),
            json_tool,
        }
    }

    /// A whole answer read as a stream of one piece.
    fn whole(
        answer: providers::ChatResponse,
        provider: &'static dyn providers::Provider,
        json_tool: bool,
    ) -> Upstream {
        let mut pending = VecDeque::new();
        if !answer.text.is_empty() {
            pending.push_back(StreamPart::Text(answer.text));
        }
        pending.extend(
            answer
                .tool_calls
                .into_iter()
                .map(|call| StreamPart::ToolCall {
                    key: None,
                    id: Some(call.id),
                    name: Some(call.name),
                    arguments: call.arguments,
                }),
        );
        pending.push_back(StreamPart::Usage(answer.usage));
        if let Some(reason) = answer.finish_reason {
            pending.push_back(StreamPart::Finish(reason));
        }
        pending.push_back(StreamPart::Done);
        Upstream::from_parts(
            Box::pin(futures_util::stream::empty()),
            provider,
            pending,
            json_tool,
        )
    }

    /// Which call a piece belongs to (and whether it starts one). Providers differ: most
    /// number calls by `index`, Gemini sends each whole without one, some servers reuse
    /// index 0 for every call (a new id under a known index is a new call) or leave the
    /// index out of the pieces after the first (those continue the last call).
    fn place(&mut self, key: Option<u64>, id: Option<&str>, name: Option<&str>) -> (usize, bool) {
        let known = match key {
            Some(k) => self
                .calls
                .iter()
                .rposition(|c| c.key == Some(k))
                .filter(|&at| {
                    let seen = self.calls[at].id.as_deref();
                    id.is_none() || seen.is_none() || seen == id
                }),
            None if id.is_none() && name.is_none() => self.calls.len().checked_sub(1),
            None => None,
        };
        match known {
            Some(at) => (at, false),
            None => {
                self.calls.push(CallSeen {
                    key,
                    id: id.map(str::to_owned),
                    has_arguments: false,
                });
                (self.calls.len() - 1, true)
            }
        }
    }

    /// A call that got no argument bytes gets `{}` (a function without parameters), so
    /// every call's arguments are a JSON object.
    fn close_calls(&mut self) -> Option<Event> {
        let index = self.calls.iter().position(|c| !c.has_arguments)?;
        self.calls[index].has_arguments = true;
        Some(Event::ToolCall(ToolDelta {
            index,
            id: None,
            name: None,
            arguments: "{}".into(),
        }))
    }

    /// The next text delta or tool-call piece; `None` at the end of the answer.
    async fn next_event(&mut self) -> Result<Option<Event>, ProviderError> {
        loop {
            if let Some(part) = self.pending.pop_front() {
                match part {
                    StreamPart::Text(text) => return Ok(Some(Event::Delta(text))),
                    StreamPart::ToolCall { arguments, .. } if self.json_tool => {
                        if !arguments.is_empty() {
                            return Ok(Some(Event::Delta(arguments)));
                        }
                    }
                    StreamPart::ToolCall {
                        key,
                        id,
                        name,
                        arguments,
                    } => {
                        let (index, new) = self.place(key, id.as_deref(), name.as_deref());
                        if !arguments.is_empty() {
                            self.calls[index].has_arguments = true;
                        }
                        // A call's id and name go out once, on its first piece.
                        let (id, name) = if new { (id, name) } else { (None, None) };
                        return Ok(Some(Event::ToolCall(ToolDelta {
                            index,
                            id,
                            name,
                            arguments,
                        })));
                    }
                    StreamPart::Usage(u) => {
                        self.usage.input_tokens = self.usage.input_tokens.max(u.input_tokens);
                        self.usage.output_tokens = self.usage.output_tokens.max(u.output_tokens);
                    }
                    StreamPart::Finish(reason) => {
                        let reason = match reason.as_str() {
                            "tool_calls" if self.json_tool => "stop".to_owned(),
                            "stop" if !self.calls.is_empty() => "tool_calls".to_owned(),
                            _ => reason,
                        };
                        self.finish_reason = Some(reason);
                    }
                    StreamPart::Done => {
                        self.ended = true;
                        self.pending.clear();
                    }
                }
                continue;
            }
            if self.ended {
                if !self.json_tool
                    && let Some(event) = self.close_calls()
                {
                    return Ok(Some(event));
                }
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
pub async fn stream(llm: &Llm, plan: &Plan) -> Result<Streamed, AppError> {
    let mut clock = Clock::new(plan.started);
    if let Some(hit) = cache_hit(llm, plan, &clock).await {
        let end = Event::End {
            usage: hit.usage(),
            finish_reason: hit.finish_reason.clone(),
        };
        let calls: Vec<Event> = hit
            .tool_calls
            .iter()
            .enumerate()
            .map(|(index, call)| Event::ToolCall(ToolDelta::whole(index, call)))
            .collect();
        let events = hit
            .deltas
            .into_iter()
            .map(Event::Delta)
            .chain(calls)
            .chain(std::iter::once(end));
        return Ok(Streamed {
            model: hit.model,
            cached: true,
            events: Box::pin(futures_util::stream::iter(events)),
        });
    }
    let config = &llm.app.config;
    let client = llm.app.outbound.trusted()?.clone();
    let ttft = config.llm_ttft_timeout_s;
    let total = config.llm_timeout_s;
    let started = Instant::now();
    let retries = config.llm_max_retries;
    let ((upstream, first), index) =
        with_retries(plan, retries, &llm.metrics, &mut clock, |index| {
            let attempt = &plan.attempts[index];
            let provider = providers::for_kind(attempt.provider.kind);
            let streams = attempt.model.capabilities.streaming;
            let json_tool = attempt.json_tool;
            let request = provider.request(&client, &attempt.provider, &attempt.chat, streams);
            async move {
                let opened = async {
                    let response = send(request).await?;
                    let mut upstream = if streams {
                        Upstream::new(response, provider, json_tool)
                    } else {
                        // A model that cannot stream answers whole: one delta.
                        let body = read_answer(response).await?;
                        Upstream::whole(provider.parse_response(&body)?, provider, json_tool)
                    };
                    let first = upstream.next_event().await?;
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

    let mut head: VecDeque<Event> = VecDeque::new();
    if !plan.prefill.is_empty() {
        head.push_back(Event::Delta(plan.prefill.clone()));
    }
    head.extend(first);
    let finish = Finisher {
        cache: llm.cache.clone(),
        metrics: llm.metrics.clone(),
        provider: attempt.provider.name.clone(),
        cache_key: plan.cache_key.clone(),
        plan_model: plan.model.clone(),
        answered_by: answered_by.clone(),
        clock,
        upstream_started: Instant::now(),
        deltas: Vec::new(),
        tool_calls: Vec::new(),
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
        strict: plan.strict.clone(),
    };
    let events = futures_util::stream::unfold(run, |mut run| async move {
        let finish = run.finish.as_mut()?;
        if let Some(event) = run.head.pop_front() {
            finish.record(&event);
            return Some((event, run));
        }
        let next = tokio::time::timeout_at(run.deadline, run.upstream.next_event()).await;
        match next {
            Ok(Ok(Some(event))) => {
                finish.record(&event);
                Some((event, run))
            }
            Ok(Ok(None)) => {
                let finish = run.finish.take()?;
                // Already sent: an answer off its strict schema can only end in an error
                // (and is not cached).
                if let Some(why) = run.strict.as_ref().and_then(|s| finish.violation(s)) {
                    tracing::warn!(%why, "streamed answer does not follow the schema");
                    let message = format!(
                        "{} answered JSON that does not follow the schema: {why}",
                        run.label
                    );
                    return Some((Event::Error(message), run));
                }
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
    head: VecDeque<Event>,
    /// `None` once the stream is over.
    finish: Option<Finisher>,
    deadline: tokio::time::Instant,
    strict: Option<StrictSchema>,
}

/// What happens when a stream completes: log, then cache.
struct Finisher {
    cache: AnswerCache,
    metrics: LlmMetrics,
    provider: String,
    cache_key: Option<String>,
    plan_model: String,
    answered_by: String,
    clock: Clock,
    upstream_started: Instant,
    deltas: Vec<String>,
    tool_calls: Vec<ToolCall>,
}

impl Finisher {
    /// Why the text streamed does not follow `strict`, if it does not (an answer of tool
    /// calls or a refusal has no JSON to check).
    fn violation(&self, strict: &StrictSchema) -> Option<String> {
        if !self.tool_calls.is_empty() {
            return None;
        }
        strict.violation(&self.deltas.concat())
    }

    /// Keeps what the answer said so far, for the cache.
    fn record(&mut self, event: &Event) {
        match event {
            Event::Delta(text) => self.deltas.push(text.clone()),
            Event::ToolCall(piece) => {
                if piece.index == self.tool_calls.len() {
                    self.tool_calls.push(ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                }
                if let Some(call) = self.tool_calls.get_mut(piece.index) {
                    if let Some(id) = &piece.id {
                        call.id.clone_from(id);
                    }
                    if let Some(name) = &piece.name {
                        call.name.clone_from(name);
                    }
                    call.arguments.push_str(&piece.arguments);
                }
            }
            Event::Error(_) | Event::End { .. } => {}
        }
    }

    fn done(mut self, usage: Usage, finish_reason: Option<String>) {
        self.clock.provider += self.upstream_started.elapsed();
        log_answer(
            &self.metrics,
            Some(&self.provider),
            &self.plan_model,
            &self.answered_by,
            usage,
            &self.clock,
        );
        if let Some(key) = &self.cache_key {
            let entry = CachedAnswer {
                model: self.answered_by.clone(),
                deltas: std::mem::take(&mut self.deltas),
                tool_calls: std::mem::take(&mut self.tool_calls),
                finish_reason,
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
            };
            self.cache.put_later(key.clone(), entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(
        key: Option<u64>,
        id: Option<&str>,
        name: Option<&str>,
        arguments: &str,
    ) -> StreamPart {
        StreamPart::ToolCall {
            key,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            arguments: arguments.to_owned(),
        }
    }

    /// The calls a stream of pieces makes, joined as a client joins them.
    async fn calls(parts: Vec<StreamPart>) -> Vec<(String, String, String)> {
        let mut upstream = Upstream::from_parts(
            Box::pin(futures_util::stream::empty()),
            providers::for_kind(crate::routes::ai::llm::models::Kind::Openai),
            parts.into_iter().chain([StreamPart::Done]).collect(),
            false,
        );
        let mut calls: Vec<(String, String, String)> = Vec::new();
        while let Some(event) = upstream.next_event().await.expect("event") {
            let Event::ToolCall(piece) = event else {
                continue;
            };
            if piece.index == calls.len() {
                calls.push(Default::default());
            }
            let call = &mut calls[piece.index];
            call.0.push_str(piece.id.as_deref().unwrap_or(""));
            call.1.push_str(piece.name.as_deref().unwrap_or(""));
            call.2.push_str(&piece.arguments);
        }
        calls
    }

    #[tokio::test]
    async fn pieces_of_tool_calls_are_told_apart_however_providers_number_them() {
        let call =
            |id: &str, name: &str, args: &str| (id.to_owned(), name.to_owned(), args.to_owned());
        // OpenAI: an index per call; vLLM repeats the id on every piece.
        let openai = calls(vec![
            piece(Some(0), Some("a"), Some("f"), ""),
            piece(Some(0), Some("a"), None, "{\"x\":"),
            piece(Some(1), Some("b"), Some("g"), "{}"),
            piece(Some(0), None, None, "1}"),
        ])
        .await;
        assert_eq!(openai, [call("a", "f", "{\"x\":1}"), call("b", "g", "{}")]);
        // Ollama: index 0 for every call.
        let reused = calls(vec![
            piece(Some(0), Some("a"), Some("f"), "{\"city\":\"A\"}"),
            piece(Some(0), Some("b"), Some("f"), "{\"city\":\"B\"}"),
        ])
        .await;
        assert_eq!(reused.len(), 2);
        // No index at all: whole calls (Gemini), and continuations without id or name.
        let keyless = calls(vec![
            piece(None, Some("a"), Some("f"), "{\"x\""),
            piece(None, None, None, ":2}"),
            piece(None, Some("b"), Some("g"), ""),
        ])
        .await;
        assert_eq!(
            keyless,
            [call("a", "f", "{\"x\":2}"), call("b", "g", "{}")],
            "a call without arguments gets {{}}"
        );
    }
}
