//! `/api/ai/llm` against mock providers in their documented wire formats.

mod embeddings;
mod native;
mod openai_face;
mod providers;
mod resilience;
