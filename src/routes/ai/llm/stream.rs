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
use super::gateway::{Event, Streamed, cache_hit};
use super::metrics::LlmMetrics;
use super::plan::Plan;
use super::providers::http::{read_answer, send, transport};
use super::providers::{self, ProviderError, StreamPart, Usage};
use super::retry::with_retries;
use super::sse::SseDecoder;
use super::state::Llm;
use super::timing::{Clock, log_answer};
use crate::platform::error::AppError;

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
pub async fn stream(llm: &Llm, plan: &Plan) -> Result<Streamed, AppError> {
    let mut clock = Clock::new(plan.started);
    if let Some(hit) = cache_hit(llm, plan, &clock).await {
        let end = Event::End {
            usage: hit.usage(),
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
            let request = provider.request(&client, &attempt.provider, &attempt.chat, streams);
            async move {
                let opened = async {
                    let response = send(request).await?;
                    let mut upstream = if streams {
                        Upstream::new(response, provider)
                    } else {
                        // A model that cannot stream answers whole: one delta.
                        let body = read_answer(response).await?;
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
        cache: llm.cache.clone(),
        metrics: llm.metrics.clone(),
        provider: attempt.provider.name.clone(),
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
    cache: AnswerCache,
    metrics: LlmMetrics,
    provider: String,
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
                finish_reason,
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
            };
            self.cache.put_later(key.clone(), entry);
        }
    }
}
