//! The task kind `backup`: takes a backup of the data directory (what a schedule such as
//! `TOOLSHED_BACKUP_SCHEDULE` enqueues). Its result names the backup.

use serde_json::{Value, json};

use crate::storage::backup::Backups;
use crate::storage::queue::Outcome;
use crate::storage::worker::{TaskFuture, TaskHandler, TaskRun};

/// The kind's name in `POST /api/queue/tasks` and in schedules.
pub const KIND: &str = "backup";

/// Runs `backup` tasks.
pub struct BackupTask {
    backups: Backups,
}

impl BackupTask {
    pub fn new(backups: Backups) -> BackupTask {
        BackupTask { backups }
    }
}

impl TaskHandler for BackupTask {
    fn validate(&self, payload: &Value) -> Result<(), String> {
        match payload {
            Value::Null => Ok(()),
            Value::Object(fields) if fields.is_empty() => Ok(()),
            _ => Err("a backup task takes no payload (null or {})".into()),
        }
    }

    fn run(&self, _run: TaskRun) -> TaskFuture {
        let backups = self.backups.clone();
        Box::pin(async move {
            match backups.take().await {
                Ok(info) => Outcome::Succeeded(json!({
                    "backup": info.id,
                    "size": info.size,
                    "sha256": info.sha256,
                })),
                Err(e) => Outcome::Retry(e.to_string()),
            }
        })
    }
}
