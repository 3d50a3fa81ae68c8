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

/// One turn of the conversation (system text travels separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
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
    /// Whether a provider of `kind` can honour it (OpenAI-compatible ones take both JSON
    /// modes as they are, Gemini a JSON object; the rest are still to come).
    /// What it adds to a cache key.
    pub fn cache_part(&self) -> Value {
        match self {
            ResponseFormat::Text => Value::Null,
            ResponseFormat::JsonObject => Value::from("json_object"),
            ResponseFormat::JsonSchema(schema) => schema.clone(),
        }
    }

    pub fn supported_by(&self, kind: Kind) -> bool {
        match self {
            ResponseFormat::Text => true,
            ResponseFormat::JsonObject => matches!(kind, Kind::Openai | Kind::Gemini),
            ResponseFormat::JsonSchema(_) => kind == Kind::Openai,
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
    pub usage: Usage,
    /// In OpenAI's words: `stop`, `length`, `content_filter`, `tool_calls`.
    pub finish_reason: Option<String>,
}

/// What one streamed event carries.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamPart {
    Text(String),
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
