//! `AppState`: what every handler can reach — the configuration, the store, the clock of
//! the process.

use std::sync::Arc;
use std::time::Instant;

use crate::env::Config;
use crate::storage::Store;

/// Shared by every request; cloning is cheap (reference counts).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    /// When this process started serving, for uptime.
    pub started_at: Instant,
}
