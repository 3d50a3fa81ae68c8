//! What the speech service keeps while the app runs: the app's state and the transcriptions
//! in flight, so identical requests at once make one provider call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::providers::Transcript;
use crate::platform::state::AppState;

/// One transcription in flight; everyone asking for its key waits on it.
pub type InFlight = Arc<OnceCell<Transcript>>;

/// The service's state, cheap to clone for every request.
#[derive(Clone)]
pub struct Speech {
    pub app: AppState,
    inflight: Arc<Mutex<HashMap<String, InFlight>>>,
}

impl axum::extract::FromRef<Speech> for AppState {
    fn from_ref(speech: &Speech) -> AppState {
        speech.app.clone()
    }
}

impl Speech {
    pub fn new(app: &AppState) -> Speech {
        Speech {
            app: app.clone(),
            inflight: Arc::default(),
        }
    }

    /// The transcription in flight for `key`, joined or begun.
    pub fn join(&self, key: &str) -> InFlight {
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        inflight.entry(key.to_owned()).or_default().clone()
    }

    /// Forgets `cell` once it ended (a later request reads the cache), or once its last
    /// waiter left after a failure (a later request tries again).
    pub fn leave(&self, key: &str, cell: &InFlight) {
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        // Clones are made only under this lock: the map's and ours are the last two.
        let last = Arc::strong_count(cell) <= 2;
        if inflight.get(key).is_some_and(|c| Arc::ptr_eq(c, cell)) && (cell.initialized() || last) {
            inflight.remove(key);
        }
    }
}
