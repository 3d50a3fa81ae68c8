//! What a scrape reads at the moment it is made: the queue's tasks by state and the oldest
//! due task's wait (from the store), the store's size on disk, the backups kept (how many,
//! the newest's time and size, failures, copies not yet off the machine), and the workers'
//! attempt counts by kind and outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Unit;

use crate::platform::error::AppError;
use crate::platform::metrics::Format;
use crate::platform::state::AppState;
use crate::storage::worker::Workers;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// The metrics a scrape refreshes, and the state it reads them from.
#[derive(Clone)]
pub struct Scrape {
    app: AppState,
    tasks: Family<StateLabels, Gauge>,
    oldest_pending: Gauge<f64, AtomicU64>,
    storage_bytes: Gauge,
    backups_kept: Gauge,
    backup_last_success: Gauge<f64, AtomicU64>,
    backup_last_size: Gauge,
    backups_failed: Gauge,
    backups_not_sent: Gauge,
}

/// Attempts by kind and outcome, read from the workers' counters at each scrape.
struct AttemptCollector(Arc<Workers>);

impl std::fmt::Debug for AttemptCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttemptCollector")
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    kind: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

impl Collector for AttemptCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.0.attempt_counts();
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let mut family = encoder.encode_descriptor(
            "queue_attempts",
            "Task attempts that ended, by kind and outcome (succeeded or failed)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (kind, count) in &counts {
            for (outcome, value) in [
                ("succeeded", load(&count.succeeded)),
                ("failed", load(&count.retried) + load(&count.dead)),
            ] {
                ConstCounter::new(value).encode(family.encode_family(&AttemptLabels {
                    kind: (*kind).to_owned(),
                    outcome,
                })?)?;
            }
        }
        let mut retries = encoder.encode_descriptor(
            "queue_retries",
            "Failed attempts after which the task waits for another, by kind",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (kind, count) in &counts {
            ConstCounter::new(load(&count.retried)).encode(retries.encode_family(
                &KindLabels {
                    kind: (*kind).to_owned(),
                },
            )?)?;
        }
        let mut dead = encoder.encode_descriptor(
            "queue_dead",
            "Tasks that died (failed for good) in this process, by kind",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (kind, count) in &counts {
            ConstCounter::new(load(&count.dead)).encode(dead.encode_family(&KindLabels {
                kind: (*kind).to_owned(),
            })?)?;
        }
        Ok(())
    }
}

impl Scrape {
    /// Registers the scrape-time metrics with the app's registry.
    pub fn register(app: &AppState) -> Scrape {
        let scrape = Scrape {
            app: app.clone(),
            tasks: Family::default(),
            oldest_pending: Gauge::default(),
            storage_bytes: Gauge::default(),
            backups_kept: Gauge::default(),
            backup_last_success: Gauge::default(),
            backup_last_size: Gauge::default(),
            backups_failed: Gauge::default(),
            backups_not_sent: Gauge::default(),
        };
        app.metrics.register(|registry| {
            registry.register(
                "queue_tasks",
                "Tasks in the queue by state",
                scrape.tasks.clone(),
            );
            registry.register_with_unit(
                "queue_oldest_pending_age",
                "How long the oldest task that is due has waited to start (0 when none)",
                Unit::Seconds,
                scrape.oldest_pending.clone(),
            );
            registry.register_with_unit(
                "storage_size",
                "The database on disk: its file, write-ahead log and index",
                Unit::Bytes,
                scrape.storage_bytes.clone(),
            );
            registry.register(
                "backups_kept",
                "Finished backups kept in the data directory",
                scrape.backups_kept.clone(),
            );
            registry.register_with_unit(
                "backup_last_success_timestamp",
                "When the newest kept backup was taken, Unix time (0 when there is none)",
                Unit::Seconds,
                scrape.backup_last_success.clone(),
            );
            registry.register_with_unit(
                "backup_last_size",
                "The newest kept backup's archive",
                Unit::Bytes,
                scrape.backup_last_size.clone(),
            );
            registry.register(
                "backups_failed",
                "Backups that failed since the process started",
                scrape.backups_failed.clone(),
            );
            registry.register(
                "backups_not_sent",
                "Kept backups without an off-machine copy, when TOOLSHED_BACKUP_REMOTE is set",
                scrape.backups_not_sent.clone(),
            );
            registry.register_collector(Box::new(AttemptCollector(app.workers.clone())));
        });
        scrape
    }

    /// Reads the queue and the store, then encodes every metric.
    pub async fn render(&self, format: Format) -> Result<String, AppError> {
        let stats = self.app.store.queue.stats().await?;
        for (status, count) in &stats.counts {
            self.tasks
                .get_or_create(&StateLabels {
                    state: status.as_str(),
                })
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        self.oldest_pending
            .set(stats.oldest_pending_age_ms as f64 / 1000.0);
        self.storage_bytes
            .set(i64::try_from(self.app.store.size_on_disk()).unwrap_or(i64::MAX));
        let backups = &self.app.store.backups;
        let kept = backups.finished().await;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.backups_kept.set(count(kept.len()));
        let newest = kept.last();
        self.backup_last_success.set(
            newest
                .and_then(|info| info.created_at.parse::<jiff::Timestamp>().ok())
                .map_or(0.0, |at| at.as_millisecond() as f64 / 1000.0),
        );
        self.backup_last_size
            .set(newest.map_or(0, |info| i64::try_from(info.size).unwrap_or(i64::MAX)));
        self.backups_failed.set(count(backups.failed_count()));
        let not_sent = if backups.has_remote() {
            kept.iter().filter(|info| info.remote.is_none()).count()
        } else {
            0
        };
        self.backups_not_sent.set(count(not_sent));
        self.app.metrics.encode(format).map_err(AppError::internal)
    }
}
