//! An Anthropic Messages request read into the gateway's `Ask`. A field or block Toolshed
//! cannot honour is refused with a 400 naming it, as on the OpenAI face; `cache_control`
//! hints are accepted (they change what a call costs, never its answer) and not forwarded.

use serde_json::{Map, Value};

use super::plan::{Ask, AskMessage, AskRole};
use super::providers::{
    Part, ResponseFormat, Sampling, Tool, ToolCall, ToolChoice, ToolResult, Tools,
};
use super::schemas::use_cache;
use crate::platform::error::AppError;

/// The request fields read here.
const HONOURED: [&str; 14] = [
    "model",
    "max_tokens",
    "messages",
    "system",
    "stop_sequences",
    "temperature",
    "top_p",
    "stream",
    "tools",
    "tool_choice",
    "metadata",
    // Toolshed's own, as on the other faces.
    "fallbacks",
    "cache",
    "cache_control",
];

/// A Messages request, parsed.
pub struct MessagesAsk {
    pub ask: Ask,
    pub stream: bool,
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::bad_request(message)
}

fn unprocessable(message: impl Into<String>) -> AppError {
    AppError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        message,
    )
}

fn string(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, AppError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(unprocessable(format!("{name} must be a string"))),
    }
}

fn number(fields: &Map<String, Value>, name: &str) -> Result<Option<f64>, AppError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| unprocessable(format!("{name} must be a number"))),
    }
}

/// Reads a Messages request; `cache_header` is the `X-Toolshed-Cache` header.
pub fn parse(body: Value, cache_header: Option<bool>) -> Result<MessagesAsk, AppError> {
    let Value::Object(fields) = body else {
        return Err(bad("the request body must be a JSON object"));
    };
    let refused: Vec<&String> = fields
        .iter()
        .filter(|(name, value)| !HONOURED.contains(&name.as_str()) && !value.is_null())
        .map(|(name, _)| name)
        .collect();
    if let Some(first) = refused.first() {
        let names: Vec<String> = refused.iter().map(|n| format!("`{n}`")).collect();
        return Err(AppError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "unsupported_parameter",
            format!(
                "Toolshed does not support {} yet, and will not drop it silently: remove it",
                names.join(", ")
            ),
        )
        .with_param(first.as_str()));
    }
    let model = string(&fields, "model")?.ok_or_else(|| bad("model is required"))?;
    let max_tokens = match fields.get("max_tokens") {
        Some(v) => v
            .as_u64()
            .ok_or_else(|| unprocessable("max_tokens must be a whole number"))?,
        None => return Err(bad("max_tokens is required")),
    };
    let system = match fields.get("system") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(blocks)) => Some(text_blocks(blocks, "system")?),
        Some(_) => return Err(unprocessable("system must be a string or text blocks")),
    };
    let stop = match fields.get("stop_sequences") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| unprocessable("stop_sequences must be a list of strings"))?,
    };
    let temperature = number(&fields, "temperature")?;
    if temperature.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
        return Err(bad("temperature must be from 0 to 1").with_param("temperature"));
    }
    let top_p = number(&fields, "top_p")?;
    if top_p.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
        return Err(bad("top_p must be from 0 to 1").with_param("top_p"));
    }
    let user = match fields.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(metadata)) => {
            if let Some(other) = metadata.keys().find(|k| *k != "user_id") {
                return Err(
                    bad(format!("metadata.{other} is not supported")).with_param("metadata")
                );
            }
            string(metadata, "user_id")?
        }
        Some(_) => return Err(unprocessable("metadata must be an object")),
    };
    let fallbacks = match fields.get("fallbacks") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| unprocessable("fallbacks must be a list of model names"))?,
    };
    let cache = match fields.get("cache") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(unprocessable("cache must be true or false")),
    };
    let stream = match fields.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(unprocessable("stream must be true or false")),
    };
    let messages = match fields.get("messages") {
        Some(Value::Array(list)) if !list.is_empty() => {
            list.iter().map(message).collect::<Result<Vec<_>, _>>()?
        }
        Some(Value::Array(_)) => return Err(bad("messages cannot be empty")),
        _ => return Err(unprocessable("messages must be a list")),
    };
    let tools = tools(fields.get("tools"), fields.get("tool_choice"))?;
    let (model, task) = match model.strip_prefix("task:") {
        Some(task) => (None, Some(task.to_owned())),
        None => (Some(model), None),
    };
    Ok(MessagesAsk {
        ask: Ask {
            messages,
            system,
            model,
            task,
            fallbacks,
            max_tokens: Some(max_tokens),
            stop,
            temperature,
            sampling: Sampling {
                top_p,
                ..Sampling::default()
            },
            user,
            response_format: ResponseFormat::Text,
            tools,
            cache: use_cache(cache, cache_header, temperature, None),
            retry_rate_limits: false,
        },
        stream,
    })
}

/// The text of a list of text blocks, as paragraphs.
fn text_blocks(blocks: &[Value], place: &str) -> Result<String, AppError> {
    let texts = blocks
        .iter()
        .map(
            |block| match (block["type"].as_str(), block["text"].as_str()) {
                (Some("text"), Some(text)) => Ok(text),
                (kind, _) => Err(bad(format!(
                    "{place} takes text blocks, not {}",
                    kind.unwrap_or("untyped blocks")
                ))),
            },
        )
        .collect::<Result<Vec<_>, _>>()?;
    Ok(texts.join("\n\n"))
}

/// One message: its content a string or blocks (`text`, `image`, `tool_use`, `tool_result`).
fn message(value: &Value) -> Result<AskMessage, AppError> {
    let role = match value["role"].as_str() {
        Some("user") => AskRole::User,
        Some("assistant") => AskRole::Assistant,
        _ => return Err(unprocessable("a message's role is user or assistant")),
    };
    let parts = match &value["content"] {
        Value::String(text) => vec![Part::Text(text.clone())],
        Value::Array(blocks) => blocks
            .iter()
            .map(|block| part(block, role))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(unprocessable("a message's content is a string or blocks")),
    };
    Ok(AskMessage { role, parts })
}

fn part(block: &Value, role: AskRole) -> Result<Part, AppError> {
    let kind = block["type"].as_str().unwrap_or("");
    let text = |name: &str| {
        block[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| unprocessable(format!("a {kind} block needs {name}")))
    };
    match (kind, role) {
        ("text", _) => Ok(Part::Text(text("text")?)),
        ("image", AskRole::User) => {
            let source = &block["source"];
            match source["type"].as_str() {
                Some("base64") => Ok(Part::Image(format!(
                    "data:{};base64,{}",
                    source["media_type"].as_str().unwrap_or("image/png"),
                    source["data"].as_str().unwrap_or("")
                ))),
                Some("url") => Ok(Part::Image(
                    source["url"]
                        .as_str()
                        .ok_or_else(|| unprocessable("an image url source needs url"))?
                        .to_owned(),
                )),
                _ => Err(bad("image sources are base64 or url")),
            }
        }
        ("tool_use", AskRole::Assistant) => {
            let input = &block["input"];
            if !input.is_object() {
                return Err(unprocessable("a tool_use block's input is an object"));
            }
            Ok(Part::ToolCall(ToolCall {
                id: text("id")?,
                name: text("name")?,
                arguments: input.to_string(),
            }))
        }
        ("tool_result", AskRole::User) => {
            let mut content = match &block["content"] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Array(blocks) => text_blocks(blocks, "tool_result content")?,
                _ => return Err(unprocessable("tool_result content is a string or blocks")),
            };
            // No other provider has the flag: it travels in the text.
            if block["is_error"] == true {
                content = format!("Error: {content}");
            }
            Ok(Part::ToolResult(ToolResult {
                call_id: text("tool_use_id")?,
                name: String::new(),
                content,
            }))
        }
        _ => Err(bad(format!(
            "{kind:?} blocks in {} messages are not supported",
            match role {
                AskRole::Assistant => "assistant",
                _ => "user",
            }
        ))
        .with_param("messages")),
    }
}

/// `tools` (custom tools: `name`, `description`, `input_schema`) and `tool_choice`.
fn tools(list: Option<&Value>, choice: Option<&Value>) -> Result<Tools, AppError> {
    let mut tools = Tools::default();
    for tool in list.and_then(Value::as_array).into_iter().flatten() {
        if !matches!(tool["type"].as_str(), None | Some("custom")) {
            return Err(bad(format!(
                "server tools ({}) are not supported; send custom tools",
                tool["type"]
            ))
            .with_param("tools"));
        }
        let name = tool["name"]
            .as_str()
            .ok_or_else(|| unprocessable("a tool needs a name"))?;
        let known = [
            "type",
            "name",
            "description",
            "input_schema",
            "cache_control",
        ];
        if let Some(other) = tool
            .as_object()
            .and_then(|t| t.keys().find(|k| !known.contains(&k.as_str())))
        {
            return Err(bad(format!(
                "tool {name:?}: {other} is not supported; remove it"
            ))
            .with_param("tools"));
        }
        if !tool["input_schema"].is_object() {
            return Err(unprocessable(format!(
                "tool {name:?} needs an input_schema object"
            )));
        }
        tools.list.push(Tool {
            name: name.to_owned(),
            description: tool["description"].as_str().map(str::to_owned),
            parameters: tool["input_schema"].clone(),
        });
    }
    if let Some(choice) = choice.filter(|c| !c.is_null()) {
        tools.choice = Some(match choice["type"].as_str() {
            Some("auto") => ToolChoice::Auto,
            Some("any") => ToolChoice::Required,
            Some("none") => ToolChoice::None,
            Some("tool") => ToolChoice::Named(
                choice["name"]
                    .as_str()
                    .ok_or_else(|| unprocessable("tool_choice of type tool needs a name"))?
                    .to_owned(),
            ),
            _ => {
                return Err(
                    bad("tool_choice type is auto, any, tool or none").with_param("tool_choice")
                );
            }
        });
        if choice["disable_parallel_tool_use"] == true {
            tools.parallel = Some(false);
        }
    }
    Ok(tools)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_cannot_be_honoured_is_named() {
        let body = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}],
                          "top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}});
        let Err(error) = parse(body, None) else {
            panic!("refused");
        };
        assert_eq!(error.param.as_deref(), Some("thinking"));
        assert!(error.message.contains("`top_k`"), "{}", error.message);
    }

    #[test]
    fn blocks_become_parts() {
        let body = json!({"model": "m", "max_tokens": 5, "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"}}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}], "is_error": true}]},
            ],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true}});
        let Ok(parsed) = parse(body, None) else {
            panic!("parses");
        };
        let ask = parsed.ask;
        assert_eq!(ask.system.as_deref(), Some("Be brief."));
        assert_eq!(
            ask.messages[0].parts[1],
            Part::Image("data:image/gif;base64,R0lG".into())
        );
        assert!(
            matches!(&ask.messages[1].parts[0], Part::ToolCall(c) if c.arguments == r#"{"a":1}"#)
        );
        assert!(
            matches!(&ask.messages[2].parts[0], Part::ToolResult(r) if r.content == "Error: ok")
        );
        assert_eq!(ask.tools.choice, Some(ToolChoice::Required));
        assert_eq!(ask.tools.parallel, Some(false));
        assert!(!ask.cache, "not deterministic");
    }
}
