//! `toolshed restore`: puts a backup archive in place of a stopped server's data directory
//! (`storage::backup::restore` checks it first).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::storage::backup::{self, BACKUPS_DIR};

/// Restores `from` (an archive file, or the id of a backup in the data directory's
/// `backups/`) into `data_dir`.
pub fn restore(from: &str, data_dir: &Path, sha256: Option<&str>) -> ExitCode {
    let archive = if backup::valid_id(from) && !Path::new(from).exists() {
        data_dir.join(BACKUPS_DIR).join(format!("{from}.tar"))
    } else {
        PathBuf::from(from)
    };
    if !archive.is_file() {
        eprintln!(
            "toolshed: no backup archive at {} (give a .tar file or a backup id)",
            archive.display()
        );
        return ExitCode::from(1);
    }
    match backup::restore::restore(&archive, data_dir, sha256) {
        Ok(restored) => {
            println!(
                "restored {} files ({} bytes, archive SHA-256 {}) into {}",
                restored.files,
                restored.bytes,
                restored.sha256,
                data_dir.display()
            );
            if let Some(previous) = restored.previous {
                println!(
                    "the data directory it replaced is at {}",
                    previous.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("toolshed: {e}");
            ExitCode::from(1)
        }
    }
}
