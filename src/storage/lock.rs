//! One writer per data directory. Two servers on one directory would each hand out the
//! same versionstamps for different writes, and an atomic check against a stale value would
//! pass: a write would be silently lost. So the store takes an exclusive lock (`flock`) on a
//! lock file in the directory for as long as it is open, and writes its pid there so that a
//! second server can say who holds it. The kernel releases the lock when the process ends,
//! however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::storage::error::{Result, StorageError};

/// The lock file inside the data directory.
pub const LOCK_FILE: &str = "toolshed.lock";

/// Held while the store is open; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock on `data_dir`, or fails naming the directory and the holder's pid.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock> {
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::Internal(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_owned()
                } else {
                    format!("another process (pid {holder})")
                };
                return Err(StorageError::Locked(format!(
                    "the data directory {} is in use by {who}; one server per data directory",
                    data_dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(StorageError::Internal(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        // Ours now: say who holds it.
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.flush());
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write the pid into the lock file");
        }
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_directory_is_refused_naming_the_holder_until_the_first_goes() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let first = DataDirLock::acquire(dir.path()).expect("first lock");
        let refused = DataDirLock::acquire(dir.path()).expect_err("second lock");
        let message = refused.to_string();
        assert!(
            message.contains(&dir.path().display().to_string())
                && message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again");
    }
}
