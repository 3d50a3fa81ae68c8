//! AI services: each is its own folder under `/api/ai`.

pub mod llm;
