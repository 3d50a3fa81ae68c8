//! `AppState`: what every handler can reach — the configuration, the store, the outbound
//! client, the task kinds, the clock of the process, and the signal that ends services'
//! background work.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::env::Config;
use crate::platform::auth::Access;
use crate::platform::outbound::Outbound;
use crate::storage::Store;
use crate::storage::worker::Workers;

/// The finished app, for code that calls Toolshed's own routes in-process (the queue's
/// `http` tasks). Set once the router is built.
pub type AppHandle = Arc<
    OnceLock<
        tower::util::BoxCloneSyncService<
            axum::extract::Request,
            axum::response::Response,
            std::convert::Infallible,
        >,
    >,
>;

/// Shared by every request. Handlers clone it on every call, so it is one reference count;
/// fields are reached through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What `AppState` holds.
pub struct Shared {
    pub config: Config,
    /// Who may call the instance (its tokens are re-read on SIGHUP).
    pub access: Access,
    pub store: Store,
    /// The one outbound HTTP client (guarded and trusted).
    pub outbound: Outbound,
    /// The task kinds this instance runs.
    pub workers: Arc<Workers>,
    /// The instance's metrics: services register theirs while they are built.
    pub metrics: Arc<crate::platform::metrics::Metrics>,
    /// When this process started serving, for uptime.
    pub started_at: Instant,
    /// Cancelled once the server has stopped serving: every request has been answered (or
    /// the grace period is over), so no handler hands background work on after it.
    /// Services' background loops end on it.
    pub drained: CancellationToken,
    /// Services' background tasks (spawn them here): the server waits for them on shutdown,
    /// before the store closes.
    pub background: TaskTracker,
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
