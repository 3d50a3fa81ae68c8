//! A streamed Chat Completion: the gateway's events of each choice as OpenAI's
//! `chat.completion.chunk`s, interleaved when there are several choices, then the usage
//! chunk (when asked for) and `data: [DONE]` once every choice has ended.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::gateway::{Event, Streamed};
use super::handlers::answer_headers;
use super::providers::Usage;

pub fn usage_json(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    })
}

fn sse(value: &Value) -> String {
    format!("data: {value}\n\n")
}

/// The SSE response for the streams of choices 0, 1, ….
pub fn response(streams: Vec<Streamed>, id: String, created: u64, include_usage: bool) -> Response {
    let model = streams.first().map(|s| s.model.clone()).unwrap_or_default();
    let cached = streams.iter().all(|s| s.cached);
    let choices = streams.len();
    let chunk = {
        let model = model.clone();
        move |index: usize, delta: Value, finish: Option<&str>| {
            json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}],
            })
        }
    };
    let head: String = (0..choices)
        .map(|i| sse(&chunk(i, json!({"role": "assistant", "content": ""}), None)))
        .collect();
    let tagged = streams
        .into_iter()
        .enumerate()
        .map(|(index, s)| s.events.map(move |event| (index, event)));
    let mut ended = 0;
    let mut total = Usage::default();
    let body = futures_util::stream::select_all(tagged).map(move |(index, event)| match event {
        Event::Delta(text) => sse(&chunk(index, json!({"content": text}), None)),
        Event::ToolCall(piece) => {
            let mut call = json!({"index": piece.index, "function": {"arguments": piece.arguments}});
            if let Some(id) = piece.id {
                call["id"] = json!(id);
                call["type"] = json!("function");
            }
            if let Some(name) = piece.name {
                call["function"]["name"] = json!(name);
            }
            sse(&chunk(index, json!({"tool_calls": [call]}), None))
        }
        // The status is sent: the error travels in the stream, as OpenAI's does.
        Event::Error(message) => {
            ended += 1;
            sse(&json!({"error": {"message": message, "type": "upstream_error", "param": null, "code": null}}))
        }
        Event::End {
            usage,
            finish_reason,
        } => {
            ended += 1;
            total.input_tokens += usage.input_tokens;
            total.output_tokens += usage.output_tokens;
            let mut out = sse(&chunk(
                index,
                json!({}),
                Some(finish_reason.as_deref().unwrap_or("stop")),
            ));
            if ended == choices {
                if include_usage {
                    let mut last = chunk(0, json!({}), None);
                    last["choices"] = json!([]);
                    last["usage"] = usage_json(total);
                    out.push_str(&sse(&last));
                }
                out.push_str("data: [DONE]\n\n");
            }
            out
        }
    });
    // After one choice broke, the others are not worth paying for: the body ends there.
    let body = body.scan(false, |broken, text| {
        let next = (!*broken).then(|| {
            *broken = text.starts_with("data: {\"error\"");
            text
        });
        std::future::ready(next)
    });
    let body = futures_util::stream::iter([head])
        .chain(body)
        .map(|text| Ok::<_, Infallible>(Bytes::from(text)));
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    answer_headers(&mut response, cached, &model);
    response
}
