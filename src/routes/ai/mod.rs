//! `/api/ai/…`: services built on models and the web.

pub mod img;
pub mod llm;
pub mod transcribe;
pub mod url2text;
