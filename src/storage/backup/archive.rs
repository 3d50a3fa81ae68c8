//! The backup archive: one tar holding `toolshed.db` (a consistent snapshot), the blob files
//! and the data directory's other files, then `manifest.json` naming each with its size and
//! SHA-256. The manifest comes last because its hashes are taken while the files stream
//! into the archive: every byte is read once.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's name inside the archive.
pub const MANIFEST: &str = "manifest.json";
/// The archive layout this build writes and reads.
pub const FORMAT: u32 = 1;

/// What an archive holds, written as its last entry.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub toolshed_version: String,
    pub files: Vec<FileEntry>,
}

/// One file of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the data directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// A reader or writer that hashes and counts the bytes going through it.
pub struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    count: u64,
}

impl<T> Hashing<T> {
    pub fn new(inner: T) -> Hashing<T> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The bytes seen, and their SHA-256 in lowercase hex.
    pub fn finish(self) -> (T, u64, String) {
        (
            self.inner,
            self.count,
            format!("{:x}", self.hasher.finalize()),
        )
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes written between two flushes to disk.
const SYNC_EVERY: u64 = 16 << 20;

/// The archive file, flushed to disk every [`SYNC_EVERY`] bytes: a gigabyte left dirty in
/// the page cache made the store's own commits wait behind its writeback (a write stalled
/// for 200 ms; docs/PERFORMANCE.md, "Backups").
struct SteadyFile {
    file: File,
    unsynced: u64,
}

impl Write for SteadyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n as u64;
        if self.unsynced >= SYNC_EVERY {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// An archive being written.
pub struct ArchiveWriter {
    builder: tar::Builder<Hashing<BufWriter<SteadyFile>>>,
    files: Vec<FileEntry>,
}

/// A finished archive: its size and SHA-256.
pub struct Written {
    pub size: u64,
    pub sha256: String,
}

impl ArchiveWriter {
    pub fn create(path: &Path) -> io::Result<ArchiveWriter> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        let file = SteadyFile { file, unsynced: 0 };
        Ok(ArchiveWriter {
            builder: tar::Builder::new(Hashing::new(BufWriter::with_capacity(1 << 20, file))),
            files: Vec::new(),
        })
    }

    /// Adds the file at `source` as `name`, keeping its modification time (blobs are swept
    /// by age). A file that is gone (a blob swept meanwhile) is skipped: `Ok(false)`.
    pub fn add_file(&mut self, source: &Path, name: &str) -> io::Result<bool> {
        let file = match File::open(source) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(meta.len());
        header.set_mode(0o600);
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        header.set_mtime(mtime);
        // `take`: a file that grew meanwhile must not overrun the size in its header.
        let mut reader = Hashing::new(file.take(meta.len()));
        self.builder.append_data(&mut header, name, &mut reader)?;
        let (_, size, sha256) = reader.finish();
        if size != meta.len() {
            return Err(io::Error::other(format!(
                "{} shrank while it was archived",
                source.display()
            )));
        }
        self.files.push(FileEntry {
            path: name.to_owned(),
            size,
            sha256,
        });
        Ok(true)
    }

    /// Writes the manifest and the tar trailer, and syncs the file to disk.
    pub fn finish(mut self, created_at: &str, toolshed_version: &str) -> io::Result<Written> {
        let manifest = Manifest {
            format: FORMAT,
            created_at: created_at.to_owned(),
            toolshed_version: toolshed_version.to_owned(),
            files: self.files,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        self.builder
            .append_data(&mut header, MANIFEST, json.as_slice())?;
        let hashing = self.builder.into_inner()?;
        let (writer, size, sha256) = hashing.finish();
        let steady = writer.into_inner().map_err(|e| e.into_error())?;
        steady.file.sync_all()?;
        Ok(Written { size, sha256 })
    }
}
