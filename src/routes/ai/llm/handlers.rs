//! The native face: `POST /api/ai/llm` (a whole answer, or NDJSON deltas) and
//! `GET /api/ai/llm/models`.

use std::convert::Infallible;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;

use super::gateway::{self, Event};
use super::schemas::{LlmAnswer, LlmRequest, ModelInfo, ModelList, ModelsQuery, tool_calls_out};
use super::state::Llm;
use super::{images, plan};
use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::{AppJson, AppQuery};

pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
pub const X_MODEL: HeaderName = HeaderName::from_static("x-model");

/// `X-Cache` and `X-Model` for an answer.
pub fn answer_headers(response: &mut Response, cached: bool, model: &str) {
    let headers = response.headers_mut();
    headers.insert(
        X_CACHE,
        HeaderValue::from_static(if cached { "HIT" } else { "MISS" }),
    );
    if let Ok(value) = HeaderValue::from_str(model) {
        headers.insert(X_MODEL, value);
    }
}

/// Ask a model.
///
/// With `stream: true` the answer is `application/x-ndjson`: one JSON string per text delta,
/// a `{"tool_call": {"index", "id"?, "name"?, "arguments"}}` line per piece of a tool call
/// (the pieces of one index join as OpenAI's streamed `tool_calls` do), and a broken stream
/// ends with an `{"error","code"}` line.
#[utoipa::path(
    post,
    path = "/api/ai/llm",
    tag = "ai",
    request_body = LlmRequest,
    responses(
        (status = 200, description = "The answer. `X-Cache: HIT|MISS`; `X-Model`: the model that answered.",
            content(
                (LlmAnswer = "application/json"),
                (String = "application/x-ndjson", example = json!("\"Hel\"\n\"lo\"\n")),
            )),
        (status = 400, description = "Malformed body, unknown model or task (with close matches), provider not configured (naming its env var)", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
        (status = 502, description = "The provider failed: its status and message", body = ErrorBody),
        (status = 504, description = "The provider did not answer in time", body = ErrorBody),
    )
)]
pub async fn ask(
    State(llm): State<Llm>,
    headers: HeaderMap,
    AppJson(body): AppJson<LlmRequest>,
) -> Result<Response, AppError> {
    let (mut ask, stream) = body.into_ask(cache_header(&headers)?)?;
    images::inline(&llm.app.outbound, &mut ask).await?;
    let plan = plan::plan(&llm.registry, &ask)?;
    if !stream {
        let answer = gateway::complete(&llm, &plan).await?;
        let mut response = Json(LlmAnswer {
            role: "assistant".into(),
            content: answer.text,
            tool_calls: tool_calls_out(&answer.tool_calls),
        })
        .into_response();
        answer_headers(&mut response, answer.cached, &answer.model);
        return Ok(response);
    }
    let streamed = super::stream::stream(&llm, &plan).await?;
    let lines = streamed.events.filter_map(|event| async move {
        let line = match event {
            Event::Delta(text) => serde_json::to_string(&text).ok()?,
            Event::ToolCall(piece) => json!({"tool_call": piece}).to_string(),
            Event::Error(message) => {
                json!({"error": message, "code": "upstream_error"}).to_string()
            }
            Event::End { .. } => return None,
        };
        Some(Ok::<_, Infallible>(Bytes::from(line + "\n")))
    });
    let mut response = Response::new(Body::from_stream(lines));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    answer_headers(&mut response, streamed.cached, &streamed.model);
    Ok(response)
}

/// The model registry with capabilities, aliases and tasks. By default only models whose
/// provider is configured.
#[utoipa::path(
    get,
    path = "/api/ai/llm/models",
    tag = "ai",
    params(ModelsQuery),
    responses(
        (status = 200, description = "The models", body = ModelList),
        (status = 400, description = "Unknown capability or task", body = ErrorBody),
    )
)]
pub async fn models(
    State(llm): State<Llm>,
    AppQuery(query): AppQuery<ModelsQuery>,
) -> Result<Json<ModelList>, AppError> {
    let registry = &llm.registry;
    let wanted: Vec<String> = query
        .capability
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    let default_caps = super::models::Capabilities::default();
    if let Some(bad) = wanted.iter().find(|c| default_caps.has(c).is_none()) {
        return Err(AppError::bad_request(format!(
            "unknown capability {bad:?}; known: streaming, system_prompt, stop_sequences, prefill, images"
        )));
    }
    // An empty `task=` or `search=` is no filter, as an empty form field is no value.
    let task = query.task.as_deref().filter(|t| !t.is_empty());
    let search = query
        .search
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase);
    let task_model = match task {
        Some(task) => Some(
            registry
                .tasks
                .get(task)
                .and_then(|m| registry.find(m))
                .map(|m| m.id.clone())
                .ok_or_else(|| {
                    AppError::from(super::models::LookupError::UnknownTask {
                        name: task.to_owned(),
                        close: super::models::close_matches(task, registry.tasks.keys()),
                    })
                })?,
        ),
        None => None,
    };
    let all = query.all.unwrap_or(false);
    let models = registry
        .models
        .iter()
        .filter(|m| all || registry.available(m))
        .filter(|m| task_model.as_ref().is_none_or(|id| &m.id == id))
        .filter(|m| {
            search.as_ref().is_none_or(|s| {
                m.id.to_ascii_lowercase().contains(s)
                    || m.upstream.to_ascii_lowercase().contains(s)
                    || m.aliases.iter().any(|a| a.to_ascii_lowercase().contains(s))
            })
        })
        .filter(|m| wanted.iter().all(|c| m.capabilities.has(c) == Some(true)))
        .map(|m| ModelInfo {
            id: m.id.clone(),
            provider: m.provider.clone(),
            upstream: m.upstream.clone(),
            aliases: m.aliases.clone(),
            capabilities: m.capabilities,
            tasks: registry.tasks_of(m),
            available: registry.available(m),
        })
        .collect();
    Ok(Json(ModelList { models }))
}

/// `X-Toolshed-Cache: on|off`, when sent.
pub fn cache_header(headers: &HeaderMap) -> Result<Option<bool>, AppError> {
    let Some(value) = headers.get("x-toolshed-cache") else {
        return Ok(None);
    };
    match value
        .to_str()
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Ok("on") => Ok(Some(true)),
        Ok("off") => Ok(Some(false)),
        _ => Err(
            AppError::bad_request("the X-Toolshed-Cache header takes on or off")
                .with_param("X-Toolshed-Cache"),
        ),
    }
}
