//! `/api/ai/…`: services built on models and the web.

pub mod url2text;
