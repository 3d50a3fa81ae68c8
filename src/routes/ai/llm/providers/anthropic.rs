//! Anthropic Messages: `system` at the top level, `stop_sequences`, prefill (a trailing
//! assistant turn is continued), and its typed SSE events.

use serde_json::{Map, Value, json};

use super::{
    ChatRequest, ChatResponse, JSON_TOOL, Message, Part, Provider, ProviderError, ResponseFormat,
    Role, StreamPart, ToolCall, ToolChoice, Usage, data_url, json, plain_call_id,
};
use crate::routes::ai::llm::models::ProviderConfig;
use crate::routes::ai::llm::sse::SseEvent;

pub struct Anthropic;

/// `max_tokens` is required by the API; this is used when neither caller nor model says.
const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Token counts of a `usage` object (absent counts are 0).
fn usage(value: &Value) -> Usage {
    let count = |name: &str| value[name].as_u64().unwrap_or(0);
    Usage {
        input_tokens: count("input_tokens"),
        output_tokens: count("output_tokens"),
    }
}

fn finish(reason: &str) -> String {
    match reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        other => other,
    }
    .to_owned()
}

/// The request body (public for tests of the translation).
pub fn body(chat: &ChatRequest, stream: bool) -> Value {
    let messages: Vec<Value> = chat.messages.iter().map(message).collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(chat.upstream));
    body.insert(
        "max_tokens".into(),
        json!(chat.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    if let Some(system) = &chat.system {
        body.insert("system".into(), json!(system));
    }
    body.insert("messages".into(), Value::Array(messages));
    if !chat.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(chat.stop));
    }
    if let Some(t) = chat.temperature {
        body.insert("temperature".into(), json!(t.min(1.0)));
    }
    if let Some(user) = &chat.user {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(p) = chat.sampling.top_p {
        body.insert("top_p".into(), json!(p));
    }
    add_tools(&mut body, chat);
    if stream {
        body.insert("stream".into(), json!(true));
    }
    Value::Object(body)
}

/// One turn: a string when it is text only, else content blocks (`text`, `image`,
/// `tool_use`, `tool_result`).
fn message(m: &Message) -> Value {
    let role = match m.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    if m.is_text() {
        return json!({"role": role, "content": m.joined_text()});
    }
    // Tool results first: Anthropic wants them at the start of the user turn.
    let mut results = Vec::new();
    let mut blocks = Vec::new();
    for part in &m.parts {
        match part {
            Part::Text(text) if text.is_empty() => {}
            Part::Text(text) => blocks.push(json!({"type": "text", "text": text})),
            Part::Image(url) => {
                let (media_type, data) = data_url(url).unwrap_or_default();
                blocks.push(json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}));
            }
            Part::ToolCall(call) => {
                let input: Value =
                    serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
                blocks.push(
                    json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}),
                );
            }
            Part::ToolResult(result) => results.push(json!({
                "type": "tool_result", "tool_use_id": tool_id(&result.call_id), "content": result.content,
            })),
        }
    }
    results.extend(blocks);
    json!({"role": role, "content": results})
}

/// A call id as Anthropic takes it (`^[a-zA-Z0-9_-]+$`): without a riding signature, other
/// characters made `_` — the same for a call and its result.
fn tool_id(id: &str) -> String {
    plain_call_id(id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The caller's tools, or the tool a JSON answer is forced through.
fn add_tools(body: &mut Map<String, Value>, chat: &ChatRequest) {
    let tools = &chat.tools;
    if let Some(schema) = chat.response_format.schema() {
        let description = match &chat.response_format {
            ResponseFormat::JsonSchema(format) => format["description"]
                .as_str()
                .unwrap_or("Give the answer as this tool's input.")
                .to_owned(),
            _ => "Give the answer as this tool's input.".to_owned(),
        };
        body.insert(
            "tools".into(),
            json!([{"name": JSON_TOOL, "description": description, "input_schema": schema}]),
        );
        body.insert(
            "tool_choice".into(),
            json!({"type": "tool", "name": JSON_TOOL}),
        );
        return;
    }
    if !tools.list.is_empty() {
        let list: Vec<Value> = tools
            .list
            .iter()
            .map(|t| {
                let mut tool = json!({"name": t.name, "input_schema": t.parameters});
                if let Some(d) = &t.description {
                    tool["description"] = json!(d);
                }
                tool
            })
            .collect();
        body.insert("tools".into(), Value::Array(list));
    }
    // Without tools a choice means nothing (and Anthropic refuses one).
    if tools.list.is_empty() {
        return;
    }
    let mut choice = match &tools.choice {
        None if tools.parallel.is_none() => return,
        None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::None) => json!({"type": "none"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::Named(name)) => json!({"type": "tool", "name": name}),
    };
    if tools.parallel == Some(false) && choice["type"] != "none" {
        choice["disable_parallel_tool_use"] = json!(true);
    }
    body.insert("tool_choice".into(), choice);
}

impl Provider for Anthropic {
    fn request(
        &self,
        client: &reqwest::Client,
        provider: &ProviderConfig,
        chat: &ChatRequest,
        stream: bool,
    ) -> reqwest::RequestBuilder {
        let mut request = client
            .post(format!("{}/v1/messages", provider.base_url))
            .header("anthropic-version", "2023-06-01")
            .json(&body(chat, stream));
        if let Some(key) = &provider.key {
            request = request.header("x-api-key", key.expose());
        }
        request
    }

    fn parse_response(&self, bytes: &[u8]) -> Result<ChatResponse, ProviderError> {
        let value = json(bytes, "message")?;
        let content = value["content"]
            .as_array()
            .ok_or_else(|| ProviderError::Protocol("message without content".into()))?;
        let text = content
            .iter()
            .filter(|block| block["type"] == "text")
            .filter_map(|block| block["text"].as_str())
            .collect::<String>();
        let tool_calls = content
            .iter()
            .filter(|block| block["type"] == "tool_use")
            .map(|block| ToolCall {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                name: block["name"].as_str().unwrap_or_default().to_owned(),
                arguments: block["input"].to_string(),
            })
            .collect();
        Ok(ChatResponse {
            text,
            tool_calls,
            usage: usage(&value["usage"]),
            finish_reason: value["stop_reason"].as_str().map(finish),
        })
    }

    fn parse_event(&self, event: &SseEvent) -> Result<Vec<StreamPart>, ProviderError> {
        let value = json(event.data.as_bytes(), "message stream event")?;
        let kind = event
            .event
            .clone()
            .or_else(|| value["type"].as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(match kind.as_str() {
            "message_start" => vec![StreamPart::Usage(Usage {
                input_tokens: value
                    .pointer("/message/usage/input_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                output_tokens: 0,
            })],
            "content_block_delta" => match value.pointer("/delta/type").and_then(Value::as_str) {
                Some("text_delta") => {
                    let text = value
                        .pointer("/delta/text")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if text.is_empty() {
                        vec![]
                    } else {
                        vec![StreamPart::Text(text.to_owned())]
                    }
                }
                Some("input_json_delta") => vec![StreamPart::ToolCall {
                    key: value["index"].as_u64(),
                    id: None,
                    name: None,
                    arguments: value
                        .pointer("/delta/partial_json")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                }],
                _ => vec![],
            },
            "content_block_start"
                if value.pointer("/content_block/type") == Some(&json!("tool_use")) =>
            {
                let block = &value["content_block"];
                vec![StreamPart::ToolCall {
                    key: value["index"].as_u64(),
                    id: block["id"].as_str().map(str::to_owned),
                    name: block["name"].as_str().map(str::to_owned),
                    arguments: String::new(),
                }]
            }
            "message_delta" => {
                let mut parts = vec![StreamPart::Usage(usage(&value["usage"]))];
                if let Some(reason) = value.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    parts.push(StreamPart::Finish(finish(reason)));
                }
                parts
            }
            "message_stop" => vec![StreamPart::Done],
            "error" => {
                let kind = value
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let status = match kind {
                    "overloaded_error" => 529,
                    "rate_limit_error" => 429,
                    "invalid_request_error" => 400,
                    "timeout_error" => 504,
                    _ => 500,
                };
                return Err(ProviderError::Status {
                    status,
                    message: value
                        .pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("stream error")
                        .to_owned(),
                    retry_after: None,
                });
            }
            // ping, text block starts, block stops and anything new.
            _ => vec![],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_made_ones_anthropic_takes() {
        assert_eq!(tool_id("call_abc-1"), "call_abc-1");
        assert_eq!(
            tool_id("functions.get_weather:0"),
            "functions_get_weather_0"
        );
        assert_eq!(
            tool_id("call_9__ts_c2ln"),
            "call_9",
            "a Gemini signature stays behind"
        );
    }

    #[test]
    fn text_blocks_are_joined_and_other_blocks_skipped() {
        let body = br#"{"id":"m","type":"message","role":"assistant","content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"B) "},{"type":"text","text":"Helios"}],"stop_reason":"max_tokens","usage":{"input_tokens":25,"output_tokens":6}}"#;
        let answer = Anthropic.parse_response(body).expect("readable");
        assert_eq!(answer.text, "B) Helios");
        assert_eq!(answer.finish_reason.as_deref(), Some("length"));
        let thinking = SseEvent {
            event: Some("content_block_delta".into()),
            data: r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"x"}}"#.into(),
        };
        assert_eq!(Anthropic.parse_event(&thinking).expect("ok"), vec![]);
    }
}
