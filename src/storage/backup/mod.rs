//! Backups of the data directory, taken while it serves.
//!
//! A backup is one tar archive in `<data dir>/backups/<id>.tar` with a sidecar
//! `<id>.json` (time, size, SHA-256, what it holds). The database is copied with SQLite's
//! `VACUUM INTO` on a connection of its own: a read transaction, so it sees one consistent
//! state (every write acknowledged before it began) while the writer goes on writing to
//! the WAL. Blobs are immutable files named by their hash, so copying them after the
//! snapshot only adds blobs nothing refers to yet. The newest `keep` backups are kept.
//! `restore` checks an archive and swaps it in for a stopped server's data directory.

mod archive;
pub mod remote;
pub mod restore;
pub mod sealed;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jiff::{Timestamp, Unit};
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};

use crate::storage::DB_FILE;
use crate::storage::blobs::BLOBS_DIR;
use archive::ArchiveWriter;

/// The folder inside the data directory.
pub const BACKUPS_DIR: &str = "backups";
/// An archive's extension; its sidecar is `<id>.json`.
const ARCHIVE_EXT: &str = "tar";
/// Where a backup is assembled before it is renamed into place.
const WORK_PREFIX: &str = ".work-";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot back up the data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot snapshot the database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the backup stopped: {0}")]
    Join(String),
}

/// A finished backup, as its sidecar records it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupInfo {
    /// The backup's id: its UTC time, e.g. `20261203T081500.123Z`.
    pub id: String,
    /// When it was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The archive's size in bytes.
    pub size: u64,
    /// The archive's SHA-256 (lowercase hex).
    pub sha256: String,
    /// The databases it holds.
    pub databases: Vec<String>,
    /// How many blob files it holds.
    pub blobs: u64,
    /// The data directory's other files it holds (the instance key).
    pub files: Vec<String>,
    /// The version of Toolshed that wrote it.
    pub toolshed_version: String,
    /// Where its sealed copy is (`TOOLSHED_BACKUP_REMOTE`), once uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Why the upload failed (the backup itself stands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_error: Option<String>,
}

/// What a caller learns of a backup it asked for, or of one in the list: the state, and
/// for a finished one what its record says.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct BackupStatus {
    pub id: String,
    /// `running`, `done` or `failed`.
    pub state: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The archive's size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The archive's SHA-256 (lowercase hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub databases: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blobs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toolshed_version: Option<String>,
    /// Where its sealed off-machine copy is, once uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Why the upload of the off-machine copy failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_error: Option<String>,
}

impl BackupStatus {
    fn done(info: BackupInfo) -> BackupStatus {
        BackupStatus {
            id: info.id,
            state: "done",
            error: None,
            created_at: Some(info.created_at),
            size: Some(info.size),
            sha256: Some(info.sha256),
            databases: Some(info.databases),
            blobs: Some(info.blobs),
            files: Some(info.files),
            toolshed_version: Some(info.toolshed_version),
            remote: info.remote,
            remote_error: info.remote_error,
        }
    }

    /// A backup that is being written.
    pub fn running(id: String) -> BackupStatus {
        BackupStatus {
            id,
            state: "running",
            ..BackupStatus::default()
        }
    }
}

/// Backups that are not finished: the one running and any waiting for it, in order, and
/// those that failed since the start.
#[derive(Debug, Default)]
struct Progress {
    running: Vec<String>,
    failed: Vec<(String, String)>,
}

/// The backups of one data directory; cheap to clone.
#[derive(Clone)]
pub struct Backups {
    data_dir: Arc<Path>,
    keep: usize,
    progress: Arc<Mutex<Progress>>,
    /// One backup at a time: two would double the disk and I/O for the same state.
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
    /// Where each backup is also sealed to, if anywhere.
    remote: Option<remote::Remote>,
}

/// A backup id for `now`: its UTC time to the millisecond, so ids sort as backups were taken.
fn new_id(now: Timestamp) -> String {
    now.strftime("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// Whether `text` is a backup id (and so safe as a file name).
pub fn valid_id(text: &str) -> bool {
    text.len() == 20
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'T' | b'Z' | b'.'))
}

impl Backups {
    /// The backups of `data_dir`, each also sealed to `remote` when given; leftovers of a
    /// backup a crash interrupted are removed.
    pub fn open(
        data_dir: &Path,
        keep: usize,
        remote: Option<remote::Remote>,
    ) -> std::io::Result<Backups> {
        let dir = data_dir.join(BACKUPS_DIR);
        std::fs::create_dir_all(&dir)?;
        // Archives hold the instance key: the owner's alone.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        for entry in std::fs::read_dir(&dir)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(WORK_PREFIX) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(Backups {
            data_dir: Arc::from(data_dir),
            keep: keep.max(1),
            progress: Arc::default(),
            one_at_a_time: Arc::default(),
            remote,
        })
    }

    fn dir(&self) -> PathBuf {
        self.data_dir.join(BACKUPS_DIR)
    }

    /// Where the archive of `id` is (whether or not it exists).
    pub fn archive_path(&self, id: &str) -> PathBuf {
        self.dir().join(format!("{id}.{ARCHIVE_EXT}"))
    }

    fn sidecar_path(&self, id: &str) -> PathBuf {
        self.dir().join(format!("{id}.json"))
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a backup in the background and answers its id at once; while one is running,
    /// answers that one's id instead of starting another.
    pub fn start(&self) -> String {
        let id = {
            let mut progress = self.progress();
            if let Some(running) = progress.running.first() {
                return running.clone();
            }
            let id = new_id(Timestamp::now());
            progress.running.push(id.clone());
            id
        };
        let backups = self.clone();
        let started = id.clone();
        tokio::spawn(async move {
            if let Err(e) = backups.launch(started).await {
                tracing::error!(error = %e, "backup failed");
            }
        });
        id
    }

    /// Takes a backup (after one that is running) and waits for it: a scheduled backup.
    /// The work runs on a task of its own, so a caller that stops waiting (a task's time
    /// limit) does not cut a backup off half-way.
    pub async fn take(&self) -> Result<BackupInfo, BackupError> {
        let id = new_id(Timestamp::now());
        self.progress().running.push(id.clone());
        let backups = self.clone();
        tokio::spawn(async move { backups.launch(id).await })
            .await
            .map_err(|e| BackupError::Join(e.to_string()))?
    }

    async fn launch(&self, id: String) -> Result<BackupInfo, BackupError> {
        let _turn = self.one_at_a_time.lock().await;
        self.run(id).await
    }

    async fn run(&self, id: String) -> Result<BackupInfo, BackupError> {
        let backups = self.clone();
        let work_id = id.clone();
        let outcome = tokio::task::spawn_blocking(move || backups.write_backup(&work_id))
            .await
            .map_err(|e| BackupError::Join(e.to_string()))
            .and_then(|outcome| outcome);
        // Still `running` while its copy goes up: done means done everywhere.
        let outcome = match (outcome, &self.remote) {
            (Ok(info), Some(remote)) => {
                let info = self.send_off(remote, info).await;
                self.send_pending(remote, &info.id).await;
                Ok(info)
            }
            (outcome, _) => outcome,
        };
        // Still `running` while the window is trimmed: done means nothing is left to do.
        if outcome.is_ok() {
            self.prune().await;
        }
        {
            let mut progress = self.progress();
            progress.running.retain(|running| running != &id);
            match &outcome {
                Ok(info) => {
                    tracing::info!(id = %info.id, size = info.size, blobs = info.blobs, "backup taken");
                    progress.failed.retain(|(failed, _)| failed != &id);
                }
                Err(e) => progress.failed.push((id, e.to_string())),
            }
        }
        outcome
    }

    /// Sends the kept backups whose upload failed before (the bucket was down, say), so
    /// that a passing outage loses no off-machine copy.
    async fn send_pending(&self, remote: &remote::Remote, current: &str) {
        for info in self.finished().await {
            if info.remote.is_none() && info.id != current {
                tracing::info!(id = %info.id, "sending a backup whose upload failed before");
                self.send_off(remote, info).await;
            }
        }
    }

    /// Uploads a finished backup's sealed copy and records the outcome in its sidecar.
    async fn send_off(&self, remote: &remote::Remote, mut info: BackupInfo) -> BackupInfo {
        info.remote = Some(remote.location(&info.id));
        match remote.upload(&self.archive_path(&info.id), &info).await {
            Ok(()) => {
                tracing::info!(id = %info.id, remote = %remote.location(&info.id), "backup sent off");
                info.remote_error = None;
            }
            Err(e) => {
                tracing::error!(id = %info.id, error = %e, "the backup's off-machine copy failed");
                info.remote = None;
                info.remote_error = Some(e.to_string());
            }
        }
        let sidecar = self.sidecar_path(&info.id);
        let written = serde_json::to_vec_pretty(&info)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                let tmp = sidecar.with_extension("json.tmp");
                std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &sidecar))
            });
        if let Err(e) = written {
            tracing::warn!(id = %info.id, error = %e, "cannot record the upload");
        }
        info
    }

    fn write_backup(&self, id: &str) -> Result<BackupInfo, BackupError> {
        let work = self.dir().join(format!("{WORK_PREFIX}{id}"));
        std::fs::create_dir_all(&work)?;
        let outcome = self.assemble(id, &work);
        remove_gently(&work.join(DB_FILE));
        let _ = std::fs::remove_dir_all(&work);
        if outcome.is_err() {
            let _ = std::fs::remove_file(self.archive_path(id));
        }
        outcome
    }

    fn assemble(&self, id: &str, work: &Path) -> Result<BackupInfo, BackupError> {
        let created_at = Timestamp::now()
            .round(Unit::Millisecond)
            .map_err(std::io::Error::other)?
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let snapshot = work.join(DB_FILE);
        snapshot_database(&self.data_dir.join(DB_FILE), &snapshot)?;

        let partial = work.join(format!("{id}.{ARCHIVE_EXT}"));
        let mut archive = ArchiveWriter::create(&partial)?;
        archive.add_file(&snapshot, DB_FILE)?;
        let mut blobs = 0;
        for (path, name) in blob_files(&self.data_dir.join(BLOBS_DIR))? {
            if archive.add_file(&path, &name)? {
                blobs += 1;
            }
        }
        let mut files = Vec::new();
        for (path, name) in other_files(&self.data_dir)? {
            if archive.add_file(&path, &name)? {
                files.push(name);
            }
        }
        let written = archive.finish(&created_at, env!("CARGO_PKG_VERSION"))?;
        let info = BackupInfo {
            id: id.to_owned(),
            created_at,
            size: written.size,
            sha256: written.sha256,
            databases: vec![DB_FILE.to_owned()],
            blobs,
            files,
            toolshed_version: env!("CARGO_PKG_VERSION").to_owned(),
            remote: None,
            remote_error: None,
        };
        std::fs::rename(&partial, self.archive_path(id))?;
        let sidecar = serde_json::to_vec_pretty(&info).map_err(std::io::Error::other)?;
        let sidecar_tmp = work.join("sidecar.json");
        std::fs::write(&sidecar_tmp, sidecar)?;
        std::fs::rename(&sidecar_tmp, self.sidecar_path(id))?;
        Ok(info)
    }

    /// The finished backups, oldest first.
    pub async fn finished(&self) -> Vec<BackupInfo> {
        let dir = self.dir();
        tokio::task::spawn_blocking(move || read_sidecars(&dir))
            .await
            .unwrap_or_default()
    }

    /// Every backup: the finished ones, then one running and those that failed.
    pub async fn list(&self) -> Vec<BackupStatus> {
        let finished = self.finished().await;
        let progress = self.progress();
        let mut list: Vec<BackupStatus> = finished
            .into_iter()
            .filter(|info| !progress.running.contains(&info.id))
            .map(BackupStatus::done)
            .collect();
        list.extend(progress.running.iter().cloned().map(BackupStatus::running));
        list.extend(progress.failed.iter().map(|(id, error)| BackupStatus {
            id: id.clone(),
            state: "failed",
            error: Some(error.clone()),
            ..BackupStatus::default()
        }));
        list
    }

    /// Backups that failed since the start.
    pub fn failed_count(&self) -> usize {
        self.progress().failed.len()
    }

    /// Whether backups are also sent to a bucket.
    pub fn has_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// What became of backup `id`, if it is known.
    pub async fn status(&self, id: &str) -> Option<BackupStatus> {
        self.list().await.into_iter().find(|status| status.id == id)
    }

    /// Removes a finished backup; `false` when there was none by that id.
    pub async fn delete(&self, id: &str) -> std::io::Result<bool> {
        let archive = self.archive_path(id);
        let sidecar = self.sidecar_path(id);
        tokio::task::spawn_blocking(move || {
            // The sidecar first: without it the backup is no longer listed.
            let listed = remove_if_present(&sidecar)?;
            let stored = remove_if_present(&archive)?;
            Ok(listed || stored)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Removes the oldest finished backups beyond the window, here and in the bucket.
    async fn prune(&self) {
        let finished = self.finished().await;
        let excess = finished.len().saturating_sub(self.keep);
        for old in &finished[..excess] {
            match self.delete(&old.id).await {
                Ok(_) => tracing::info!(id = %old.id, "old backup removed"),
                Err(e) => tracing::warn!(id = %old.id, error = %e, "cannot remove an old backup"),
            }
        }
        let Some(remote) = &self.remote else {
            return;
        };
        let sent = match remote.list().await {
            Ok(sent) => sent,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the backups in the bucket");
                return;
            }
        };
        let excess = sent.len().saturating_sub(self.keep);
        for old in &sent[..excess] {
            match remote.delete(&old.id).await {
                Ok(()) => tracing::info!(id = %old.id, "old backup removed from the bucket"),
                Err(e) => {
                    tracing::warn!(id = %old.id, error = %e, "cannot remove an old backup from the bucket")
                }
            }
        }
    }
}

/// Frees a large file a slice at a time before removing it: unlinking the whole snapshot at
/// once held the file system's journal long enough to stall the store's commits
/// (docs/PERFORMANCE.md, "Backups").
fn remove_gently(path: &Path) {
    const SLICE: u64 = 32 << 20;
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(path)
        && let Ok(meta) = file.metadata()
    {
        let mut len = meta.len();
        while len > SLICE {
            len -= SLICE;
            if file.set_len(len).is_err() {
                break;
            }
        }
    }
    let _ = std::fs::remove_file(path);
}

fn remove_if_present(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Copies the database at `source` into `target` as one consistent state: `VACUUM INTO`
/// runs in a read transaction of its own connection, so writers go on meanwhile.
fn snapshot_database(source: &Path, target: &Path) -> Result<(), BackupError> {
    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let target = target
        .to_str()
        .ok_or_else(|| std::io::Error::other("the backup path is not UTF-8"))?;
    conn.execute("VACUUM INTO ?1", [target])?;
    Ok(())
}

/// The blob files under `dir` as (path, name in the archive), in name order.
fn blob_files(dir: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    let Ok(folders) = std::fs::read_dir(dir) else {
        return Ok(found);
    };
    for folder in folders.flatten() {
        let folder_name = folder.file_name().to_string_lossy().into_owned();
        if folder_name.len() != 2 || !folder.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(folder.path())?.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if crate::storage::blobs::BlobId::parse(&name).is_some() {
                found.push((file.path(), format!("{BLOBS_DIR}/{folder_name}/{name}")));
            }
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

/// The data directory's own files besides the database, the lock and the folders (the
/// instance key): as (path, name).
fn other_files(data_dir: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(data_dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && restore::is_other_file(&name) {
            found.push((entry.path(), name));
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

/// The finished backups kept in `data_dir`, oldest first (without opening the store: for
/// the command line, beside a running server).
pub fn finished_in(data_dir: &Path) -> Vec<BackupInfo> {
    read_sidecars(&data_dir.join(BACKUPS_DIR))
}

/// The finished backups in `dir`, oldest first.
fn read_sidecars(dir: &Path) -> Vec<BackupInfo> {
    let mut found: Vec<BackupInfo> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|entry| std::fs::read(entry.path()).ok())
        .filter_map(|bytes| serde_json::from_slice::<BackupInfo>(&bytes).ok())
        .filter(|info| valid_id(&info.id))
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_are_safe_file_names() {
        let early = new_id(Timestamp::from_millisecond(1_700_000_000_000).expect("time"));
        let late = new_id(Timestamp::from_millisecond(1_700_000_000_001).expect("time"));
        assert_eq!(early, "20231114T221320.000Z");
        assert!(early < late);
        assert!(valid_id(&early));
        for bad in [
            "../../etc/passwd00",
            "20231114T221320.000",
            "x".repeat(20).as_str(),
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
