//! OpenAI Chat Completions — also every OpenAI-compatible server (Groq, Cerebras,
//! OpenRouter, Mistral, Together, Ollama, llama.cpp, vLLM …).

use serde_json::{Map, Value, json};

use super::{
    ChatRequest, ChatResponse, Message, Part, Provider, ProviderError, ResponseFormat, Role,
    StreamPart, ToolCall, ToolChoice, Tools, Usage, json, plain_call_id, text_of,
};
use crate::routes::ai::llm::models::ProviderConfig;
use crate::routes::ai::llm::sse::SseEvent;

pub struct OpenAi;

fn usage(value: Option<&Value>) -> Option<Usage> {
    let value = value.filter(|v| v.is_object())?;
    Some(Usage {
        input_tokens: value["prompt_tokens"].as_u64().unwrap_or(0),
        output_tokens: value["completion_tokens"].as_u64().unwrap_or(0),
    })
}

/// The request body (public for tests of the translation).
pub fn body(provider: &ProviderConfig, chat: &ChatRequest, stream: bool) -> Value {
    let mut messages = Vec::with_capacity(chat.messages.len() + 1);
    if let Some(system) = &chat.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for m in &chat.messages {
        push_message(&mut messages, m);
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(chat.upstream));
    body.insert("messages".into(), Value::Array(messages));
    if let Some(n) = chat.max_tokens {
        body.insert(provider.max_tokens_field.into(), json!(n));
    }
    if !chat.stop.is_empty() {
        body.insert("stop".into(), json!(chat.stop));
    }
    if let Some(t) = chat.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(user) = &chat.user {
        body.insert("user".into(), json!(user));
    }
    match &chat.response_format {
        ResponseFormat::Text => {}
        ResponseFormat::JsonObject => {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }
        ResponseFormat::JsonSchema(schema) => {
            body.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": schema}),
            );
        }
    }
    add_tools(&mut body, &chat.tools);
    let s = &chat.sampling;
    for (name, value) in [
        ("top_p", s.top_p.map(|v| json!(v))),
        ("seed", s.seed.map(|v| json!(v))),
        ("presence_penalty", s.presence_penalty.map(|v| json!(v))),
        ("frequency_penalty", s.frequency_penalty.map(|v| json!(v))),
    ] {
        if let Some(value) = value {
            body.insert(name.into(), value);
        }
    }
    if stream {
        body.insert("stream".into(), json!(true));
        if provider.stream_usage {
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    Value::Object(body)
}

/// One turn as Chat Completions messages: an assistant turn with its `tool_calls`; a user
/// turn's tool results as `tool` messages first, then its text and images.
fn push_message(messages: &mut Vec<Value>, m: &Message) {
    if m.role == Role::Assistant {
        let calls: Vec<Value> = m
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::ToolCall(call) => Some(json!({
                    "id": plain_call_id(&call.id), "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                })),
                _ => None,
            })
            .collect();
        let text = m.joined_text();
        let mut message = json!({"role": "assistant", "content": text});
        if !calls.is_empty() {
            if text.is_empty() {
                message["content"] = Value::Null;
            }
            message["tool_calls"] = Value::Array(calls);
        }
        messages.push(message);
        return;
    }
    let mut content = Vec::new();
    for part in &m.parts {
        match part {
            Part::ToolResult(result) => messages.push(json!({
                "role": "tool", "tool_call_id": plain_call_id(&result.call_id), "content": result.content,
            })),
            Part::Text(text) => content.push(json!({"type": "text", "text": text})),
            Part::Image(url) => {
                content.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            // A user turn carries no tool calls (the plan builds it so).
            Part::ToolCall(_) => {}
        }
    }
    if content.is_empty() {
        return;
    }
    if m.is_text() {
        messages.push(json!({"role": "user", "content": m.joined_text()}));
    } else {
        messages.push(json!({"role": "user", "content": content}));
    }
}

fn add_tools(body: &mut Map<String, Value>, tools: &Tools) {
    // Without tools, `auto` and `none` mean nothing (and providers refuse a choice alone).
    if tools.list.is_empty() {
        return;
    }
    let list: Vec<Value> = tools
        .list
        .iter()
        .map(|t| {
            let mut function = json!({"name": t.name, "parameters": t.parameters});
            if let Some(d) = &t.description {
                function["description"] = json!(d);
            }
            json!({"type": "function", "function": function})
        })
        .collect();
    body.insert("tools".into(), Value::Array(list));
    if let Some(choice) = &tools.choice {
        let choice = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Named(name) => json!({"type": "function", "function": {"name": name}}),
        };
        body.insert("tool_choice".into(), choice);
    }
    if let Some(parallel) = tools.parallel {
        body.insert("parallel_tool_calls".into(), json!(parallel));
    }
}

/// The tool calls of a `message`.
fn tool_calls(message: &Value) -> Vec<ToolCall> {
    message["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|c| ToolCall {
                    id: text_of(c.get("id")),
                    name: text_of(c.pointer("/function/name")),
                    arguments: text_of(c.pointer("/function/arguments")),
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Provider for OpenAi {
    fn request(
        &self,
        client: &reqwest::Client,
        provider: &ProviderConfig,
        chat: &ChatRequest,
        stream: bool,
    ) -> reqwest::RequestBuilder {
        let mut request = client
            .post(format!("{}/chat/completions", provider.base_url))
            .json(&body(provider, chat, stream));
        if let Some(key) = &provider.key {
            request = request.bearer_auth(key.expose());
        }
        request
    }

    fn parse_response(&self, bytes: &[u8]) -> Result<ChatResponse, ProviderError> {
        let value = json(bytes, "chat.completion")?;
        let choice = value
            .pointer("/choices/0")
            .ok_or_else(|| ProviderError::Protocol("chat.completion without choices".into()))?;
        // A refusal (structured outputs) is the answer's text, ended as filtered.
        if let Some(refusal) = choice
            .pointer("/message/refusal")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            return Ok(ChatResponse {
                text: refusal.to_owned(),
                tool_calls: Vec::new(),
                usage: usage(value.get("usage")).unwrap_or_default(),
                finish_reason: Some("content_filter".into()),
            });
        }
        Ok(ChatResponse {
            text: text_of(choice.pointer("/message/content")),
            tool_calls: tool_calls(&choice["message"]),
            usage: usage(value.get("usage")).unwrap_or_default(),
            finish_reason: choice["finish_reason"].as_str().map(str::to_owned),
        })
    }

    fn parse_event(&self, event: &SseEvent) -> Result<Vec<StreamPart>, ProviderError> {
        let data = event.data.trim();
        if data.starts_with("[DONE]") {
            return Ok(vec![StreamPart::Done]);
        }
        let value = json(data.as_bytes(), "chat.completion.chunk")?;
        if let Some(error) = value.get("error") {
            let message = error["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| error.to_string());
            return Err(ProviderError::Status {
                status: error["code"]
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(500),
                message,
                retry_after: None,
            });
        }
        let mut parts = Vec::new();
        if let Some(choice) = value.pointer("/choices/0") {
            if let Some(text) = choice.pointer("/delta/content").and_then(Value::as_str)
                && !text.is_empty()
            {
                parts.push(StreamPart::Text(text.to_owned()));
            }
            for call in choice
                .pointer("/delta/tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let owned = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
                parts.push(StreamPart::ToolCall {
                    key: call["index"].as_u64(),
                    id: owned(call.get("id")),
                    name: owned(call.pointer("/function/name")),
                    arguments: owned(call.pointer("/function/arguments")).unwrap_or_default(),
                });
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                parts.push(StreamPart::Finish(reason.to_owned()));
            }
        }
        if let Some(usage) = usage(value.get("usage")) {
            parts.push(StreamPart::Usage(usage));
        }
        Ok(parts)
    }
}
