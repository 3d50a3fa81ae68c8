//! `toolshed_url2text_fetches_total{outcome}`: pages asked for, by how the fetch ended —
//! `ok`, `cache_hit`, or the error code the caller got (`upstream_error`,
//! `upstream_timeout`, `forbidden_url`, …): words of ours, never the URL.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::platform::state::AppState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// url2text's metrics; cheap to clone.
#[derive(Clone)]
pub struct Url2TextMetrics {
    fetches: Family<OutcomeLabels, Counter>,
}

impl Url2TextMetrics {
    pub fn register(app: &AppState) -> Url2TextMetrics {
        let metrics = Url2TextMetrics {
            fetches: Family::default(),
        };
        app.metrics.register(|registry| {
            registry.register(
                "url2text_fetches",
                "Page fetches and cache hits, by outcome (ok, cache_hit, or the error code answered)",
                metrics.fetches.clone(),
            );
        });
        metrics
    }

    pub fn fetched(&self, outcome: &'static str) {
        self.fetches.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}
