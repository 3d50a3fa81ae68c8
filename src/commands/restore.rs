//! `toolshed restore`: puts a backup archive in place of a stopped server's data directory
//! (`storage::backup::restore` checks it first); the archive may come from the bucket of
//! `TOOLSHED_BACKUP_REMOTE`. `--list` shows what there is to restore.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::env::Config;
use crate::storage::backup::remote::Remote;
use crate::storage::backup::{self, BACKUPS_DIR};

fn fail(message: &str) -> ExitCode {
    eprintln!("toolshed: {message}");
    ExitCode::from(1)
}

/// The bucket of the settings, if one is set.
fn remote(config: &Config) -> Result<Option<Remote>, String> {
    config
        .backup_remote_options()?
        .map(|options| Remote::new(&options).map_err(|e| e.to_string()))
        .transpose()
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Restores `from` (an archive file, or a backup id: kept in the data directory, else in
/// the bucket) into the configured data directory.
pub fn restore(from: &str, config: &Config, sha256: Option<&str>) -> ExitCode {
    let data_dir = &config.data_dir;
    let local = data_dir.join(BACKUPS_DIR).join(format!("{from}.tar"));
    let (archive, downloaded, expected) = if Path::new(from).is_file() {
        (PathBuf::from(from), false, sha256.map(str::to_owned))
    } else if backup::valid_id(from) && local.is_file() {
        (local, false, sha256.map(str::to_owned))
    } else if backup::valid_id(from) {
        match fetch_remote(from, config) {
            Ok((path, recorded)) => (path, true, sha256.map(str::to_owned).or(Some(recorded))),
            Err(message) => return fail(&message),
        }
    } else {
        return fail(&format!(
            "no backup archive at {from} (give a .tar file or a backup id)"
        ));
    };
    let outcome = backup::restore::restore(&archive, data_dir, expected.as_deref());
    if downloaded {
        let _ = std::fs::remove_file(&archive);
    }
    match outcome {
        Ok(restored) => {
            println!(
                "restored {} files ({} bytes, archive SHA-256 {}) into {}",
                restored.files,
                restored.bytes,
                restored.sha256,
                data_dir.display()
            );
            if !restored.sha256_checked {
                println!(
                    "note: no recorded SHA-256 for this archive (give --sha256, or keep its .json \
                     beside it): each file was checked against its manifest, the archive as a whole \
                     was not"
                );
            }
            if let Some(previous) = restored.previous {
                println!(
                    "the data directory it replaced is at {}",
                    previous.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Downloads and opens backup `id` from the bucket beside the data directory; the file and
/// the archive's recorded SHA-256.
fn fetch_remote(id: &str, config: &Config) -> Result<(PathBuf, String), String> {
    let Some(remote) = remote(config)? else {
        return Err(format!(
            "no backup {id} in {} and no TOOLSHED_BACKUP_REMOTE to look in",
            config.data_dir.join(BACKUPS_DIR).display()
        ));
    };
    let parent = config
        .data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let target = parent.join(format!(".toolshed-download-{id}.tar"));
    println!("downloading backup {id} from {}", remote.location(id));
    let fetched = runtime()?.block_on(remote.download(id, &target));
    match fetched {
        Ok(info) => Ok((target, info.sha256)),
        Err(e) => {
            let _ = std::fs::remove_file(&target);
            Err(format!("cannot fetch backup {id}: {e}"))
        }
    }
}

/// Prints the backups kept in the data directory and in the bucket.
pub fn list_backups(config: &Config) -> ExitCode {
    let dir = config.data_dir.join(BACKUPS_DIR);
    let local = backup::finished_in(&config.data_dir);
    for info in &local {
        println!(
            "{}\t{}\t{} bytes\there ({})",
            info.id,
            info.created_at,
            info.size,
            dir.display()
        );
    }
    match remote(config) {
        Ok(Some(remote)) => {
            match runtime().and_then(|r| r.block_on(remote.list()).map_err(|e| e.to_string())) {
                Ok(sent) => {
                    for info in &sent {
                        println!(
                            "{}\t{}\t{} bytes\t{}",
                            info.id,
                            info.created_at,
                            info.size,
                            remote.location(&info.id)
                        );
                    }
                }
                Err(e) => return fail(&format!("cannot list the bucket: {e}")),
            }
        }
        Ok(None) => {}
        Err(message) => return fail(&message),
    }
    ExitCode::SUCCESS
}
