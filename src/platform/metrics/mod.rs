//! Metrics for whoever runs the instance (`GET /metrics`): is it running, is it performing —
//! never what a user stored or asked. Built on `prometheus-client`; every name has the
//! `toolshed_` prefix and base units, but the standard `process_*` set.
//!
//! Shared utility: the registry lives in `AppState`; each service registers its own
//! metrics into it while it is built ([`Metrics::register`]), and the request log records
//! the HTTP ones. **Labels carry only what the code chose**: route templates (never a raw
//! path), method and status class, a task kind, a provider's name, an outcome.

mod http;
mod process;

use std::sync::Mutex;
use std::time::SystemTime;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use http::HttpMetrics;

/// Histogram buckets for the time of one request or call, in seconds: a personal instance
/// answers in well under a millisecond, an LLM in tens of seconds.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The instance's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub http: HttpMetrics,
}

/// The text formats a scrape may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`, what Prometheus and promtool read by default.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`, when the `Accept` header asks.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when `accept` names it, else the Prometheus text format.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

impl Metrics {
    /// The registry with the HTTP metrics, `toolshed_build_info` and the process metrics
    /// (the process counted from `started`).
    pub fn new(started: SystemTime) -> Metrics {
        let mut registry = Registry::default();
        process::register(&mut registry, started);
        let ours = registry.sub_registry_with_prefix("toolshed");
        let http = HttpMetrics::register(ours);
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: crate::build_info::VERSION,
                commit: crate::build_info::GIT_COMMIT,
            })
            .set(1);
        ours.register(
            "build_info",
            "The running binary: its version and git commit (always 1)",
            build,
        );
        Metrics {
            registry: Mutex::new(registry),
            http,
        }
    }

    /// Lets a service add its metrics, under the `toolshed_` prefix.
    pub fn register(&self, add: impl FnOnce(&mut Registry)) {
        let mut registry = match self.registry.lock() {
            Ok(registry) => registry,
            Err(poisoned) => poisoned.into_inner(),
        };
        add(registry.sub_registry_with_prefix("toolshed"));
    }

    /// Every metric, in `format`.
    pub fn encode(&self, format: Format) -> Result<String, std::fmt::Error> {
        let registry = match self.registry.lock() {
            Ok(registry) => registry,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut text = String::with_capacity(16 * 1024);
        match format {
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
            }
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, &registry)?,
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_follows_the_accept_header() {
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics
        );
    }

    #[test]
    fn both_formats_carry_build_info_and_the_openmetrics_one_ends_with_eof() {
        let metrics = Metrics::new(SystemTime::now());
        let text = metrics.encode(Format::Prometheus).expect("encode");
        assert!(text.contains("# TYPE toolshed_build_info gauge"), "{text}");
        assert!(text.contains(&format!(
            "toolshed_build_info{{version=\"{}\",commit=\"{}\"}} 1",
            crate::build_info::VERSION,
            crate::build_info::GIT_COMMIT
        )));
        assert!(!text.contains("# EOF"));
        let open = metrics.encode(Format::OpenMetrics).expect("encode");
        assert!(open.ends_with("# EOF\n"), "{open}");
    }
}
