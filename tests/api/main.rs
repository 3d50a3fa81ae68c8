//! Every black-box test, in one test binary (one link instead of one per file): each module
//! starts the real server on port 0 (or the real layer stack in-process) and talks HTTP to
//! it. `support` holds the server handle and the mock providers.

mod access;
mod attestation;
mod backup;
mod backup_remote;
mod common_layers;
mod controlplane;
mod data;
mod foundation;
mod img;
mod kv;
mod limits;
mod llm;
mod malformed;
mod metrics;
mod openapi;
mod profile;
mod queue;
mod readme;
mod signing;
mod support;
mod transcribe;
mod update;
mod url2text;
