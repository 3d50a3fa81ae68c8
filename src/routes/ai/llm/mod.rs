//! `/api/ai/llm`: one gateway to many LLM providers (OpenAI and every compatible server,
//! Anthropic, Gemini) with a model registry, an answer cache, retries and fallbacks — and an
//! OpenAI-compatible face at `/api/ai/llm/v1` for the official SDKs.

mod cache;
mod gateway;
mod handlers;
mod models;
mod providers;
mod retry;
mod schemas;
mod sse;
mod stream;
mod v1;

use axum::extract::DefaultBodyLimit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::platform::state::AppState;

/// Conversations can be long.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::ask))
        .routes(routes!(handlers::models))
        .routes(routes!(v1::chat_completions))
        .routes(routes!(v1::models))
        .routes(routes!(v1::model))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
