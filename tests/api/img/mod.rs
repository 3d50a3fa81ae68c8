//! `/api/ai/img` against mock fal.ai and OpenAI servers in their documented wire formats.

mod generation;
mod jobs;
