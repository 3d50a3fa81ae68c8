use serde::Serialize;
use utoipa::ToSchema;

/// The process is up.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "OK", "timestamp": 1764000000000_i64, "version": "0.1.0", "uptime_s": 12.5}))]
pub struct Health {
    /// Always `OK` when the process answers.
    pub status: &'static str,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Toolshed's version.
    pub version: &'static str,
    /// Seconds since the process started serving.
    pub uptime_s: f64,
}

impl Health {
    /// The body as JSON, written by hand: orchestrators poll this route all the time, and
    /// serde's byte-by-byte string escaping cost more than the rest of the handler. Every
    /// string here is a constant that needs no escaping; the uptime is written to the
    /// millisecond.
    pub fn to_json(&self) -> String {
        let uptime_ms = (self.uptime_s * 1000.0).round().max(0.0) as u64;
        let mut numbers = itoa::Buffer::new();
        let mut out = String::with_capacity(96);
        out.push_str("{\"status\":\"");
        out.push_str(self.status);
        out.push_str("\",\"timestamp\":");
        out.push_str(numbers.format(self.timestamp));
        out.push_str(",\"version\":\"");
        out.push_str(self.version);
        out.push_str("\",\"uptime_s\":");
        out.push_str(numbers.format(uptime_ms / 1000));
        out.push('.');
        let millis = numbers.format(uptime_ms % 1000 + 1000);
        out.push_str(&millis[1..]);
        out.push('}');
        out
    }
}

/// Whether the instance can do its work.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "checks": {"storage": "ok"}}))]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    pub checks: ReadinessChecks,
}

/// One entry per dependency: `ok`, or the reason it is not.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessChecks {
    /// Whether the embedded store accepts a durable write.
    pub storage: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_body_is_what_serde_writes() {
        for uptime_s in [0.0, 0.001, 0.5, 12.5, 59.999, 86_400.25, 31_536_000.0] {
            let health = Health {
                status: "OK",
                timestamp: 1_764_000_000_123,
                version: env!("CARGO_PKG_VERSION"),
                uptime_s,
            };
            let ours: serde_json::Value =
                serde_json::from_str(&health.to_json()).expect("valid JSON");
            let serde = serde_json::to_value(&health).expect("serializable");
            assert_eq!(ours, serde, "uptime {uptime_s}");
        }
    }
}
