//! Content-addressed blobs: files in `<data dir>/blobs/`, each named by the SHA-256 of its
//! bytes (two-hex-digit subfolders keep folders small). A blob is written to a temporary file
//! and renamed into place, so a crash never leaves half a blob under a real name; writing
//! the same bytes twice is one file. Blobs older than the maximum age are swept; a service
//! that keeps a blob's id elsewhere must treat a missing blob as never made.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// The folder inside the data directory.
pub const BLOBS_DIR: &str = "blobs";
/// Where blobs are written before they are renamed into place.
const TMP_DIR: &str = "tmp";

/// The id of a blob: the lowercase hex SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobId(String);

impl BlobId {
    /// An id as a caller wrote it, if it is one.
    pub fn parse(text: &str) -> Option<BlobId> {
        let valid = text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| BlobId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the blob is larger than {0} bytes")]
    TooLarge(usize),
    #[error("cannot write the blob: {0}")]
    Io(#[from] std::io::Error),
    #[error("the blob writer stopped: {0}")]
    Join(String),
}

/// The blob store of one data directory.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
    max_bytes: usize,
}

impl Blobs {
    /// The store under `data_dir`, created if missing; temporary files a crash left are removed.
    pub fn open(data_dir: &Path, max_bytes: usize) -> std::io::Result<Blobs> {
        let dir = data_dir.join(BLOBS_DIR);
        let tmp = dir.join(TMP_DIR);
        std::fs::create_dir_all(&tmp)?;
        for entry in std::fs::read_dir(&tmp)? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(Blobs { dir, max_bytes })
    }

    /// The largest blob.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Where the blob `id` lives (whether or not it exists).
    pub fn path(&self, id: &BlobId) -> PathBuf {
        self.dir.join(&id.0[..2]).join(&id.0)
    }

    /// Whether the blob is there.
    pub async fn exists(&self, id: &BlobId) -> bool {
        tokio::fs::try_exists(self.path(id)).await.unwrap_or(false)
    }

    /// Stores `bytes` and returns their id.
    pub async fn put(&self, bytes: bytes::Bytes) -> Result<BlobId, BlobError> {
        if bytes.len() > self.max_bytes {
            return Err(BlobError::TooLarge(self.max_bytes));
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.put_blocking(&bytes))
            .await
            .map_err(|e| BlobError::Join(e.to_string()))?
    }

    fn put_blocking(&self, bytes: &[u8]) -> Result<BlobId, BlobError> {
        let id = BlobId(format!("{:x}", Sha256::digest(bytes)));
        let path = self.path(&id);
        if path.exists() {
            // Same bytes: refresh its age instead of writing them again.
            let file = std::fs::File::options().append(true).open(&path)?;
            file.set_modified(SystemTime::now())?;
            return Ok(id);
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp =
            self.dir
                .join(TMP_DIR)
                .join(format!("{}-{}", id.0, uuid::Uuid::new_v4().simple()));
        let mut file = std::fs::File::create(&tmp)?;
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(id)
    }

    /// Removes blobs last written more than `max_age` ago; returns how many.
    pub async fn sweep(&self, max_age: Duration) -> usize {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || sweep_blocking(&dir, max_age))
            .await
            .unwrap_or(0)
    }
}

fn sweep_blocking(dir: &Path, max_age: Duration) -> usize {
    let Some(cutoff) = SystemTime::now().checked_sub(max_age) else {
        return 0;
    };
    let mut removed = 0;
    let Ok(folders) = std::fs::read_dir(dir) else {
        return 0;
    };
    for folder in folders.flatten() {
        if folder.file_name() == TMP_DIR {
            continue;
        }
        let Ok(files) = std::fs::read_dir(folder.path()) else {
            continue;
        };
        for file in files.flatten() {
            let old = file
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified < cutoff);
            if old && std::fs::remove_file(file.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_are_named_by_their_bytes_and_swept_by_age() {
        let dir = tempfile::tempdir().expect("dir");
        let blobs = Blobs::open(dir.path(), 16).expect("open");
        let id = blobs
            .put(bytes::Bytes::from_static(b"hello"))
            .await
            .expect("put");
        assert_eq!(
            id.as_str(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(std::fs::read(blobs.path(&id)).expect("read"), b"hello");
        assert_eq!(
            blobs
                .put(bytes::Bytes::from_static(b"hello"))
                .await
                .expect("again"),
            id
        );
        assert!(matches!(
            blobs.put(bytes::Bytes::from(vec![0; 17])).await,
            Err(BlobError::TooLarge(16))
        ));
        assert_eq!(blobs.sweep(Duration::from_secs(60)).await, 0);
        assert_eq!(blobs.sweep(Duration::ZERO).await, 1);
        assert!(!blobs.exists(&id).await);
        assert!(BlobId::parse("../etc/passwd").is_none());
        assert!(BlobId::parse(&"A".repeat(64)).is_none(), "lowercase only");
    }
}
