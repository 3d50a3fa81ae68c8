//! Restoring a backup archive into a data directory no server holds.
//!
//! Nothing is replaced until the whole archive has checked out: it is unpacked beside the
//! data directory, every file's SHA-256 and size must match the manifest (and a blob's its
//! name), the archive's own SHA-256 must match the one its sidecar or the caller gives,
//! and SQLite's `integrity_check` must pass. Only then is the current directory renamed
//! to `<dir>.before-restore-<time>` and the unpacked one renamed into its place; the
//! backups folder moves across, since backups are not part of the state being rolled back.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags};

use super::archive::{FORMAT, FileEntry, Hashing, MANIFEST, Manifest};
use super::{BACKUPS_DIR, BackupInfo};
use crate::storage::DB_FILE;
use crate::storage::StorageError;
use crate::storage::blobs::{BLOBS_DIR, BlobId};
use crate::storage::lock::{DataDirLock, LOCK_FILE};

/// The largest manifest read (it lists every blob: ~150 bytes each).
const MAX_MANIFEST_BYTES: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A server holds the data directory.
    #[error("{0}; stop it before restoring")]
    Locked(String),
    /// The archive is not a sound backup; nothing was changed.
    #[error("the archive does not check out, nothing was changed: {0}")]
    Invalid(String),
    #[error("cannot restore: {0}")]
    Io(#[from] io::Error),
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// Files restored.
    pub files: usize,
    /// Bytes restored.
    pub bytes: u64,
    /// The archive's SHA-256.
    pub sha256: String,
    /// Whether that was checked against a record (`--sha256` or the backup's `.json`); the
    /// files were checked against the manifest either way.
    pub sha256_checked: bool,
    /// Where the data directory that was replaced now is.
    pub previous: Option<PathBuf>,
}

/// Whether a top-level file of the data directory belongs in a backup: not the database
/// (copied as a snapshot) nor its WAL, not the lock, nothing hidden.
pub fn is_other_file(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.starts_with(DB_FILE)
        && name != LOCK_FILE
        && name != BLOBS_DIR
        && name != BACKUPS_DIR
        && name != MANIFEST
        && !name.contains(['/', '\\'])
}

/// Whether `path` (from an archive) may be restored: the database, a blob under its hash,
/// or one of the directory's other files. Anything else (`..`, absolute paths, unknown
/// folders) is refused.
fn allowed(path: &str) -> bool {
    if path == DB_FILE || is_other_file(path) {
        return true;
    }
    let parts: Vec<&str> = path.split('/').collect();
    matches!(parts.as_slice(), [BLOBS_DIR, folder, name]
        if BlobId::parse(name).is_some() && name.get(..2) == Some(*folder))
}

/// The archive's entry path as `/`-separated text, if it is plain (no `..`, not absolute).
fn plain_path(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

/// Restores `archive` into `data_dir`. `expected_sha256` is checked against the archive;
/// without it, the sidecar `<archive>.json` beside the archive supplies it when present.
pub fn restore(
    archive: &Path,
    data_dir: &Path,
    expected_sha256: Option<&str>,
) -> Result<Restored, RestoreError> {
    let name = data_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| RestoreError::Invalid(format!("{} names no directory", data_dir.display())))?
        .to_owned();
    let parent = data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let expected = match expected_sha256 {
        Some(sha) => Some(sha.trim().to_ascii_lowercase()),
        None => sidecar_sha256(archive),
    };
    // Held until the swap is done: no server may open the directory meanwhile.
    let _lock = if data_dir.exists() {
        Some(DataDirLock::acquire(data_dir).map_err(|e| match e {
            StorageError::Locked(message) => RestoreError::Locked(message),
            other => RestoreError::Io(io::Error::other(other.to_string())),
        })?)
    } else {
        None
    };
    let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let staging = parent.join(format!(".{name}.restoring-{stamp}"));
    // A fresh folder, the owner's alone (it will hold the instance key).
    std::fs::DirBuilder::new().mode(0o700).create(&staging)?;
    let unpacked = unpack(archive, &staging, expected.as_deref());
    let (files, bytes, sha256) = match unpacked {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };

    let previous = if data_dir.exists() {
        let previous = parent.join(format!("{name}.before-restore-{stamp}"));
        if let Err(e) = std::fs::rename(data_dir, &previous) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e.into());
        }
        Some(previous)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&staging, data_dir) {
        if let Some(previous) = &previous {
            let _ = std::fs::rename(previous, data_dir);
        }
        return Err(e.into());
    }
    if let Some(previous) = &previous {
        let backups = previous.join(BACKUPS_DIR);
        if backups.is_dir() {
            std::fs::rename(&backups, data_dir.join(BACKUPS_DIR))?;
        }
    }
    Ok(Restored {
        files,
        bytes,
        sha256,
        sha256_checked: expected.is_some(),
        previous,
    })
}

/// The SHA-256 the sidecar beside `archive` records, if there is one.
fn sidecar_sha256(archive: &Path) -> Option<String> {
    let bytes = std::fs::read(archive.with_extension("json")).ok()?;
    serde_json::from_slice::<BackupInfo>(&bytes)
        .ok()
        .map(|info| info.sha256)
}

/// Unpacks and checks the archive into `staging`: (files, bytes, archive SHA-256).
fn unpack(
    archive: &Path,
    staging: &Path,
    expected: Option<&str>,
) -> Result<(usize, u64, String), RestoreError> {
    let invalid = RestoreError::Invalid;
    let file = File::open(archive)
        .map_err(|e| invalid(format!("cannot open {}: {e}", archive.display())))?;
    let mut tar = tar::Archive::new(Hashing::new(BufReader::with_capacity(1 << 20, file)));
    let mut found: BTreeMap<String, FileEntry> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    let entries = tar
        .entries()
        .map_err(|e| invalid(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(format!("a damaged entry: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| invalid(format!("an entry without a usable name: {e}")))?
            .into_owned();
        let path = plain_path(&raw).ok_or_else(|| {
            invalid(format!(
                "an entry outside the data directory: {}",
                raw.display()
            ))
        })?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(invalid(format!("{path} is not a regular file")));
        }
        if path == MANIFEST {
            if entry.size() > MAX_MANIFEST_BYTES {
                return Err(invalid("the manifest is too large".into()));
            }
            let read: Manifest = serde_json::from_reader(&mut entry)
                .map_err(|e| invalid(format!("the manifest is unreadable: {e}")))?;
            manifest = Some(read);
            continue;
        }
        if !allowed(&path) {
            return Err(invalid(format!("{path} has no place in a data directory")));
        }
        if found.contains_key(&path) {
            return Err(invalid(format!("{path} is in the archive twice")));
        }
        let target = staging.join(&path);
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder)?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)?;
        let mut out = Hashing::new(file);
        io::copy(&mut entry, &mut out).map_err(|e| invalid(format!("{path}: {e}")))?;
        let (out, size, sha256) = out.finish();
        if let Ok(mtime) = entry.header().mtime() {
            let _ = out.set_modified(UNIX_EPOCH + Duration::from_secs(mtime));
        }
        out.sync_all()?;
        found.insert(path.clone(), FileEntry { path, size, sha256 });
    }
    // The bytes after the last entry (the tar trailer) count toward the archive's hash.
    let mut reader = tar.into_inner();
    io::copy(&mut reader, &mut io::sink())?;
    let (_, _, sha256) = reader.finish();
    if let Some(expected) = expected
        && expected != sha256
    {
        return Err(invalid(format!(
            "its SHA-256 is {sha256}, the backup's record says {expected}"
        )));
    }
    let manifest =
        manifest.ok_or_else(|| invalid("it has no manifest.json: not a Toolshed backup".into()))?;
    if manifest.format != FORMAT {
        return Err(invalid(format!(
            "it is in backup format {}, this build reads format {FORMAT}",
            manifest.format
        )));
    }
    check_against_manifest(&found, &manifest.files)?;
    if !found.contains_key(DB_FILE) {
        return Err(invalid(format!("it holds no {DB_FILE}")));
    }
    check_integrity(&staging.join(DB_FILE))?;
    let bytes = found.values().map(|f| f.size).sum();
    Ok((found.len(), bytes, sha256))
}

fn check_against_manifest(
    found: &BTreeMap<String, FileEntry>,
    listed: &[FileEntry],
) -> Result<(), RestoreError> {
    let invalid = RestoreError::Invalid;
    for entry in listed {
        match found.get(&entry.path) {
            None => {
                return Err(invalid(format!(
                    "{} is in the manifest but missing",
                    entry.path
                )));
            }
            Some(got) if got != entry => {
                return Err(invalid(format!(
                    "{} has SHA-256 {} ({} bytes), the manifest says {} ({} bytes)",
                    entry.path, got.sha256, got.size, entry.sha256, entry.size
                )));
            }
            Some(_) => {}
        }
    }
    if found.len() != listed.len() {
        let extra = found
            .keys()
            .find(|path| !listed.iter().any(|e| &e.path == *path))
            .cloned()
            .unwrap_or_default();
        return Err(invalid(format!("{extra} is not in the manifest")));
    }
    for entry in found.values() {
        if let Some(name) = entry.path.strip_prefix(BLOBS_DIR)
            && !name.ends_with(&entry.sha256)
        {
            return Err(invalid(format!(
                "blob {} does not hold its bytes",
                entry.path
            )));
        }
    }
    Ok(())
}

/// SQLite's own check of every page, index and constraint.
fn check_integrity(db: &Path) -> Result<(), RestoreError> {
    let invalid = RestoreError::Invalid;
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| invalid(format!("{DB_FILE} does not open: {e}")))?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(|e| invalid(format!("{DB_FILE} fails its integrity check: {e}")))?;
    if verdict != "ok" {
        return Err(invalid(format!(
            "{DB_FILE} fails its integrity check: {verdict}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_data_directory_layout_is_restored() {
        for ok in [
            "toolshed.db",
            "instance.key",
            "blobs/2c/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        ] {
            assert!(allowed(ok), "{ok}");
        }
        for bad in [
            "toolshed.db-wal",
            "toolshed.lock",
            ".hidden",
            "backups",
            "blobs/00/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "blobs/2c/notahash",
            "other/file",
        ] {
            assert!(!allowed(bad), "{bad}");
        }
        assert_eq!(plain_path(Path::new("../etc/passwd")), None);
        assert_eq!(plain_path(Path::new("/etc/passwd")), None);
        assert_eq!(
            plain_path(Path::new("blobs/ab/cd")).as_deref(),
            Some("blobs/ab/cd")
        );
    }
}
