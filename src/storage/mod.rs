//! The embedded engine: SQLite files in the data directory, with no knowledge of HTTP.
//!
//! `db` is the engine (one writer thread with group commit, reader connections), `key` the
//! ordered key encoding; `entry` and `task` are the rows of the KV and task tables, which
//! `kv` (the Deno-KV-style store) and `queue` (the durable task queue) build on without
//! importing each other; `worker` is the loop that runs tasks, `cache` the services' own
//! expiring cache. `routes/kv` and `routes/queue` are thin HTTP faces over this; every
//! other service may use it for caches and jobs.

pub mod backup;
pub mod blobs;
pub mod cache;
pub mod db;
pub mod entry;
pub mod error;
pub mod facts;
pub mod key;
pub mod key_json;
pub mod kv;
pub mod lock;
pub mod queue;
pub mod schedule;
mod schema;
pub mod task;
pub mod worker;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use db::{Db, Durability};
pub use error::StorageError;

/// The database file inside the data directory.
pub const DB_FILE: &str = "toolshed.db";

/// How often expired entries and old finished tasks are purged.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(5);
/// Every how many maintenance rounds old blobs are swept (a folder walk: every 10 minutes).
const SWEEP_BLOBS_EVERY: u32 = 120;
/// The most rows one purge step removes, so a purge never holds the writer for long.
const PURGE_BATCH: usize = 1000;

/// Tunables of the store (set from `env.rs`).
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub durability: Durability,
    /// Largest KV value and task payload.
    pub max_value_bytes: usize,
    /// How long succeeded tasks are kept for inspection.
    pub task_retention: Duration,
    /// Largest blob.
    pub blob_max_bytes: usize,
    /// How long a blob is kept after it was last written.
    pub blob_max_age: Duration,
    /// How many backups are kept.
    pub backup_keep: usize,
    /// Where backups are also sealed to.
    pub backup_remote: Option<backup::remote::RemoteOptions>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Normal,
            max_value_bytes: 1024 * 1024,
            task_retention: Duration::from_secs(7 * 24 * 3600),
            blob_max_bytes: 50 << 20,
            blob_max_age: Duration::from_secs(30 * 24 * 3600),
            backup_keep: 7,
            backup_remote: None,
        }
    }
}

/// Every storage handle a service may use, cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub db: Arc<Db>,
    pub kv: kv::Kv,
    pub queue: queue::Queue,
    pub cache: cache::Cache,
    pub blobs: blobs::Blobs,
    pub backups: backup::Backups,
    pub schedules: schedule::Schedules,
    pub facts: facts::Facts,
    /// The profile graph: a fact database of its own.
    pub profile: facts::Facts,
    options: StoreOptions,
    /// The database file.
    db_path: Arc<Path>,
    /// Held while any handle on the store lives.
    _lock: Arc<lock::DataDirLock>,
}

impl Store {
    /// Opens the store in `data_dir`, creating the directory if it is missing.
    pub fn open(data_dir: &Path, options: StoreOptions) -> Result<Store, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StorageError::Internal(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let lock = lock::DataDirLock::acquire(data_dir)?;
        let db_path: Arc<Path> = Arc::from(data_dir.join(DB_FILE));
        let db = Arc::new(Db::open(&db_path, options.durability)?);
        let signal = task::QueueSignal::default();
        let blobs = blobs::Blobs::open(data_dir, options.blob_max_bytes).map_err(|e| {
            StorageError::Internal(format!(
                "cannot open the blob folder in {}: {e}",
                data_dir.display()
            ))
        })?;
        let remote = options
            .backup_remote
            .as_ref()
            .map(backup::remote::Remote::new)
            .transpose()
            .map_err(|e| StorageError::Internal(format!("TOOLSHED_BACKUP_REMOTE: {e}")))?;
        let backups =
            backup::Backups::open(data_dir, options.backup_keep, remote).map_err(|e| {
                StorageError::Internal(format!(
                    "cannot open the backups folder in {}: {e}",
                    data_dir.display()
                ))
            })?;
        Ok(Store {
            blobs,
            backups,
            kv: kv::Kv::new(db.clone(), options.max_value_bytes, signal.clone()),
            schedules: schedule::Schedules::new(
                db.clone(),
                signal.clone(),
                options.max_value_bytes,
            ),
            queue: queue::Queue::new(db.clone(), signal, options.max_value_bytes),
            cache: cache::Cache::new(db.clone()),
            facts: facts::Facts::new(db.clone(), facts::store::Space::Data),
            profile: facts::Facts::new(db.clone(), facts::store::Space::Profile),
            db,
            options,
            db_path,
            _lock: Arc::new(lock),
        })
    }

    /// Bytes the database takes on disk: its file, write-ahead log and shared memory index.
    pub fn size_on_disk(&self) -> u64 {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut path = self.db_path.as_os_str().to_owned();
                path.push(suffix);
                std::fs::metadata(path).ok()
            })
            .map(|meta| meta.len())
            .sum()
    }

    /// Proves the store accepts a durable write; used by the readiness probe.
    pub async fn check_writable(&self) -> Result<(), StorageError> {
        self.db
            .write(|ctx| {
                ctx.conn
                    .prepare_cached("INSERT INTO meta (k, v) VALUES ('ready_probe', ?1) ON CONFLICT(k) DO UPDATE SET v = excluded.v")?
                    .execute([ctx.now_ms])?;
                Ok(())
            })
            .await
    }

    /// Purges expired KV entries and old succeeded tasks, and sweeps old blobs, in the
    /// background until `shutdown`.
    pub fn spawn_maintenance(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut round: u32 = 0;
            loop {
                round = round.wrapping_add(1);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(MAINTENANCE_EVERY) => {}
                }
                if let Err(e) = store.kv.purge_expired(PURGE_BATCH).await {
                    tracing::warn!(error = %e, "cannot purge expired entries");
                }
                if let Err(e) = store.cache.purge_expired(PURGE_BATCH).await {
                    tracing::warn!(error = %e, "cannot purge expired cache entries");
                }
                let retention =
                    i64::try_from(store.options.task_retention.as_millis()).unwrap_or(i64::MAX);
                let before = db::now_ms().saturating_sub(retention);
                if let Err(e) = store.queue.purge_succeeded(before, PURGE_BATCH).await {
                    tracing::warn!(error = %e, "cannot purge old tasks");
                }
                if round % SWEEP_BLOBS_EVERY == 1 {
                    let swept = store.blobs.sweep(store.options.blob_max_age).await;
                    if swept > 0 {
                        tracing::info!(swept, "old blobs removed");
                    }
                }
            }
        })
    }
}
