//! The fleet seen from outside: each running instance's `/metrics`, scraped with the
//! metrics token the control plane gave it (which opens nothing else), boiled down to "is it
//! running, is it performing" — memory, CPU, requests, server errors, queue backlog — and
//! served as `GET /fleet/metrics`, labelled by instance id only: no user id, no user data.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use super::store::{Instance, State};

/// What the last scrape of an instance said.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub resident_memory_bytes: f64,
    pub cpu_seconds: f64,
    pub requests: f64,
    pub server_errors: f64,
    pub queue_pending: f64,
    /// Ms since the epoch.
    pub scraped_at: i64,
}

/// The last scrape of every instance, by id.
#[derive(Clone, Default)]
pub struct Scrapes(Arc<Mutex<HashMap<String, Usage>>>);

impl Scrapes {
    pub fn get(&self, id: &str) -> Option<Usage> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    pub fn set(&self, id: &str, usage: Usage) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned(), usage);
    }

    pub fn forget(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

/// The figures that matter, read from an instance's Prometheus text.
pub fn usage_from(text: &str, now: i64) -> Usage {
    let mut usage = Usage {
        scraped_at: now,
        ..Usage::default()
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        match name {
            "process_resident_memory_bytes" => usage.resident_memory_bytes = value,
            "process_cpu_seconds_total" => usage.cpu_seconds = value,
            "toolshed_http_requests_total" => {
                usage.requests += value;
                if series.contains("status_class=\"5xx\"") {
                    usage.server_errors += value;
                }
            }
            "toolshed_queue_tasks" if series.contains("state=\"pending\"") => {
                usage.queue_pending += value;
            }
            _ => {}
        }
    }
    usage
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabel {
    instance: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// The fleet in the Prometheus text format.
pub fn render(instances: &[Instance], scrapes: &Scrapes) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("toolshed_fleet");
    let by_state = Family::<StateLabel, Gauge>::default();
    let up = Family::<InstanceLabel, Gauge>::default();
    let restarts = Family::<InstanceLabel, Gauge>::default();
    let memory = Family::<InstanceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let cpu = Family::<InstanceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let requests = Family::<InstanceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let errors = Family::<InstanceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let pending = Family::<InstanceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for state in State::ALL {
        let count = instances.iter().filter(|i| i.state == state).count();
        by_state
            .get_or_create(&StateLabel {
                state: state.as_str(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
    for instance in instances {
        let label = InstanceLabel {
            instance: instance.id.clone(),
        };
        up.get_or_create(&label)
            .set(i64::from(instance.state == State::Started));
        restarts
            .get_or_create(&label)
            .set(i64::from(instance.restarts));
        if let Some(usage) = scrapes.get(&instance.id) {
            memory
                .get_or_create(&label)
                .set(usage.resident_memory_bytes);
            cpu.get_or_create(&label).set(usage.cpu_seconds);
            requests.get_or_create(&label).set(usage.requests);
            errors.get_or_create(&label).set(usage.server_errors);
            pending.get_or_create(&label).set(usage.queue_pending);
        }
    }
    registry.register("instances", "Instances by state", by_state);
    registry.register(
        "instance_up",
        "1 while the instance is started and healthy",
        up,
    );
    registry.register(
        "instance_restarts",
        "Restarts after the instance exited or failed its health probe",
        restarts,
    );
    registry.register(
        "instance_resident_memory_bytes",
        "The instance's resident memory at its last scrape",
        memory,
    );
    registry.register(
        "instance_cpu_seconds",
        "CPU the instance used since it started, at its last scrape",
        cpu,
    );
    registry.register(
        "instance_http_requests",
        "Requests the instance answered since it started, at its last scrape",
        requests,
    );
    registry.register(
        "instance_http_server_errors",
        "Answers with a 5xx status since it started, at its last scrape",
        errors,
    );
    registry.register(
        "instance_queue_pending_tasks",
        "Tasks waiting in the instance's queue, at its last scrape",
        pending,
    );
    let mut text = String::new();
    encode(&mut text, &registry)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figures_are_read_from_an_instances_text() {
        let text = "# HELP x\n\
            process_resident_memory_bytes 16000000\n\
            process_cpu_seconds_total 1.5\n\
            toolshed_http_requests_total{method=\"GET\",route=\"/api/health\",status_class=\"2xx\"} 10\n\
            toolshed_http_requests_total{method=\"GET\",route=\"/api/kv/list\",status_class=\"5xx\"} 2\n\
            toolshed_queue_tasks{state=\"pending\"} 3\n\
            toolshed_queue_tasks{state=\"dead\"} 4\n";
        let usage = usage_from(text, 7);
        assert_eq!(usage.resident_memory_bytes, 16e6);
        assert_eq!(usage.cpu_seconds, 1.5);
        assert_eq!(usage.requests, 12.0);
        assert_eq!(usage.server_errors, 2.0);
        assert_eq!(usage.queue_pending, 3.0);
        assert_eq!(usage.scraped_at, 7);
    }
}
