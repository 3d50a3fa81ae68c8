//! Request and response types of both faces (native `/api/ai/llm` and the
//! OpenAI-compatible `/api/ai/llm/v1`), with their OpenAPI schemas.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use serde_json::json;

use super::plan::{Ask, AskMessage, AskRole};
use super::providers::{
    Part, ResponseFormat, Sampling, Tool, ToolCall, ToolChoice, ToolResult, Tools,
};
use crate::platform::error::AppError;

/// Who says a message.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    /// OpenAI's newer name for system.
    Developer,
    User,
    Assistant,
    /// A tool's answer to the call `tool_call_id`.
    Tool,
}

/// Message content: a string, or OpenAI-style parts.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One part of a message: `{"type": "text", "text"}`, `{"type": "image_url", "image_url":
/// {"url"}}` (a `data:` URL or an `http(s)` URL the gateway fetches) or `{"type": "image",
/// "url"}`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    /// `{"url": "…", "detail"?: "auto"}` or the URL itself.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub image_url: Option<Value>,
    #[serde(default)]
    pub url: Option<String>,
}

impl ContentPart {
    fn into_part(self) -> Result<Part, AppError> {
        let bad = |message: String| AppError::bad_request(message).with_param("messages");
        match self.kind.as_str() {
            "text" => self
                .text
                .map(Part::Text)
                .ok_or_else(|| bad("a text part needs \"text\"".into())),
            "image_url" | "image" => {
                let url = match (self.image_url, self.url) {
                    (Some(Value::String(url)), _) | (None, Some(url)) => url,
                    (Some(Value::Object(image)), _) => {
                        if let Some(detail) = image.get("detail").and_then(Value::as_str)
                            && detail != "auto"
                        {
                            return Err(bad(format!(
                                "image detail {detail:?} is not supported; remove it or send \"auto\""
                            )));
                        }
                        image
                            .get("url")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .ok_or_else(|| bad("an image part needs a url".into()))?
                    }
                    _ => return Err(bad("an image part needs a url".into())),
                };
                Ok(Part::Image(url))
            }
            kind => Err(bad(format!(
                "message parts of type {kind:?} are not supported; send text, image_url or image"
            ))),
        }
    }
}

impl Content {
    fn into_parts(self) -> Result<Vec<Part>, AppError> {
        match self {
            Content::Text(text) => Ok(vec![Part::Text(text)]),
            Content::Parts(parts) => parts.into_iter().map(ContentPart::into_part).collect(),
        }
    }

    fn into_text(self, role: &str) -> Result<String, AppError> {
        let parts = self.into_parts()?;
        let mut text = String::new();
        for part in parts {
            match part {
                Part::Text(t) => text.push_str(&t),
                _ => {
                    return Err(
                        AppError::bad_request(format!("{role} messages take text only"))
                            .with_param("messages"),
                    );
                }
            }
        }
        Ok(text)
    }
}

/// A tool call an assistant message made (OpenAI's shape).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ToolCallIn {
    pub id: String,
    /// `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCallIn,
}

fn function_type() -> String {
    "function".into()
}

/// The function of a tool call, its arguments as JSON text.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct FunctionCallIn {
    pub name: String,
    pub arguments: String,
}

/// One message.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"role": "user", "content": "Say hello"}))]
pub struct ChatMessage {
    pub role: ChatRole,
    /// May be null in an assistant message that has `tool_calls`.
    #[serde(default)]
    pub content: Option<Content>,
    /// An assistant message's tool calls.
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallIn>>,
    /// A tool message's call.
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

/// A tool the model may call (OpenAI's shape).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolIn {
    /// `function`.
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionIn,
}

/// A function: its name (`^[a-zA-Z0-9_-]{1,64}$`), what it does and the JSON Schema of its
/// arguments.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionIn {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    /// Only `false` or absent: strict function calling is not offered across providers.
    #[serde(default)]
    pub strict: Option<bool>,
}

/// The tools of a request, checked.
fn tools(
    list: Option<Vec<ToolIn>>,
    choice: Option<Value>,
    parallel: Option<bool>,
) -> Result<Tools, AppError> {
    let bad = |message: String, param: &str| AppError::bad_request(message).with_param(param);
    let list = list
        .unwrap_or_default()
        .into_iter()
        .map(|tool| {
            if tool.kind != "function" {
                return Err(bad(
                    format!(
                        "tools of type {:?} are not supported; send function tools",
                        tool.kind
                    ),
                    "tools",
                ));
            }
            let f = tool.function;
            let valid = !f.name.is_empty()
                && f.name.len() <= 64
                && f.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return Err(bad(
                    format!(
                        "tool name {:?} must be 1 to 64 letters, digits, _ or -",
                        f.name
                    ),
                    "tools",
                ));
            }
            if f.strict == Some(true) {
                return Err(bad(
                    format!(
                        "tool {:?}: strict function calling is not supported; remove strict",
                        f.name
                    ),
                    "tools",
                ));
            }
            let parameters = f
                .parameters
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            if !parameters.is_object() {
                return Err(bad(
                    format!("tool {:?}: parameters must be a JSON Schema object", f.name),
                    "tools",
                ));
            }
            Ok(Tool {
                name: f.name,
                description: f.description,
                parameters,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let choice = match choice {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(bad(
                    format!("tool_choice {other:?} is not auto, none, required or a function"),
                    "tool_choice",
                ));
            }
        }),
        Some(value) => match value.pointer("/function/name").and_then(Value::as_str) {
            Some(name) if value["type"] == "function" => Some(ToolChoice::Named(name.to_owned())),
            _ => {
                return Err(bad(
                    "tool_choice must be auto, none, required or {\"type\": \"function\", \"function\": {\"name\"}}".into(),
                    "tool_choice",
                ));
            }
        },
    };
    Ok(Tools {
        list,
        choice,
        parallel,
    })
}

/// One stop sequence or several (at most 4).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

fn messages(list: Vec<ChatMessage>) -> Result<Vec<AskMessage>, AppError> {
    if list.is_empty() {
        return Err(AppError::bad_request("\"messages\" cannot be empty"));
    }
    let bad = |message: String| AppError::bad_request(message).with_param("messages");
    list.into_iter()
        .map(|m| {
            let calls = m.tool_calls.unwrap_or_default();
            if !calls.is_empty() && !matches!(m.role, ChatRole::Assistant) {
                return Err(bad("only assistant messages carry tool_calls".into()));
            }
            if m.tool_call_id.is_some() && !matches!(m.role, ChatRole::Tool) {
                return Err(bad("only tool messages carry a tool_call_id".into()));
            }
            let content = match (m.content, m.role, calls.is_empty()) {
                (Some(content), _, _) => content,
                (None, ChatRole::Assistant, false) => Content::Text(String::new()),
                (None, _, _) => return Err(bad("a message needs content".into())),
            };
            Ok(match m.role {
                ChatRole::System | ChatRole::Developer => AskMessage {
                    role: AskRole::System,
                    parts: vec![Part::Text(content.into_text("system")?)],
                },
                ChatRole::User => AskMessage {
                    role: AskRole::User,
                    parts: content.into_parts()?,
                },
                ChatRole::Assistant => {
                    let mut parts = vec![Part::Text(content.into_text("assistant")?)];
                    for call in calls {
                        if call.kind != "function" {
                            return Err(bad(format!(
                                "tool calls of type {:?} are not supported",
                                call.kind
                            )));
                        }
                        // No arguments at all is a function without parameters.
                        let arguments = match call.function.arguments.trim() {
                            "" => "{}".to_owned(),
                            _ => call.function.arguments.clone(),
                        };
                        if !serde_json::from_str::<Value>(&arguments).is_ok_and(|v| v.is_object()) {
                            return Err(bad(format!(
                                "the arguments of tool call {:?} are not a JSON object",
                                call.id
                            )));
                        }
                        parts.push(Part::ToolCall(ToolCall {
                            id: call.id,
                            name: call.function.name,
                            arguments,
                        }));
                    }
                    AskMessage {
                        role: AskRole::Assistant,
                        parts,
                    }
                }
                ChatRole::Tool => AskMessage {
                    role: AskRole::User,
                    parts: vec![Part::ToolResult(ToolResult {
                        call_id: m
                            .tool_call_id
                            .ok_or_else(|| bad("a tool message needs its tool_call_id".into()))?,
                        name: String::new(),
                        content: content.into_text("tool")?,
                    })],
                },
            })
        })
        .collect()
}

/// `POST /api/ai/llm`: a conversation for one model (or a task's model).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "messages": [{"role": "user", "content": "Say hello"}],
    "system": "You are terse.",
    "model": "gpt-4o-mini",
    "max_tokens": 64,
    "fallbacks": ["claude-haiku-4-5"]
}))]
pub struct LlmRequest {
    /// The conversation. A trailing assistant message is a prefill: the answer continues it
    /// and includes it.
    pub messages: Vec<ChatMessage>,
    /// System prompt (prepended to the first message for models without one).
    #[serde(default)]
    pub system: Option<String>,
    /// A model id (`openai:gpt-4o-mini`) or alias (`gpt-4o-mini`). Exactly one of `model`
    /// and `task`.
    #[serde(default)]
    pub model: Option<String>,
    /// A task from the models file (`coding`), standing for its model.
    #[serde(default)]
    pub task: Option<String>,
    /// Most tokens to generate (clamped to the model's limit).
    #[serde(default, deserialize_with = "whole_number")]
    pub max_tokens: Option<u64>,
    /// Where to stop: a string or up to 4.
    #[serde(default)]
    pub stop_token: Option<Stop>,
    /// 0 to 2.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Answer as newline-delimited JSON strings, one per text delta.
    #[serde(default)]
    pub stream: bool,
    /// Models to try in order when the first fails (after its retries).
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Use the answer cache (default: only at temperature 0; or the `X-Toolshed-Cache`
    /// header, `on` or `off`).
    #[serde(default)]
    pub cache: Option<bool>,
    /// Functions the model may call, as OpenAI writes them; the answer's `tool_calls` say
    /// which to run, and the next request carries the assistant message with those
    /// `tool_calls` and one `tool` message per result.
    #[serde(default)]
    pub tools: Option<Vec<ToolIn>>,
    /// `auto`, `none`, `required` or `{"type": "function", "function": {"name"}}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    /// `false`: at most one tool call per answer (not for Gemini models).
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
}

/// Whether an answer may come from (and go to) the cache: as the request says, else as the
/// `X-Toolshed-Cache` header says, else only when it is deterministic (temperature 0): an
/// answer sampled at temperature 1 is not the answer to every identical request.
pub fn use_cache(
    asked: Option<bool>,
    header: Option<bool>,
    temperature: Option<f64>,
    seed: Option<i64>,
) -> bool {
    asked
        .or(header)
        .unwrap_or(temperature == Some(0.0) || seed.is_some())
}

impl LlmRequest {
    pub fn into_ask(self, cache_header: Option<bool>) -> Result<(Ask, bool), AppError> {
        let temperature = check_temperature(self.temperature)?;
        Ok((
            Ask {
                messages: messages(self.messages)?,
                system: self.system,
                model: self.model,
                task: self.task,
                fallbacks: self.fallbacks,
                max_tokens: self.max_tokens,
                stop: self.stop_token.map(Stop::into_vec).unwrap_or_default(),
                temperature,
                sampling: Sampling::default(),
                user: None,
                response_format: ResponseFormat::Text,
                tools: tools(self.tools, self.tool_choice, self.parallel_tool_calls)?,
                cache: use_cache(self.cache, cache_header, temperature, None),
                retry_rate_limits: true,
            },
            self.stream,
        ))
    }
}

/// `value` when it is within `low..=high`; a 400 naming `name` otherwise.
fn check_range(
    name: &str,
    value: Option<f64>,
    low: f64,
    high: f64,
) -> Result<Option<f64>, AppError> {
    match value {
        Some(v) if !(low..=high).contains(&v) => Err(AppError::bad_request(format!(
            "{name} must be from {low} to {high}"
        ))
        .with_param(name)),
        other => Ok(other),
    }
}

fn check_temperature(t: Option<f64>) -> Result<Option<f64>, AppError> {
    match t {
        Some(t) if !(0.0..=2.0).contains(&t) => {
            Err(AppError::bad_request("temperature must be from 0 to 2"))
        }
        other => Ok(other),
    }
}

/// The whole answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[schema(example = json!({"role": "assistant", "content": "Hello!"}))]
pub struct LlmAnswer {
    /// Always `assistant`.
    pub role: String,
    /// The full text (the prefill included).
    pub content: String,
    /// The tools to run, when the model asked for some (OpenAI's shape:
    /// `{"id", "type": "function", "function": {"name", "arguments"}}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub tool_calls: Vec<Value>,
}

/// Tool calls as OpenAI writes them in a message.
pub fn tool_calls_out(calls: &[ToolCall]) -> Vec<Value> {
    calls
        .iter()
        .map(|c| {
            json!({"id": c.id, "type": "function",
                   "function": {"name": c.name, "arguments": c.arguments}})
        })
        .collect()
}

/// `GET /api/ai/llm/models` filters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ModelsQuery {
    /// Part of an id, alias or upstream name (case-insensitive).
    pub search: Option<String>,
    /// Comma-separated capabilities every listed model has:
    /// streaming, system_prompt, stop_sequences, prefill, images.
    pub capability: Option<String>,
    /// Only the model doing this task.
    pub task: Option<String>,
    /// Also list models whose provider is not configured (default false).
    pub all: Option<bool>,
}

/// One model.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "openai:gpt-4o-mini", "provider": "openai", "upstream": "gpt-4o-mini",
    "aliases": ["gpt-4o-mini"],
    "capabilities": {"context_window": 128000, "max_output_tokens": 16384, "streaming": true,
        "system_prompt": true, "stop_sequences": true, "prefill": false, "images": true},
    "tasks": [], "available": true
}))]
pub struct ModelInfo {
    pub id: String,
    pub provider: String,
    pub upstream: String,
    pub aliases: Vec<String>,
    pub capabilities: super::models::Capabilities,
    /// Tasks this model does.
    pub tasks: Vec<String>,
    /// Whether its provider is configured.
    pub available: bool,
}

/// The registry, filtered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelList {
    pub models: Vec<ModelInfo>,
}

// ---- the OpenAI-compatible face ----

/// `stream_options` of a Chat Completions request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// `POST /api/ai/llm/v1/chat/completions`: OpenAI's Chat Completions request, the fields
/// Toolshed honours (`openai_params` refuses the others by name). `model` may be
/// `task:<name>`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say OK"}],
    "max_completion_tokens": 64
}))]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default, deserialize_with = "whole_number")]
    pub max_tokens: Option<u64>,
    #[serde(default, deserialize_with = "whole_number")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Nucleus sampling, 0 to 1 (all three providers).
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Best-effort determinism (OpenAI and Gemini; refused for Anthropic models). With a
    /// seed the answer is cached by default.
    #[serde(default, deserialize_with = "whole_number")]
    pub seed: Option<i64>,
    /// -2 to 2 (OpenAI and Gemini; refused for Anthropic models).
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    /// -2 to 2 (OpenAI and Gemini; refused for Anthropic models).
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    /// The end user, for the provider's abuse monitoring (OpenAI `user`, Anthropic
    /// `metadata.user_id`; refused for Gemini models, which have no such field).
    #[serde(default)]
    pub user: Option<String>,
    /// `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema",
    /// "json_schema": {"name", "schema", "strict"?}}`: native for OpenAI(-compatible) and
    /// Gemini models, a forced tool for Anthropic ones; with `strict`, answers are checked.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub response_format: Option<Value>,
    /// How many answers (choices), 1 to 16: made by parallel calls (streamed interleaved),
    /// not cached.
    #[serde(default, deserialize_with = "whole_number")]
    pub n: Option<u32>,
    /// Functions the model may call (all three providers).
    #[serde(default)]
    pub tools: Option<Vec<ToolIn>>,
    /// `auto`, `none`, `required` or `{"type": "function", "function": {"name"}}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    /// `false`: at most one tool call per answer (refused for Gemini models).
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// Toolshed extension: models to try when the first fails.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Toolshed extension: use the answer cache (default: only at temperature 0; or the
    /// `X-Toolshed-Cache` header, `on` or `off`).
    #[serde(default)]
    pub cache: Option<bool>,
}

impl ChatCompletionRequest {
    /// The gateway request and what the face does with its answers.
    pub fn into_ask(self, cache_header: Option<bool>) -> Result<OpenAiAsk, AppError> {
        let temperature = check_temperature(self.temperature)?;
        let response_format = response_format(self.response_format)?;
        let n = self.n.unwrap_or(1);
        if !(1..=MAX_CHOICES).contains(&n) {
            return Err(
                AppError::bad_request(format!("n must be from 1 to {MAX_CHOICES}")).with_param("n"),
            );
        }
        let sampling = Sampling {
            top_p: check_range("top_p", self.top_p, 0.0, 1.0)?,
            seed: self.seed,
            presence_penalty: check_range("presence_penalty", self.presence_penalty, -2.0, 2.0)?,
            frequency_penalty: check_range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?,
        };
        let (model, task) = match self.model.strip_prefix("task:") {
            Some(task) => (None, Some(task.to_owned())),
            None => (Some(self.model), None),
        };
        Ok(OpenAiAsk {
            ask: Ask {
                messages: messages(self.messages)?,
                system: None,
                model,
                task,
                fallbacks: self.fallbacks,
                max_tokens: self.max_completion_tokens.or(self.max_tokens),
                stop: self.stop.map(Stop::into_vec).unwrap_or_default(),
                temperature,
                sampling,
                user: self.user,
                response_format,
                tools: tools(self.tools, self.tool_choice, self.parallel_tool_calls)?,
                // Several samples of one prompt are no one answer to keep.
                cache: n == 1 && use_cache(self.cache, cache_header, temperature, sampling.seed),
                retry_rate_limits: false,
            },
            stream: self.stream,
            include_usage: self.stream_options.is_some_and(|o| o.include_usage),
            n,
        })
    }
}

/// A whole number that JSON may write as `64` or `64.0` (JSON Schema's `integer` allows
/// both, and some clients send floats): anything else is the wrong shape.
fn whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i128>,
{
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number
        .as_i128()
        .or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e38)
                .map(|f| f as i128)
        })
        .ok_or_else(|| {
            serde::de::Error::custom(format!("expected a whole number, not {number}"))
        })?;
    T::try_from(whole)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{number} is out of range")))
}

/// OpenAI's `response_format`, checked.
fn response_format(value: Option<Value>) -> Result<ResponseFormat, AppError> {
    let bad = |why: &str| {
        AppError::bad_request(format!("response_format {why}")).with_param("response_format")
    };
    let Some(value) = value else {
        return Ok(ResponseFormat::Text);
    };
    match value["type"].as_str() {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let schema = &value["json_schema"];
            if !schema["name"].is_string() || !schema["schema"].is_object() {
                return Err(bad("json_schema needs a name and a schema object"));
            }
            Ok(ResponseFormat::JsonSchema(schema.clone()))
        }
        _ => Err(bad("type is text, json_object or json_schema")),
    }
}

/// Most choices one request may ask for.
const MAX_CHOICES: u32 = 16;

/// A Chat Completions request, parsed: the gateway's request and what the face does with
/// the answers.
pub struct OpenAiAsk {
    pub ask: Ask,
    pub stream: bool,
    /// Send a usage chunk at the end of a stream.
    pub include_usage: bool,
    /// How many choices, each from its own call.
    pub n: u32,
}

/// OpenAI's `chat.completion` object.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "chatcmpl-4b0c…", "object": "chat.completion", "created": 1795487569,
    "model": "openai:gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 19, "completion_tokens": 1, "total_tokens": 20}
}))]
pub struct ChatCompletion {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Value>,
    pub usage: Value,
}

/// OpenAI's model list.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"object": "list", "data": [
    {"id": "openai:gpt-4o-mini", "object": "model", "created": 0, "owned_by": "openai"}
]}))]
pub struct OpenAiModelList {
    pub object: String,
    pub data: Vec<Value>,
}
