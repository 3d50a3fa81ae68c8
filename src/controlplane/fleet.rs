//! The fleet seen from outside: each running instance's `/metrics`, scraped with the
//! metrics token the control plane gave it (which opens nothing else), boiled down to "is it
//! running, is it performing" — memory, CPU, requests, server errors, queue backlog — and
//! served as `GET /fleet/metrics`, labelled by instance id only: no user id, no user data.
//! The last [`HISTORY`] scrapes of each instance are kept (five minutes at the default
//! interval), as rates over each interval at `GET /instances/{id}/history`.

use std::collections::{HashMap, VecDeque};
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
    /// Time spent answering requests since it started (its duration histogram's sum).
    pub request_seconds: f64,
    pub queue_pending: f64,
    /// Ms since the epoch.
    pub scraped_at: i64,
}

/// Scrapes kept per instance.
pub const HISTORY: usize = 60;

/// What an instance did between two scrapes.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Sample {
    /// The later scrape's time, ms since the epoch.
    pub at: i64,
    pub resident_memory_bytes: f64,
    /// CPU over the interval, in percent of one core.
    pub cpu_percent: f64,
    pub requests_per_s: f64,
    pub server_errors_per_s: f64,
    /// Mean time to answer a request over the interval; none without requests.
    pub mean_latency_ms: Option<f64>,
    pub queue_pending: f64,
}

/// The rates between consecutive scrapes, oldest first. A counter that went down means the
/// instance restarted in between: the later value is its whole count since.
pub fn samples(history: &[Usage]) -> Vec<Sample> {
    history
        .windows(2)
        .filter_map(|pair| {
            let (before, after) = (&pair[0], &pair[1]);
            let seconds = (after.scraped_at - before.scraped_at) as f64 / 1000.0;
            if seconds <= 0.0 {
                return None;
            }
            let delta = |a: f64, b: f64| if b >= a { b - a } else { b };
            let requests = delta(before.requests, after.requests);
            let busy = delta(before.request_seconds, after.request_seconds);
            Some(Sample {
                at: after.scraped_at,
                resident_memory_bytes: after.resident_memory_bytes,
                cpu_percent: 100.0 * delta(before.cpu_seconds, after.cpu_seconds) / seconds,
                requests_per_s: requests / seconds,
                server_errors_per_s: delta(before.server_errors, after.server_errors) / seconds,
                mean_latency_ms: (requests > 0.0).then(|| 1000.0 * busy / requests),
                queue_pending: after.queue_pending,
            })
        })
        .collect()
}

/// The last scrapes of every instance, by id.
#[derive(Clone, Default)]
pub struct Scrapes(Arc<Mutex<HashMap<String, VecDeque<Usage>>>>);

impl Scrapes {
    /// The last scrape.
    pub fn get(&self, id: &str) -> Option<Usage> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .and_then(|kept| kept.back().cloned())
    }

    /// The kept scrapes, oldest first.
    pub fn history(&self, id: &str) -> Vec<Usage> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .map(|kept| kept.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn set(&self, id: &str, usage: Usage) {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let kept = all.entry(id.to_owned()).or_default();
        if kept.len() == HISTORY {
            kept.pop_front();
        }
        kept.push_back(usage);
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
            "toolshed_http_request_duration_seconds_sum" => usage.request_seconds += value,
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
            toolshed_http_request_duration_seconds_sum{method=\"GET\",route=\"/api/health\"} 0.25\n\
            toolshed_http_request_duration_seconds_count{method=\"GET\",route=\"/api/health\"} 10\n\
            toolshed_queue_tasks{state=\"pending\"} 3\n\
            toolshed_queue_tasks{state=\"dead\"} 4\n";
        let usage = usage_from(text, 7);
        assert_eq!(usage.resident_memory_bytes, 16e6);
        assert_eq!(usage.cpu_seconds, 1.5);
        assert_eq!(usage.requests, 12.0);
        assert_eq!(usage.server_errors, 2.0);
        assert_eq!(usage.request_seconds, 0.25);
        assert_eq!(usage.queue_pending, 3.0);
        assert_eq!(usage.scraped_at, 7);
    }

    #[test]
    fn samples_are_rates_over_each_interval_and_survive_a_restart() {
        let at = |ms: i64, cpu: f64, requests: f64, errors: f64, busy: f64| Usage {
            resident_memory_bytes: 1e7,
            cpu_seconds: cpu,
            requests,
            server_errors: errors,
            request_seconds: busy,
            queue_pending: 1.0,
            scraped_at: ms,
        };
        let history = [
            at(0, 1.0, 100.0, 0.0, 1.0),
            at(2_000, 1.5, 300.0, 4.0, 3.0),
            at(4_000, 1.5, 300.0, 4.0, 3.0),
            // Restarted: counters from zero.
            at(6_000, 0.2, 10.0, 0.0, 0.05),
        ];
        let samples = samples(&history);
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].cpu_percent, 25.0);
        assert_eq!(samples[0].requests_per_s, 100.0);
        assert_eq!(samples[0].server_errors_per_s, 2.0);
        assert_eq!(samples[0].mean_latency_ms, Some(10.0));
        assert_eq!(samples[1].requests_per_s, 0.0);
        assert_eq!(samples[1].mean_latency_ms, None);
        assert_eq!(samples[2].requests_per_s, 5.0);
        assert_eq!(samples[2].mean_latency_ms, Some(5.0));
        assert_eq!(samples[2].at, 6_000);
    }

    #[test]
    fn only_the_last_scrapes_are_kept() {
        let scrapes = Scrapes::default();
        for n in 0..(HISTORY as i64 + 5) {
            scrapes.set(
                "i",
                Usage {
                    scraped_at: n,
                    ..Usage::default()
                },
            );
        }
        let kept = scrapes.history("i");
        assert_eq!(kept.len(), HISTORY);
        assert_eq!(kept[0].scraped_at, 5);
        assert_eq!(
            scrapes.get("i").map(|u| u.scraped_at),
            Some(HISTORY as i64 + 4)
        );
    }
}
