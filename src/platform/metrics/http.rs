//! `toolshed_http_*`: requests by method, route template and status class, their duration
//! by route, and those in flight. The request log records them when it writes its line.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::DURATION_BUCKETS;

/// The `route` of requests no route matched: one series for all of them, so a scan of
/// random paths adds none.
pub const UNMATCHED: &str = "unmatched";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Arc<str>,
    status_class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Arc<str>,
}

type Histograms = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The HTTP metrics; cheap to clone (handles on the registered metrics).
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Histograms,
    in_flight: Gauge,
    unmatched: Arc<str>,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The method as a label: the standard ones by name, anything else as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> HttpMetrics {
        let metrics = HttpMetrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            in_flight: Gauge::default(),
            unmatched: Arc::from(UNMATCHED),
        };
        registry.register(
            "http_requests",
            "Requests answered, by method, route template and status class",
            metrics.requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival until its answer is handed over (a streamed answer: until it ends), by route template",
            Unit::Seconds,
            metrics.durations.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "Requests whose answer has not ended yet",
            metrics.in_flight.clone(),
        );
        metrics
    }

    /// A request came in.
    pub fn started(&self) {
        self.in_flight.inc();
    }

    /// Its answer ended (or was cut off) after `elapsed`; `route` is the matched template.
    pub fn finished(
        &self,
        method: &Method,
        route: Option<&Arc<str>>,
        status: StatusCode,
        elapsed: Duration,
    ) {
        self.in_flight.dec();
        let route = route.unwrap_or(&self.unmatched).clone();
        self.durations
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                method: method_label(method),
                route,
                status_class: status_class(status),
            })
            .inc();
    }
}
