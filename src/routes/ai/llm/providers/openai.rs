//! OpenAI Chat Completions — also every OpenAI-compatible server (Groq, Cerebras,
//! OpenRouter, Mistral, Together, Ollama, llama.cpp, vLLM …).

use serde_json::{Map, Value, json};

use super::{
    ChatRequest, ChatResponse, Provider, ProviderError, ResponseFormat, Role, StreamPart, Usage,
    json, text_of,
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
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        messages.push(json!({"role": role, "content": m.content}));
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
        Ok(ChatResponse {
            text: text_of(choice.pointer("/message/content")),
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
