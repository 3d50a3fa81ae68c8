//! The providers behind one trait. Each provider file only translates: our request into its
//! HTTP request, its answer (a body, or one SSE event) back into ours. Sending is shared
//! (`http.rs`), retrying, timing and streaming too (`retry.rs`, `gateway.rs`, `stream.rs`),
//! so provider quirks stay in their file.

pub mod anthropic;
pub mod gemini;
pub mod http;
pub mod openai;

use serde_json::Value;

use super::models::{Kind, ProviderConfig};
use super::sse::SseEvent;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// A piece of a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// An image as a `data:<media type>;base64,…` URL (the gateway inlines fetched URLs
    /// before planning, so providers never fetch).
    Image(String),
    /// The assistant asked for a tool to run.
    ToolCall(ToolCall),
    /// What a tool answered (in a user turn).
    ToolResult(ToolResult),
}

/// One tool call, its arguments as the JSON text the model wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A tool's answer to the call `call_id` (to the tool `name`, which Gemini needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    pub call_id: String,
    pub name: String,
    pub content: String,
}

/// One turn of the conversation (system text travels separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Message {
        Message {
            role,
            parts: vec![Part::Text(text.into())],
        }
    }

    /// The text parts, joined.
    pub fn joined_text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Whether the turn is text only.
    pub fn is_text(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// The JSON Schema of its arguments.
    pub parameters: Value,
}

/// Whether and which tool the model must call (OpenAI's `tool_choice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Named(String),
}

/// The tools offered with a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tools {
    pub list: Vec<Tool>,
    pub choice: Option<ToolChoice>,
    /// `Some(false)`: at most one call per answer.
    pub parallel: Option<bool>,
}

/// The name of the tool that carries a JSON answer for providers whose structured output
/// goes through a forced tool call (Anthropic); its calls are read back as the answer text.
pub const JSON_TOOL: &str = "json_answer";

/// Marks where a Gemini thought signature rides inside a tool call id we made (OpenAI's wire
/// has no other place for it, and Gemini 3 wants it back with the call).
pub const SIGNATURE_MARK: &str = "__ts_";

/// A call id without a signature riding in it: what other providers are sent.
pub fn plain_call_id(id: &str) -> &str {
    id.split_once(SIGNATURE_MARK).map_or(id, |(plain, _)| plain)
}

/// The media type and base64 data of a `data:` URL.
pub fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (media_type, data) = rest.split_once(";base64,")?;
    Some((media_type, data))
}

/// What is asked of a model, provider-neutral.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The model id the provider knows.
    pub upstream: String,
    pub system: Option<String>,
    /// Alternating turns; a trailing assistant turn is a prefill to continue.
    pub messages: Vec<Message>,
    pub max_tokens: Option<u64>,
    pub stop: Vec<String>,
    pub temperature: Option<f64>,
    pub sampling: Sampling,
    /// The end user the caller names, for the provider's abuse monitoring (OpenAI `user`,
    /// Anthropic `metadata.user_id`).
    pub user: Option<String>,
    /// What shape the answer takes (the plan refuses one a provider cannot honour).
    pub response_format: ResponseFormat,
    pub tools: Tools,
}

/// The answer's shape: OpenAI's `response_format`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ResponseFormat {
    #[default]
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON following a schema: OpenAI's `json_schema` object as the caller sent it.
    JsonSchema(Value),
}

impl ResponseFormat {
    /// What it adds to a cache key.
    pub fn cache_part(&self) -> Value {
        match self {
            ResponseFormat::Text => Value::Null,
            ResponseFormat::JsonObject => Value::from("json_object"),
            ResponseFormat::JsonSchema(schema) => schema.clone(),
        }
    }

    /// The JSON Schema an answer must follow when the caller asked for `strict`.
    pub fn strict_schema(&self) -> Option<&Value> {
        match self {
            ResponseFormat::JsonSchema(format) if format["strict"] == true => format.get("schema"),
            _ => None,
        }
    }

    /// The JSON Schema of the answer (`{"type": "object"}` for any object).
    pub fn schema(&self) -> Option<Value> {
        match self {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => Some(serde_json::json!({"type": "object"})),
            ResponseFormat::JsonSchema(format) => format.get("schema").cloned(),
        }
    }
}

/// Sampling parameters beyond temperature, each forwarded where the provider has it (the
/// plan refuses a request whose provider does not).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sampling {
    pub top_p: Option<f64>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
}

impl Sampling {
    /// The first parameter set here that a provider of `kind` cannot take.
    pub fn unsupported_by(&self, kind: Kind) -> Option<&'static str> {
        match kind {
            // Anthropic's Messages API has top_p, but no seed and no penalties.
            Kind::Anthropic => {
                if self.seed.is_some() {
                    Some("seed")
                } else if self.presence_penalty.is_some() {
                    Some("presence_penalty")
                } else if self.frequency_penalty.is_some() {
                    Some("frequency_penalty")
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

/// Tokens counted by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A whole answer.
#[derive(Debug, Clone, Default)]
pub struct ChatResponse {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    /// In OpenAI's words: `stop`, `length`, `content_filter`, `tool_calls`.
    pub finish_reason: Option<String>,
}

/// What one streamed event carries.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamPart {
    Text(String),
    /// A piece of a tool call: the first piece of a call has its id and name, the rest
    /// add to its arguments. `key` tells pieces of one call from another's (the provider's
    /// index); `None` is a call sent whole, a new one each time.
    ToolCall {
        key: Option<u64>,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    Usage(Usage),
    Finish(String),
    /// The provider said the stream is over.
    Done,
}

/// Why a provider call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with an error status.
    #[error("answered {status}: {message}")]
    Status {
        status: u16,
        message: String,
        /// How long the provider asked us to wait (`retry-after-ms`, `retry-after`).
        retry_after: Option<std::time::Duration>,
    },
    /// Not answered in time (first token or total).
    #[error("did not answer in time ({0})")]
    Timeout(&'static str),
    /// Could not connect, or the connection broke.
    #[error("unreachable: {0}")]
    Transport(String),
    /// Answered something we cannot read.
    #[error("sent an answer that cannot be read: {0}")]
    Protocol(String),
}

impl ProviderError {
    /// Worth trying again: rate limits, overload, server errors, timeouts, broken connections.
    pub fn retryable(&self) -> bool {
        match self {
            ProviderError::Status { status, .. } => {
                matches!(status, 408 | 409 | 429) || *status >= 500
            }
            ProviderError::Timeout(_) | ProviderError::Transport(_) => true,
            ProviderError::Protocol(_) => false,
        }
    }
}

/// A provider's translation of our requests and its answers.
pub trait Provider: Send + Sync {
    /// The HTTP request for a chat (streamed or not).
    fn request(
        &self,
        client: &reqwest::Client,
        provider: &ProviderConfig,
        chat: &ChatRequest,
        stream: bool,
    ) -> reqwest::RequestBuilder;

    /// A successful non-streamed answer.
    fn parse_response(&self, body: &[u8]) -> Result<ChatResponse, ProviderError>;

    /// One SSE event of a streamed answer.
    fn parse_event(&self, event: &SseEvent) -> Result<Vec<StreamPart>, ProviderError>;
}

/// The provider for a wire format.
pub fn for_kind(kind: Kind) -> &'static dyn Provider {
    match kind {
        Kind::Openai => &openai::OpenAi,
        Kind::Anthropic => &anthropic::Anthropic,
        Kind::Gemini => &gemini::Gemini,
    }
}

/// The message inside an error body of any of the three formats (OpenAI and Gemini
/// `{"error":{"message"}}`, Anthropic `{"type":"error","error":{"message"}}`, Mistral's
/// top-level `message`), else the body itself, shortened.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let found = value
            .pointer("/error/message")
            .or_else(|| value.get("message"))
            .or_else(|| value.get("error"))
            .or_else(|| value.get("detail"));
        if let Some(found) = found {
            return match found {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(no message)".into();
    }
    text.chars().take(500).collect()
}

/// The text of a JSON value that should be a string (or absent).
pub(crate) fn text_of(value: Option<&Value>) -> String {
    value.and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Parses JSON or reports a protocol error naming what was expected.
pub(crate) fn json(bytes: &[u8], what: &str) -> Result<Value, ProviderError> {
    serde_json::from_slice(bytes).map_err(|e| ProviderError::Protocol(format!("{what}: {e}")))
}
