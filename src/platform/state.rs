//! `AppState`: what every handler can reach — the configuration, the store, the clock of
//! the process.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::env::Config;
use crate::storage::Store;
use crate::storage::worker::Workers;

/// The finished app, for code that calls Toolshed's own routes in-process (the queue's
/// `http` tasks). Set once the router is built.
pub type AppHandle = Arc<OnceLock<axum::Router>>;

/// Shared by every request; cloning is cheap (reference counts).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    /// The task kinds this instance runs.
    pub workers: Arc<Workers>,
    /// When this process started serving, for uptime.
    pub started_at: Instant,
}
