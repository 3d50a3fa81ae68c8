//! Google Gemini: `generateContent` and `streamGenerateContent?alt=sse`; roles `user` and
//! `model`, `systemInstruction`, `generationConfig`.

use serde_json::{Map, Value, json};

use super::{
    ChatRequest, ChatResponse, Provider, ProviderError, ResponseFormat, Role, StreamPart, Usage,
    json,
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
    let contents: Vec<Value> = chat
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            json!({"role": role, "parts": [{"text": m.content}]})
        })
        .collect();
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
    if chat.response_format == ResponseFormat::JsonObject {
        config.insert("responseMimeType".into(), json!("application/json"));
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
    Value::Object(body)
}

/// Text, usage and finish reason of one `GenerateContentResponse`.
fn read(value: &Value) -> Result<(String, Option<Usage>, Option<String>), ProviderError> {
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
        return Ok((
            String::new(),
            None,
            Some(format!("content_filter ({reason})")),
        ));
    }
    let text = candidate
        .and_then(|c| c.pointer("/content/parts"))
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p["thought"] != true)
                .filter_map(|p| p["text"].as_str())
                .collect::<String>()
        })
        .unwrap_or_default();
    let usage = value.get("usageMetadata").map(|u| Usage {
        input_tokens: u["promptTokenCount"].as_u64().unwrap_or(0),
        output_tokens: u["candidatesTokenCount"].as_u64().unwrap_or(0)
            + u["thoughtsTokenCount"].as_u64().unwrap_or(0),
    });
    let reason = candidate
        .and_then(|c| c["finishReason"].as_str())
        .map(finish);
    Ok((text, usage, reason))
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
        let (text, usage, finish_reason) = read(&json(bytes, "GenerateContentResponse")?)?;
        Ok(ChatResponse {
            text,
            usage: usage.unwrap_or_default(),
            finish_reason,
        })
    }

    fn parse_event(&self, event: &SseEvent) -> Result<Vec<StreamPart>, ProviderError> {
        let (text, usage, reason) = read(&json(event.data.as_bytes(), "GenerateContentResponse")?)?;
        let mut parts = Vec::new();
        if !text.is_empty() {
            parts.push(StreamPart::Text(text));
        }
        if let Some(usage) = usage {
            parts.push(StreamPart::Usage(usage));
        }
        if let Some(reason) = reason {
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
