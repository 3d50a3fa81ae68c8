//! `/api/ai/llm` against mock providers in their documented wire formats.

mod anthropic_face;
mod embeddings;
mod images;
mod native;
mod openai_face;
mod providers;
mod resilience;
mod tools;

use crate::support::{self, mock_llm};

/// An instance with all three providers pointed at `mock`.
pub fn every_provider(mock: &mock_llm::Mock) -> support::TestServer {
    let openai = format!("{}/v1", mock.url);
    support::spawn_with(&[
        ("OPENAI_BASE_URL", openai.as_str()),
        ("OPENAI_API_KEY", "k"),
        ("ANTHROPIC_BASE_URL", &mock.url),
        ("ANTHROPIC_API_KEY", "k"),
        ("GEMINI_BASE_URL", &mock.url),
        ("GEMINI_API_KEY", "k"),
    ])
}
