//! `/api/ai/llm`: one gateway to many LLM providers (OpenAI and every compatible server,
//! Anthropic, Gemini) with a model registry, an answer cache, retries and fallbacks — and an
//! OpenAI-compatible face at `/api/ai/llm/v1` and an Anthropic-compatible one at
//! `/api/ai/llm/v1/messages` for the official SDKs.
//!
//! A request flows: a face (`handlers`, `openai_compat`, `anthropic_compat`) parses it, `plan` fits it to each
//! model, `gateway` (whole) or `stream` runs it through `retry` and a provider's
//! translation (`providers/`), and `cache` keeps the answer.

mod anthropic_compat;
mod anthropic_error;
mod anthropic_request;
mod cache;
mod embeddings;
mod gateway;
mod handlers;
mod images;
mod metrics;
mod models;
mod openai_compat;
mod openai_params;
mod openai_stream;
mod plan;
mod providers;
mod retry;
mod schemas;
mod sse;
mod state;
mod stream;
mod timing;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::middlewares::body_limit::RouteBodyLimit;
use crate::platform::state::AppState;

/// The service's routes, with its registry loaded and its cache writer started; the error
/// says what is wrong with the models file.
pub fn router(app: &AppState) -> Result<OpenApiRouter<AppState>, String> {
    let llm = state::Llm::start(app)?;
    Ok(OpenApiRouter::new()
        .routes(routes!(handlers::ask))
        .routes(routes!(handlers::models))
        .routes(routes!(openai_compat::chat_completions))
        .routes(routes!(openai_compat::models))
        .routes(routes!(openai_compat::model))
        .routes(routes!(embeddings::embeddings))
        .routes(routes!(anthropic_compat::messages))
        .layer(RouteBodyLimit(app.config.llm_max_request_bytes))
        .with_state(llm))
}
