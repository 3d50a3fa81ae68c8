//! What the attestation service keeps: the instance key, where configfs-tsm is, and the
//! executable's hash (computed on first use: hashing megabytes would slow every start).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::OnceCell;

use super::instance_key::InstanceKey;
use super::statement;

#[derive(Clone)]
pub struct Attestation(Arc<Inner>);

pub struct Inner {
    pub key: InstanceKey,
    pub key_sha256: [u8; 32],
    pub tsm_dir: PathBuf,
    binary_sha256: OnceCell<[u8; 32]>,
}

impl std::ops::Deref for Attestation {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Attestation {
    pub fn new(key: InstanceKey, tsm_dir: PathBuf) -> Attestation {
        Attestation(Arc::new(Inner {
            key_sha256: statement::instance_key_sha256(&key.raw_public),
            key,
            tsm_dir,
            binary_sha256: OnceCell::new(),
        }))
    }

    /// The SHA-256 of the executable this process runs: `/proc/self/exe` opens the very
    /// file that was started, even when an update has replaced the path since.
    pub async fn binary_sha256(&self) -> Result<[u8; 32], String> {
        self.binary_sha256
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(hash_running_executable)
                    .await
                    .map_err(|e| format!("hashing the executable stopped: {e}"))?
            })
            .await
            .copied()
    }
}

fn hash_running_executable() -> Result<[u8; 32], String> {
    let path = if cfg!(target_os = "linux") {
        PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().map_err(|e| format!("cannot find the executable: {e}"))?
    };
    crate::platform::hash::sha256_file(&path)
        .map_err(|e| format!("cannot read the executable {}: {e}", path.display()))
}
