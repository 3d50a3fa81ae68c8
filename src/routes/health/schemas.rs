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
