//! The embedded engine: SQLite files in the data directory, with no knowledge of HTTP.
//!
//! `routes/` puts thin HTTP faces over it; every other service may use it for caches and
//! jobs.

pub mod db;
pub mod error;
mod schema;

use std::path::Path;
use std::sync::Arc;

pub use db::{Db, Durability};
pub use error::StorageError;

/// The database file inside the data directory.
pub const DB_FILE: &str = "toolshed.db";

/// Every storage handle a service may use, cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub db: Arc<Db>,
}

impl Store {
    /// Opens the store in `data_dir`, creating the directory if it is missing.
    pub fn open(data_dir: &Path, durability: Durability) -> Result<Store, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StorageError::invalid(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let db = Arc::new(Db::open(&data_dir.join(DB_FILE), durability)?);
        Ok(Store { db })
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
}
