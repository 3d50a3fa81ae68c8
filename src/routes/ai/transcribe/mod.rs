//! `/api/ai/transcribe`: speech to text through real providers (fal.ai's Whisper models,
//! OpenAI's transcription API and the servers that speak it), cached by the audio's hash and
//! the options, with background jobs for long audio and OpenAI's transcription route beside
//! the LLM gateway's `/v1` ones.
//!
//! A request flows: `handlers` (or `openai_face`) reads the audio (`audio` checks its bytes),
//! `run` answers from the cache or has a provider (`providers/`) transcribe it once however
//! many ask.

mod audio;
mod handlers;
mod openai_face;
mod providers;
mod run;
mod schemas;
mod state;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::middlewares::body_limit::RouteBodyLimit;
use crate::platform::state::AppState;

/// Room for a multipart form's boundaries and fields around the audio.
const FORM_OVERHEAD: usize = 64 * 1024;

pub fn router(app: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::transcribe_audio))
        .routes(routes!(handlers::transcribe_stored))
        .routes(routes!(handlers::create_job))
        .routes(routes!(handlers::job))
        .routes(routes!(openai_face::transcriptions))
        .layer(RouteBodyLimit(
            app.config.transcribe_max_bytes + FORM_OVERHEAD,
        ))
        .with_state(state::Speech::new(app))
}
