//! The Anthropic-compatible face, so the official Anthropic SDKs (and tools built on them)
//! work with only their base URL set to `…/api/ai/llm`: `POST /v1/messages`, whole or as
//! Anthropic's typed SSE events, tools included, over every provider.

use std::convert::Infallible;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::anthropic_error::{AnthropicError, AnthropicErrorBody, error_type};
use super::anthropic_request;
use super::gateway::{self, Event};
use super::handlers::{answer_headers, cache_header};
use super::providers::{ToolCall, Usage};
use super::state::Llm;
use super::{images, plan};
use crate::platform::error::AppError;
use crate::platform::extract::AppJson;

/// Anthropic's words for why an answer ended (the gateway speaks OpenAI's).
fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") => "tool_use",
        Some(reason) if reason.starts_with("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// A tool call's arguments as the object Anthropic's `input` is (a model's broken JSON
/// becomes an empty object, logged).
fn input(call: &ToolCall) -> Value {
    match serde_json::from_str::<Value>(&call.arguments) {
        Ok(object @ Value::Object(_)) => object,
        _ => {
            tracing::warn!(tool = %call.name, "tool call arguments are not a JSON object");
            json!({})
        }
    }
}

fn usage_json(usage: Usage) -> Value {
    json!({"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens})
}

/// Messages, as Anthropic's API.
///
/// With `stream: true`: `text/event-stream` of Anthropic's events (`message_start`,
/// `content_block_start`, `content_block_delta` with `text_delta` or `input_json_delta`,
/// `content_block_stop`, `message_delta`, `message_stop`).
#[utoipa::path(
    post,
    path = "/api/ai/llm/v1/messages",
    operation_id = "anthropic_messages",
    tag = "ai",
    request_body(content = Object, description = "Anthropic's Messages request: `model`, `max_tokens`, `messages`, `system`, `stop_sequences`, `temperature`, `top_p`, `stream`, `tools`, `tool_choice`, `metadata.user_id` (and Toolshed's `fallbacks`, `cache`). Other fields are refused by name.",
        example = json!({"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Say OK"}]})),
    responses(
        (status = 200, description = "A `message`, or an SSE stream of Anthropic's events. `X-Cache: HIT|MISS`.",
            content(
                (Object = "application/json", example = json!({"id": "msg_4b0c…", "type": "message", "role": "assistant", "model": "anthropic:claude-haiku-4-5", "content": [{"type": "text", "text": "OK"}], "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 1}})),
                (String = "text/event-stream"),
            )),
        (status = 400, description = "Malformed body, a field Toolshed does not honour (named), provider not configured, or the provider refused the request", body = AnthropicErrorBody),
        (status = 404, description = "No such model (`not_found_error`)", body = AnthropicErrorBody),
        (status = 413, description = "Body over the limit", body = AnthropicErrorBody),
        (status = 415, description = "Not JSON", body = AnthropicErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = AnthropicErrorBody),
        (status = 429, description = "The provider's rate limit, passed on with its `Retry-After`", body = AnthropicErrorBody),
        (status = 502, description = "The provider failed after the gateway's retries (`x-should-retry: false`)", body = AnthropicErrorBody),
        (status = 504, description = "The provider did not answer in time (`x-should-retry: false`)", body = AnthropicErrorBody),
    )
)]
pub async fn messages(
    State(llm): State<Llm>,
    headers: HeaderMap,
    body: Result<AppJson<Value>, AppError>,
) -> Result<Response, AnthropicError> {
    let AppJson(body) = body?;
    let mut parsed = anthropic_request::parse(body, cache_header(&headers)?)?;
    images::inline(&llm.app.outbound, &mut parsed.ask).await?;
    let plan = plan::plan(&llm.registry, &parsed.ask)?;
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    if !parsed.stream {
        let answer = gateway::complete(&llm, &plan).await?;
        // Anthropic answers only the continuation of a prefill.
        let text = answer
            .text
            .strip_prefix(&plan.prefill)
            .unwrap_or(&answer.text);
        let mut content = Vec::new();
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
        for call in &answer.tool_calls {
            content.push(
                json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input(call)}),
            );
        }
        let mut response = Json(json!({
            "id": id, "type": "message", "role": "assistant", "model": answer.model,
            "content": content,
            "stop_reason": stop_reason(answer.finish_reason.as_deref()),
            "stop_sequence": null,
            "usage": usage_json(answer.usage),
        }))
        .into_response();
        answer_headers(&mut response, answer.cached, &answer.model);
        return Ok(response);
    }
    let streamed = super::stream::stream(&llm, &plan).await?;
    let start = event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": streamed.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }}),
    );
    let head = futures_util::stream::iter([start + &event("ping", &json!({"type": "ping"}))]);
    let mut blocks = Blocks {
        prefill: plan.prefill.clone(),
        ..Blocks::default()
    };
    let body = streamed
        .events
        .map(move |e| blocks.write(e))
        .filter(|text| std::future::ready(!text.is_empty()));
    let body = head
        .chain(body)
        .map(|text| Ok::<_, Infallible>(Bytes::from(text)));
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    answer_headers(&mut response, streamed.cached, &streamed.model);
    Ok(response)
}

fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// Which content block is open in a stream: Anthropic's blocks are numbered in order, one
/// open at a time.
#[derive(Default)]
struct Blocks {
    /// The index the next block gets.
    next: usize,
    open: Option<Open>,
    /// What is left of the prefill to hold back (the gateway's stream starts with it;
    /// Anthropic answers only the continuation).
    prefill: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    /// The tool call of this gateway index.
    Tool(usize),
}

impl Blocks {
    fn close(&mut self) -> String {
        match self.open.take() {
            Some(_) => event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.next - 1}),
            ),
            None => String::new(),
        }
    }

    fn start(&mut self, open: Open, block: Value) -> String {
        let mut out = self.close();
        out.push_str(&event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.next, "content_block": block}),
        ));
        self.next += 1;
        self.open = Some(open);
        out
    }

    /// The SSE text for one gateway event.
    fn write(&mut self, e: Event) -> String {
        match e {
            Event::Delta(mut text) => {
                if !self.prefill.is_empty() {
                    let same: usize = self
                        .prefill
                        .chars()
                        .zip(text.chars())
                        .take_while(|(a, b)| a == b)
                        .map(|(a, _)| a.len_utf8())
                        .sum();
                    self.prefill.drain(..same);
                    text.drain(..same);
                    if text.is_empty() {
                        return String::new();
                    }
                }
                let mut out = String::new();
                if self.open != Some(Open::Text) {
                    out = self.start(Open::Text, json!({"type": "text", "text": ""}));
                }
                let delta = json!({"type": "text_delta", "text": text});
                out.push_str(&event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": self.next - 1, "delta": delta}),
                ));
                out
            }
            Event::ToolCall(piece) => {
                let mut out = String::new();
                if self.open != Some(Open::Tool(piece.index)) {
                    let block = json!({"type": "tool_use", "id": piece.id.unwrap_or_default(),
                                       "name": piece.name.unwrap_or_default(), "input": {}});
                    out = self.start(Open::Tool(piece.index), block);
                }
                if !piece.arguments.is_empty() {
                    let delta =
                        json!({"type": "input_json_delta", "partial_json": piece.arguments});
                    out.push_str(&event(
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": self.next - 1, "delta": delta}),
                    ));
                }
                out
            }
            Event::Error(message) => {
                let error = json!({"type": "error", "error": {"type": error_type(axum::http::StatusCode::BAD_GATEWAY), "message": message}});
                event("error", &error)
            }
            Event::End {
                usage,
                finish_reason,
            } => {
                let mut out = self.close();
                out.push_str(&event(
                    "message_delta",
                    &json!({"type": "message_delta",
                            "delta": {"stop_reason": stop_reason(finish_reason.as_deref()), "stop_sequence": null},
                            "usage": usage_json(usage)}),
                ));
                out.push_str(&event("message_stop", &json!({"type": "message_stop"})));
                out
            }
        }
    }
}
