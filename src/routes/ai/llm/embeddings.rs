//! `POST /api/ai/llm/v1/embeddings`, on OpenAI's wire: one text or a batch, `dimensions`,
//! `encoding_format: "base64"`. Sent to OpenAI (or any OpenAI-compatible server) as it is,
//! to Gemini as `batchEmbedContents`; Anthropic has no embeddings. Embeddings are
//! deterministic, so every answer is cached (by model, dimensions and inputs) for the
//! cache TTL.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::handlers::answer_headers;
use super::models::{Kind, Model, ProviderConfig};
use super::providers::http::{read_answer, send};
use super::retry::upstream_error;
use super::state::Llm;
use crate::platform::error::AppError;
use crate::platform::extract::AppJson;
use crate::platform::hash::cache_key;
use crate::platform::openai_error::{OpenAiError, OpenAiErrorBody};
use crate::storage::cache::CacheEntry;

/// Most texts in one request (OpenAI's own limit is 2048).
const MAX_INPUTS: usize = 2048;

/// Embedding models known by their bare name, and whose they are; any other is named
/// `provider/model-id`.
const KNOWN: [(&str, &str); 5] = [
    ("text-embedding-3-small", "openai"),
    ("text-embedding-3-large", "openai"),
    ("text-embedding-ada-002", "openai"),
    ("gemini-embedding-001", "gemini"),
    ("text-embedding-004", "gemini"),
];

/// One text or several.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Input {
    One(String),
    Many(Vec<String>),
}

/// OpenAI's embeddings request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"model": "text-embedding-3-small", "input": ["first text", "second text"], "dimensions": 256}))]
pub struct EmbeddingsRequest {
    /// `text-embedding-3-small`, `gemini-embedding-001`, … or `provider/model-id`.
    pub model: String,
    /// A text, or up to 2048 (token arrays are not taken).
    pub input: Input,
    /// Fewer dimensions, where the model can shorten its vectors.
    #[serde(default)]
    pub dimensions: Option<u32>,
    /// `float` (the default) or `base64` (little-endian f32).
    #[serde(default)]
    pub encoding_format: Option<String>,
    /// The end user, for OpenAI's abuse monitoring (refused for Gemini).
    #[serde(default)]
    pub user: Option<String>,
}

/// The model and provider a name stands for.
fn resolve(llm: &Llm, name: &str) -> Result<(Model, ProviderConfig), AppError> {
    let unknown = |why: String| {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "unknown_model",
            format!("unknown embedding model {name:?}: {why}"),
        )
    };
    let (provider, upstream) = match KNOWN.iter().find(|(model, _)| *model == name) {
        Some((model, provider)) => (*provider, *model),
        None => name.split_once('/').ok_or_else(|| {
            let known: Vec<&str> = KNOWN.iter().map(|(m, _)| *m).collect();
            unknown(format!("one of {}, or provider/model-id", known.join(", ")))
        })?,
    };
    let model = llm
        .registry
        .upstream_model(provider, upstream)
        .ok_or_else(|| unknown(format!("no provider {provider:?}")))?;
    let config = llm.registry.configured(&model, name)?;
    if config.kind == Kind::Anthropic {
        return Err(AppError::bad_request(format!(
            "provider {provider:?} has no embeddings; use an OpenAI or Gemini embedding model"
        ))
        .with_param("model"));
    }
    Ok((model, config.clone()))
}

/// The provider's HTTP request for `texts`.
fn request(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    model: &Model,
    texts: &[String],
    dimensions: Option<u32>,
    user: Option<&str>,
) -> reqwest::RequestBuilder {
    match provider.kind {
        Kind::Gemini => {
            let requests: Vec<Value> = texts
                .iter()
                .map(|text| {
                    let mut one = json!({
                        "model": format!("models/{}", model.upstream),
                        "content": {"parts": [{"text": text}]},
                    });
                    if let Some(d) = dimensions {
                        one["outputDimensionality"] = json!(d);
                    }
                    one
                })
                .collect();
            let url = format!(
                "{}/v1beta/models/{}:batchEmbedContents",
                provider.base_url, model.upstream
            );
            let mut request = client.post(url).json(&json!({"requests": requests}));
            if let Some(key) = &provider.key {
                request = request.header("x-goog-api-key", key.expose());
            }
            request
        }
        _ => {
            let mut body =
                json!({"model": model.upstream, "input": texts, "encoding_format": "float"});
            if let Some(d) = dimensions {
                body["dimensions"] = json!(d);
            }
            if let Some(user) = user {
                body["user"] = json!(user);
            }
            let mut request = client
                .post(format!("{}/embeddings", provider.base_url))
                .json(&body);
            if let Some(key) = &provider.key {
                request = request.bearer_auth(key.expose());
            }
            request
        }
    }
}

/// The vectors (in input order) and the input tokens counted, from the provider's answer.
fn vectors(kind: Kind, answer: &Value, count: usize) -> Result<(Vec<Vec<f64>>, u64), String> {
    let numbers =
        |v: &Value| -> Option<Vec<f64>> { v.as_array()?.iter().map(Value::as_f64).collect() };
    let (list, tokens) = match kind {
        Kind::Gemini => {
            let list = answer["embeddings"]
                .as_array()
                .ok_or("no embeddings in the answer")?
                .iter()
                .map(|e| numbers(&e["values"]))
                .collect::<Option<Vec<_>>>()
                .ok_or("an embedding without values")?;
            (list, 0)
        }
        _ => {
            let mut data: Vec<&Value> = answer["data"]
                .as_array()
                .ok_or("no data in the answer")?
                .iter()
                .collect();
            data.sort_by_key(|d| d["index"].as_u64().unwrap_or(u64::MAX));
            let list = data
                .iter()
                .map(|d| numbers(&d["embedding"]))
                .collect::<Option<Vec<_>>>()
                .ok_or("an embedding that is not a list of numbers")?;
            (list, answer["usage"]["prompt_tokens"].as_u64().unwrap_or(0))
        }
    };
    if list.len() != count {
        return Err(format!("{} embeddings for {count} inputs", list.len()));
    }
    Ok((list, tokens))
}

/// Embeddings, as OpenAI's API.
///
/// Cached: the same model, dimensions and inputs are answered from the store (`X-Cache`).
#[utoipa::path(
    post,
    path = "/api/ai/llm/v1/embeddings",
    operation_id = "openai_embeddings",
    tag = "ai",
    request_body = EmbeddingsRequest,
    responses(
        (status = 200, description = "A list of embeddings, in input order. `X-Cache: HIT|MISS`.", body = Object,
            example = json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2]}], "model": "openai:text-embedding-3-small", "usage": {"prompt_tokens": 3, "total_tokens": 3}})),
        (status = 400, description = "Malformed body, no input, too many, an unknown encoding, a provider without embeddings", body = OpenAiErrorBody),
        (status = 404, description = "No such embedding model (`model_not_found`)", body = OpenAiErrorBody),
        (status = 413, description = "Body over the limit", body = OpenAiErrorBody),
        (status = 415, description = "Not JSON", body = OpenAiErrorBody),
        (status = 422, description = "JSON of the wrong shape (token arrays included)", body = OpenAiErrorBody),
        (status = 429, description = "The provider's rate limit, with its `Retry-After`", body = OpenAiErrorBody),
        (status = 502, description = "The provider failed", body = OpenAiErrorBody),
        (status = 504, description = "The provider did not answer in time", body = OpenAiErrorBody),
    )
)]
pub async fn embeddings(
    State(llm): State<Llm>,
    body: Result<AppJson<EmbeddingsRequest>, AppError>,
) -> Result<Response, OpenAiError> {
    let AppJson(body) = body?;
    let texts = match body.input {
        Input::One(text) => vec![text],
        Input::Many(texts) => texts,
    };
    if texts.is_empty() || texts.len() > MAX_INPUTS {
        return Err(
            AppError::bad_request(format!("input takes 1 to {MAX_INPUTS} texts"))
                .with_param("input")
                .into(),
        );
    }
    if texts.iter().any(String::is_empty) {
        return Err(AppError::bad_request("input texts cannot be empty")
            .with_param("input")
            .into());
    }
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(AppError::bad_request(format!(
                "encoding_format is float or base64, not {other:?}"
            ))
            .with_param("encoding_format")
            .into());
        }
    };
    if body.dimensions == Some(0) {
        return Err(AppError::bad_request("dimensions must be at least 1")
            .with_param("dimensions")
            .into());
    }
    let (model, provider) = resolve(&llm, &body.model)?;
    if body.user.is_some() && provider.kind == Kind::Gemini {
        return Err(AppError::bad_request(format!(
            "model {} (provider {}) has no user field; remove user",
            model.id, provider.name
        ))
        .with_param("user")
        .into());
    }
    let key = format!(
        "embeddings/{}",
        cache_key(
            &json!({"v": 1, "model": model.id, "dimensions": body.dimensions, "input": texts})
                .to_string()
        )
    );
    let cached = llm.app.store.cache.get(&key).await.ok().flatten();
    let (vectors, tokens, hit) = match cached
        .and_then(|b| serde_json::from_slice::<(Vec<Vec<f64>>, u64)>(&b).ok())
    {
        Some((vectors, tokens)) => (vectors, tokens, true),
        None => {
            let client = llm.app.outbound.trusted().map_err(AppError::from)?.clone();
            let sent = request(
                &client,
                &provider,
                &model,
                &texts,
                body.dimensions,
                body.user.as_deref(),
            );
            let result = match send(sent).await {
                Ok(response) => read_answer(response).await,
                Err(e) => Err(e),
            };
            llm.metrics
                .call(&provider.name, result.as_ref().map(|_| ()));
            let bytes = result.map_err(|e| upstream_error(&model, &provider, &e))?;
            let answer: Value = serde_json::from_slice(&bytes).map_err(|e| {
                AppError::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream_error",
                    format!("provider {} answered no JSON: {e}", provider.name),
                )
            })?;
            let (vectors, tokens) = vectors(provider.kind, &answer, texts.len()).map_err(|e| {
                AppError::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream_error",
                    format!("provider {}: {e}", provider.name),
                )
            })?;
            if let Ok(value) = serde_json::to_vec(&(&vectors, tokens)) {
                let entry = CacheEntry {
                    key,
                    value,
                    ttl: llm.app.config.llm_cache_ttl_s,
                };
                if let Err(e) = llm.app.store.cache.put_many(vec![entry]).await {
                    tracing::warn!(error = %e, "embeddings cache write failed");
                }
            }
            (vectors, tokens, false)
        }
    };
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector
                    .iter()
                    .flat_map(|x| (*x as f32).to_le_bytes())
                    .collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let mut response = Json(json!({
        "object": "list",
        "data": data,
        "model": model.id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response();
    answer_headers(&mut response, hit, &model.id);
    Ok(response)
}
