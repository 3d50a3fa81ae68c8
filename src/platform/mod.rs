//! General-purpose code every service may use, and nothing service-specific.

pub mod auth;
pub mod error;
pub mod extract;
pub mod fal_queue;
pub mod fallback;
pub mod hash;
pub mod hex;
pub mod log_format;
pub mod log_writer;
pub mod media_type;
pub mod metrics;
pub mod openai_error;
pub mod openapi;
pub mod outbound;
pub mod rate_limit;
pub mod release;
pub mod signature;
pub mod state;
pub mod telemetry;
