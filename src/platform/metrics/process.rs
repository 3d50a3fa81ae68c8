//! The standard `process_*` metrics, read from `/proc/self` at each scrape (Linux; other
//! systems get only the start time): CPU seconds, resident and virtual memory, open and
//! maximum file descriptors, start time. A few lines of `/proc` parsing instead of a crate.

use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

/// `/proc` counts CPU time in USER_HZ ticks, which Linux fixes at 100 a second for
/// userspace whatever the kernel's own tick rate.
const USER_HZ: f64 = 100.0;

#[derive(Debug)]
struct ProcessCollector {
    start_time_s: f64,
}

/// What `/proc/self` says now; `None` where it cannot be read.
#[derive(Debug, Default, PartialEq)]
struct Reading {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<i64>,
    virtual_bytes: Option<i64>,
    open_fds: Option<i64>,
    max_fds: Option<i64>,
}

/// utime + stime of `/proc/self/stat`, fields 14 and 15, counted after the command name
/// (which may hold spaces and parentheses).
fn cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / USER_HZ)
}

/// A `Name:   1234 kB` line of `/proc/self/status`, in bytes.
fn status_kib(status: &str, name: &str) -> Option<i64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kib: i64 = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_fds(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn read() -> Reading {
    let file = |path: &str| std::fs::read_to_string(path).ok();
    let status = file("/proc/self/status");
    Reading {
        cpu_seconds: file("/proc/self/stat").as_deref().and_then(cpu_seconds),
        resident_bytes: status.as_deref().and_then(|s| status_kib(s, "VmRSS:")),
        virtual_bytes: status.as_deref().and_then(|s| status_kib(s, "VmSize:")),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| i64::try_from(entries.count()).unwrap_or(i64::MAX)),
        max_fds: file("/proc/self/limits").as_deref().and_then(max_fds),
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: Option<i64>,
) -> Result<(), std::fmt::Error> {
    let Some(value) = value else { return Ok(()) };
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = read();
        if let Some(seconds) = now.cpu_seconds {
            let metric = ConstCounter::new(seconds);
            metric.encode(encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent in seconds",
                Some(&Unit::Seconds),
                metric.metric_type(),
            )?)?;
        }
        let bytes = Some(&Unit::Bytes);
        gauge(
            &mut encoder,
            "process_resident_memory",
            "Resident memory size in bytes",
            bytes,
            now.resident_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory",
            "Virtual memory size in bytes",
            bytes,
            now.virtual_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_open_fds",
            "Number of open file descriptors",
            None,
            now.open_fds,
        )?;
        gauge(
            &mut encoder,
            "process_max_fds",
            "Maximum number of open file descriptors",
            None,
            now.max_fds,
        )?;
        let start = ConstGauge::new(self.start_time_s);
        start.encode(encoder.encode_descriptor(
            "process_start_time",
            "Start time of the process since unix epoch in seconds",
            Some(&Unit::Seconds),
            start.metric_type(),
        )?)
    }
}

/// Adds the process metrics (unprefixed, as every exporter names them).
pub fn register(registry: &mut Registry, started: SystemTime) {
    let start_time_s = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    registry.register_collector(Box::new(ProcessCollector { start_time_s }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_the_kernel_writes_them() {
        let stat =
            "4242 (tool (shed) x) S 1 4242 4242 0 -1 4194560 5000 0 0 0 250 50 0 0 20 0 9 0 100 0";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        let status = "Name:\ttoolshed\nVmSize:\t  123456 kB\nVmRSS:\t   16384 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(16_384 * 1024));
        assert_eq!(status_kib(status, "VmSize:"), Some(123_456 * 1024));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n";
        assert_eq!(max_fds(limits), Some(1024));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_can_be_read() {
        let now = read();
        assert!(now.resident_bytes.is_some_and(|b| b > 1024 * 1024));
        assert!(now.open_fds.is_some_and(|n| n >= 3));
        assert!(now.max_fds.is_some_and(|n| n >= 64));
        assert!(now.cpu_seconds.is_some());
    }
}
