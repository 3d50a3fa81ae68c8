//! What url2text keeps while the app runs: the app's shared state and the bound on page
//! extractions running at once (`TOOLSHED_URL2TEXT_CONCURRENCY`).

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::metrics::Url2TextMetrics;
use crate::platform::state::AppState;

/// The service's state, cheap to clone for every request.
#[derive(Clone)]
pub struct Url2Text {
    pub app: AppState,
    /// Parsing a large page takes a core for milliseconds: at most this many at once.
    pub extractions: Arc<Semaphore>,
    pub metrics: Url2TextMetrics,
}

impl Url2Text {
    pub fn new(app: &AppState) -> Url2Text {
        Url2Text {
            app: app.clone(),
            extractions: Arc::new(Semaphore::new(app.config.url2text_concurrency)),
            metrics: Url2TextMetrics::register(app),
        }
    }
}
