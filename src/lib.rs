//! Toolshed: a personal backend in one binary.
//!
//! `main.rs` is the command line; this library holds the app so tests and benchmarks can
//! build it in-process. `unsafe` is forbidden crate-wide (`[lints]` in Cargo.toml).

pub mod app;
pub mod build_info;
pub mod commands;
pub mod controlplane;
pub mod env;
pub mod middlewares;
pub mod platform;
pub mod routes;
pub mod server;
pub mod storage;
