//! One folder per service; the path of the folder is the URL under `/api`. The services are
//! mounted in one list in `app.rs`.

pub mod admin;
pub mod ai;
pub mod attestation;
pub mod data;
pub mod health;
pub mod kv;
pub mod metrics;
pub mod profile;
pub mod queue;
