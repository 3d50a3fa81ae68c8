//! The OpenAI-compatible face, so the official OpenAI SDKs work with only their base URL
//! set to `…/api/ai/llm/v1`: `POST /chat/completions` (whole, or SSE chunks ending in
//! `data: [DONE]`) and `GET /models`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::gateway;
use super::handlers::{answer_headers, cache_header};
use super::images;
use super::openai_params;
use super::openai_stream::{self, usage_json};
use super::plan;
use super::providers::Usage;
use super::schemas::{ChatCompletion, ChatCompletionRequest, OpenAiModelList, tool_calls_out};
use super::state::Llm;
use crate::platform::error::AppError;
use crate::platform::extract::{AppJson, AppPath};
use crate::platform::openai_error::{OpenAiError, OpenAiErrorBody};

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Chat Completions, as OpenAI's API.
///
/// With `stream: true`: `text/event-stream` of `chat.completion.chunk` objects, then
/// `data: [DONE]`.
#[utoipa::path(
    post,
    path = "/api/ai/llm/v1/chat/completions",
    operation_id = "openai_chat_completions",
    tag = "ai",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "A `chat.completion`, or an SSE stream of `chat.completion.chunk`s. `X-Cache: HIT|MISS`.",
            content(
                (ChatCompletion = "application/json"),
                (String = "text/event-stream", example = json!("data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"OK\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n")),
            )),
        (status = 400, description = "Malformed body, a parameter Toolshed does not honour (named in `param`), provider not configured, or the provider refused the request (its message)", body = OpenAiErrorBody),
        (status = 404, description = "No such model (`model_not_found`)", body = OpenAiErrorBody),
        (status = 413, description = "Body over the limit", body = OpenAiErrorBody),
        (status = 415, description = "Not JSON", body = OpenAiErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = OpenAiErrorBody),
        (status = 429, description = "The provider's rate limit, passed on at once with its `Retry-After`", body = OpenAiErrorBody),
        (status = 502, description = "The provider failed after the gateway's retries (`x-should-retry: false`)", body = OpenAiErrorBody),
        (status = 504, description = "The provider did not answer in time (`x-should-retry: false`)", body = OpenAiErrorBody),
    )
)]
pub async fn chat_completions(
    State(llm): State<Llm>,
    headers: HeaderMap,
    body: Result<AppJson<Value>, AppError>,
) -> Result<Response, OpenAiError> {
    let AppJson(body) = body?;
    let mut parsed = openai_params::parse(body)?.into_ask(cache_header(&headers)?)?;
    images::inline(&llm.app.outbound, &mut parsed.ask).await?;
    let include_usage = parsed.include_usage;
    let plan = plan::plan(&llm.registry, &parsed.ask)?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = now_s();
    if !parsed.stream {
        // One call per choice, side by side.
        let answers = futures_util::future::try_join_all(
            (0..parsed.n).map(|_| gateway::complete(&llm, &plan)),
        )
        .await?;
        let first = answers
            .first()
            .ok_or_else(|| AppError::internal("no answer"))?;
        let (model, cached) = (first.model.clone(), first.cached);
        let usage = answers.iter().fold(Usage::default(), |sum, a| Usage {
            input_tokens: sum.input_tokens + a.usage.input_tokens,
            output_tokens: sum.output_tokens + a.usage.output_tokens,
        });
        let choices = answers
            .into_iter()
            .enumerate()
            .map(|(index, answer)| {
                let mut message = json!({"role": "assistant", "content": answer.text});
                if !answer.tool_calls.is_empty() {
                    if answer.text.is_empty() {
                        message["content"] = Value::Null;
                    }
                    message["tool_calls"] = Value::Array(tool_calls_out(&answer.tool_calls));
                }
                json!({
                    "index": index,
                    "message": message,
                    "logprobs": null,
                    "finish_reason": answer.finish_reason.as_deref().unwrap_or("stop"),
                })
            })
            .collect();
        let mut response = Json(ChatCompletion {
            id,
            object: "chat.completion".into(),
            created,
            model: model.clone(),
            choices,
            usage: usage_json(usage),
        })
        .into_response();
        answer_headers(&mut response, cached, &model);
        return Ok(response);
    }
    // One stream per choice, side by side, their chunks interleaved as OpenAI's are.
    let streams = futures_util::future::try_join_all(
        (0..parsed.n).map(|_| super::stream::stream(&llm, &plan)),
    )
    .await?;
    Ok(openai_stream::response(streams, id, created, include_usage))
}

/// The models whose provider is configured, as OpenAI's model list (ids and aliases).
#[utoipa::path(
    get,
    path = "/api/ai/llm/v1/models",
    operation_id = "openai_list_models",
    tag = "ai",
    responses((status = 200, description = "The models", body = OpenAiModelList))
)]
pub async fn models(State(llm): State<Llm>) -> Result<Json<OpenAiModelList>, AppError> {
    let registry = &llm.registry;
    // Each model under its id and under every alias: the aliases are the names people type.
    let data = registry
        .models
        .iter()
        .filter(|m| registry.available(m))
        .flat_map(|m| {
            std::iter::once(&m.id).chain(&m.aliases).map(
                |name| json!({"id": name, "object": "model", "created": 0, "owned_by": m.provider}),
            )
        })
        .collect();
    Ok(Json(OpenAiModelList {
        object: "list".into(),
        data,
    }))
}

/// One model, as OpenAI's model object.
///
/// What `client.models.retrieve` reads.
#[utoipa::path(
    get,
    path = "/api/ai/llm/v1/models/{*id}",
    operation_id = "openai_get_model",
    tag = "ai",
    params(("id" = String, Path, description = "A model id or alias, e.g. `openai:gpt-4o-mini`")),
    responses(
        (status = 200, description = "The model", body = Object, example = json!({"id": "openai:gpt-4o-mini", "object": "model", "created": 0, "owned_by": "openai"})),
        (status = 404, description = "No such model, or its provider is not configured (`model_not_found`)", body = OpenAiErrorBody),
    )
)]
pub async fn model(
    State(llm): State<Llm>,
    AppPath(id): AppPath<String>,
) -> Result<Json<Value>, OpenAiError> {
    let registry = &llm.registry;
    match registry.find(&id).filter(|m| registry.available(m)) {
        Some(m) => Ok(Json(
            json!({"id": m.id, "object": "model", "created": 0, "owned_by": m.provider}),
        )),
        // As the gateway's own lookup says it; the face makes it OpenAI's 404 model_not_found.
        None => Err(AppError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "unknown_model",
            format!("no model {id:?}"),
        )
        .into()),
    }
}
