//! What the LLM service keeps while the app runs: the model registry (loaded once at
//! start, so a broken models file stops the start instead of failing requests) and the
//! answer cache with its writer.

use std::sync::Arc;

use super::cache::AnswerCache;
use super::metrics::LlmMetrics;
use super::models::Registry;
use crate::platform::state::AppState;

/// The service's state, cheap to clone for every request.
#[derive(Clone)]
pub struct Llm(Arc<Inner>);

pub struct Inner {
    pub app: AppState,
    pub registry: Registry,
    pub cache: AnswerCache,
    pub metrics: LlmMetrics,
}

impl Llm {
    /// Loads the registry and starts the cache writer; the error names what is wrong with
    /// the models file.
    pub fn start(app: &AppState) -> Result<Llm, String> {
        let registry = Registry::load(&app.config)?;
        Ok(Llm(Arc::new(Inner {
            app: app.clone(),
            registry,
            cache: AnswerCache::start(app),
            metrics: LlmMetrics::register(app),
        })))
    }
}

impl std::ops::Deref for Llm {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
