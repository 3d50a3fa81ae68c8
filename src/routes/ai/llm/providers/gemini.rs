//! Google Gemini: `generateContent` and `streamGenerateContent?alt=sse`; roles `user` and
//! `model`, `systemInstruction`, `generationConfig`.

use serde_json::{Map, Value, json};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::{
    ChatRequest, ChatResponse, Message, Part, Provider, ProviderError, ResponseFormat, Role,
    SIGNATURE_MARK, StreamPart, ToolCall, ToolChoice, Tools, Usage, data_url, json,
};
use crate::routes::ai::llm::models::ProviderConfig;
use crate::routes::ai::llm::sse::SseEvent;

pub struct Gemini;

fn finish(reason: &str) -> String {
    match reason {
        "STOP" => "stop",
        "MAX_TOKENS" => "length",
        "FINISH_REASON_UNSPECIFIED" | "OTHER" => "stop",
        _ => "content_filter",
    }
    .to_owned()
}

/// The request body (public for tests of the translation).
pub fn body(chat: &ChatRequest) -> Value {
    let contents: Vec<Value> = chat.messages.iter().map(content).collect();
    let mut body = Map::new();
    if let Some(system) = &chat.system {
        body.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": system}]}),
        );
    }
    body.insert("contents".into(), Value::Array(contents));
    let mut config = Map::new();
    if let Some(n) = chat.max_tokens {
        config.insert("maxOutputTokens".into(), json!(n));
    }
    if !chat.stop.is_empty() {
        config.insert("stopSequences".into(), json!(chat.stop));
    }
    if let Some(t) = chat.temperature {
        config.insert("temperature".into(), json!(t));
    }
    match &chat.response_format {
        ResponseFormat::Text => {}
        ResponseFormat::JsonObject => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        // `responseJsonSchema` takes JSON Schema as callers write it (`responseSchema` only
        // an OpenAPI subset that refuses e.g. `additionalProperties`).
        ResponseFormat::JsonSchema(format) => {
            config.insert("responseMimeType".into(), json!("application/json"));
            config.insert("responseJsonSchema".into(), format["schema"].clone());
        }
    }
    let s = &chat.sampling;
    for (name, value) in [
        ("topP", s.top_p.map(|v| json!(v))),
        ("seed", s.seed.map(|v| json!(v))),
        ("presencePenalty", s.presence_penalty.map(|v| json!(v))),
        ("frequencyPenalty", s.frequency_penalty.map(|v| json!(v))),
    ] {
        if let Some(value) = value {
            config.insert(name.into(), value);
        }
    }
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    add_tools(&mut body, &chat.tools);
    Value::Object(body)
}

/// One turn as a `Content`: text, `inlineData`, `functionCall`, `functionResponse` parts.
fn content(m: &Message) -> Value {
    let role = match m.role {
        Role::User => "user",
        Role::Assistant => "model",
    };
    let parts: Vec<Value> = m
        .parts
        .iter()
        // An empty text part is refused (an assistant turn of tool calls has one).
        .filter(|part| !matches!(part, Part::Text(t) if t.is_empty() && m.parts.len() > 1))
        .map(|part| match part {
            Part::Text(text) => json!({"text": text}),
            Part::Image(url) => {
                let (mime_type, data) = data_url(url).unwrap_or_default();
                json!({"inlineData": {"mimeType": mime_type, "data": data}})
            }
            Part::ToolCall(call) => {
                let args: Value =
                    serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
                let mut part = json!({"functionCall": {"name": call.name, "args": args}});
                if let Some(signature) = call
                    .id
                    .split_once(SIGNATURE_MARK)
                    .and_then(|(_, s)| URL_SAFE_NO_PAD.decode(s).ok())
                {
                    part["thoughtSignature"] = json!(STANDARD.encode(signature));
                }
                part
            }
            // `response` is an object: a tool's JSON object answer as it is, else wrapped.
            Part::ToolResult(result) => {
                let response = match serde_json::from_str::<Value>(&result.content) {
                    Ok(object @ Value::Object(_)) => object,
                    _ => json!({"content": result.content}),
                };
                json!({"functionResponse": {"name": result.name, "response": response}})
            }
        })
        .collect();
    json!({"role": role, "parts": parts})
}

fn add_tools(body: &mut Map<String, Value>, tools: &Tools) {
    // Without tools, `auto` and `none` mean nothing (and providers refuse a choice alone).
    if tools.list.is_empty() {
        return;
    }
    if !tools.list.is_empty() {
        let declarations: Vec<Value> = tools
            .list
            .iter()
            .map(|t| {
                let mut declaration = json!({"name": t.name, "parametersJsonSchema": t.parameters});
                if let Some(d) = &t.description {
                    declaration["description"] = json!(d);
                }
                declaration
            })
            .collect();
        body.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations}]),
        );
    }
    if let Some(choice) = &tools.choice {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Named(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        body.insert(
            "toolConfig".into(),
            json!({"functionCallingConfig": config}),
        );
    }
}

/// A `functionCall` part as a tool call. Gemini may give no id: one is made, and a thought
/// signature rides along in it.
fn tool_call(part: &Value) -> Option<ToolCall> {
    let call = part.get("functionCall")?;
    let mut id = call["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("call_{}", uuid::Uuid::new_v4().simple()));
    // Carried as URL-safe base64, so the id stays letters, digits, `-` and `_`.
    if let Some(signature) = part["thoughtSignature"]
        .as_str()
        .and_then(|s| STANDARD.decode(s).ok())
    {
        id = format!("{id}{SIGNATURE_MARK}{}", URL_SAFE_NO_PAD.encode(signature));
    }
    Some(ToolCall {
        id,
        name: call["name"].as_str().unwrap_or_default().to_owned(),
        arguments: call
            .get("args")
            .map_or_else(|| "{}".to_owned(), Value::to_string),
    })
}

/// What one `GenerateContentResponse` says.
struct Read {
    text: String,
    tool_calls: Vec<ToolCall>,
    usage: Option<Usage>,
    finish_reason: Option<String>,
}

/// Text, tool calls, usage and finish reason of one `GenerateContentResponse`.
fn read(value: &Value) -> Result<Read, ProviderError> {
    if let Some(error) = value.get("error") {
        return Err(ProviderError::Status {
            status: error["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(500),
            message: error["message"].as_str().unwrap_or("error").to_owned(),
            retry_after: None,
        });
    }
    let candidate = value.pointer("/candidates/0");
    if candidate.is_none()
        && let Some(reason) = value
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
    {
        return Ok(Read {
            text: String::new(),
            tool_calls: Vec::new(),
            usage: None,
            finish_reason: Some(format!("content_filter ({reason})")),
        });
    }
    let parts = candidate
        .and_then(|c| c.pointer("/content/parts"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let text = parts
        .iter()
        .filter(|p| p["thought"] != true)
        .filter_map(|p| p["text"].as_str())
        .collect::<String>();
    let tool_calls: Vec<ToolCall> = parts.iter().filter_map(tool_call).collect();
    let usage = value.get("usageMetadata").map(|u| Usage {
        input_tokens: u["promptTokenCount"].as_u64().unwrap_or(0),
        output_tokens: u["candidatesTokenCount"].as_u64().unwrap_or(0)
            + u["thoughtsTokenCount"].as_u64().unwrap_or(0),
    });
    let finish_reason = candidate
        .and_then(|c| c["finishReason"].as_str())
        .map(finish)
        // Gemini says STOP after a function call.
        .map(|reason| {
            if reason == "stop" && !tool_calls.is_empty() {
                "tool_calls".to_owned()
            } else {
                reason
            }
        });
    Ok(Read {
        text,
        tool_calls,
        usage,
        finish_reason,
    })
}

impl Provider for Gemini {
    fn request(
        &self,
        client: &reqwest::Client,
        provider: &ProviderConfig,
        chat: &ChatRequest,
        stream: bool,
    ) -> reqwest::RequestBuilder {
        let url = if stream {
            format!(
                "{}/v1beta/models/{}:streamGenerateContent?alt=sse",
                provider.base_url, chat.upstream
            )
        } else {
            format!(
                "{}/v1beta/models/{}:generateContent",
                provider.base_url, chat.upstream
            )
        };
        let mut request = client.post(url).json(&body(chat));
        if let Some(key) = &provider.key {
            request = request.header("x-goog-api-key", key.expose());
        }
        request
    }

    fn parse_response(&self, bytes: &[u8]) -> Result<ChatResponse, ProviderError> {
        let read = read(&json(bytes, "GenerateContentResponse")?)?;
        Ok(ChatResponse {
            text: read.text,
            tool_calls: read.tool_calls,
            usage: read.usage.unwrap_or_default(),
            finish_reason: read.finish_reason,
        })
    }

    fn parse_event(&self, event: &SseEvent) -> Result<Vec<StreamPart>, ProviderError> {
        let read = read(&json(event.data.as_bytes(), "GenerateContentResponse")?)?;
        let mut parts = Vec::new();
        if !read.text.is_empty() {
            parts.push(StreamPart::Text(read.text));
        }
        parts.extend(
            read.tool_calls
                .into_iter()
                .map(|call| StreamPart::ToolCall {
                    key: None,
                    id: Some(call.id),
                    name: Some(call.name),
                    arguments: call.arguments,
                }),
        );
        if let Some(usage) = read.usage {
            parts.push(StreamPart::Usage(usage));
        }
        if let Some(reason) = read.finish_reason {
            parts.push(StreamPart::Finish(reason));
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_answers_without_parts_and_blocked_prompts_read_as_empty() {
        let cut = br#"{"candidates":[{"content":{"role":"model"},"finishReason":"MAX_TOKENS","index":0}],"usageMetadata":{"promptTokenCount":3,"thoughtsTokenCount":5,"totalTokenCount":8}}"#;
        let answer = Gemini.parse_response(cut).expect("readable");
        assert_eq!(answer.text, "");
        assert_eq!(answer.finish_reason.as_deref(), Some("length"));
        assert_eq!(answer.usage.output_tokens, 5);
        let blocked = br#"{"promptFeedback":{"blockReason":"SAFETY"}}"#;
        let answer = Gemini.parse_response(blocked).expect("readable");
        assert!(
            answer
                .finish_reason
                .expect("reason")
                .starts_with("content_filter")
        );
        let error = SseEvent {
            event: None,
            data: r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#.into(),
        };
        assert!(matches!(
            Gemini.parse_event(&error),
            Err(ProviderError::Status { status: 503, .. })
        ));
    }
}
