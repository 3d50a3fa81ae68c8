//! The instance's own Ed25519 key (a minisign key pair), made on first start in the data
//! directory. It signs attestation statements, so a verifier that pinned it (`attest verify
//! --instance-key`) can tell this instance's answers from another's; the secret file is
//! readable by its owner only.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use minisign::{KeyPair, PublicKey, SecretKey};

pub const SECRET_FILE: &str = "instance.key";
pub const PUBLIC_FILE: &str = "instance.pub";

pub struct InstanceKey {
    pub secret: SecretKey,
    pub public: PublicKey,
    /// The 32 raw Ed25519 bytes.
    pub raw_public: [u8; 32],
}

/// Loads the key from `data_dir`, or makes and stores one when there is none; `instance.pub`
/// is rewritten whenever it does not hold the key's public half (say, after a rotation).
pub fn load_or_create(data_dir: &Path) -> Result<InstanceKey, String> {
    let secret_path = data_dir.join(SECRET_FILE);
    let secret = if secret_path.exists() {
        owner_only(&secret_path)?;
        let text = fs::read_to_string(&secret_path)
            .map_err(|e| format!("cannot read {}: {e}", secret_path.display()))?;
        minisign::SecretKeyBox::from_string(&text)
            .and_then(SecretKey::from_unencrypted_box)
            .map_err(|e| format!("{} is not an instance key: {e}", secret_path.display()))?
    } else {
        let pair = KeyPair::generate_unencrypted_keypair()
            .map_err(|e| format!("cannot make an instance key: {e}"))?;
        let text = pair
            .sk
            .to_box(Some("toolshed instance key"))
            .map_err(|e| format!("cannot encode the instance key: {e}"))?
            .into_string();
        write_atomically(&secret_path, &text, 0o600)?;
        pair.sk
    };
    let public = PublicKey::from_secret_key(&secret)
        .map_err(|e| format!("{} holds no usable key: {e}", secret_path.display()))?;
    let public_path = data_dir.join(PUBLIC_FILE);
    let text = public
        .to_box()
        .map_err(|e| format!("cannot encode the instance public key: {e}"))?
        .into_string();
    if fs::read_to_string(&public_path).ok().as_deref() != Some(text.as_str()) {
        write_atomically(&public_path, &text, 0o644)?;
    }
    // The public key's bytes are "Ed" ‖ key id (8) ‖ the Ed25519 key (32).
    let raw_public = public
        .to_bytes()
        .get(10..42)
        .and_then(|s| <[u8; 32]>::try_from(s).ok())
        .ok_or("the instance public key has an unexpected layout")?;
    Ok(InstanceKey {
        secret,
        public,
        raw_public,
    })
}

/// A secret key others can read is made owner-only again, and said so.
fn owner_only(path: &Path) -> Result<(), String> {
    let mode = fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|e| {
            format!(
                "{} is readable by others and cannot be made owner-only: {e}",
                path.display()
            )
        })?;
        tracing::warn!(file = %path.display(), mode = format!("{:o}", mode & 0o777), "the instance key was readable by others: made owner-only (0600)");
    }
    Ok(())
}

/// Writes `text` to a new file beside `path` with `mode` from its creation on, then renames
/// it into place: a crash leaves the old file or the new one, never half of one.
fn write_atomically(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    let partial = path.with_extension("partial");
    let _ = fs::remove_file(&partial);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&partial, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_owner_only_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = load_or_create(dir.path()).expect("created");
        let mode = fs::metadata(dir.path().join(SECRET_FILE))
            .expect("secret file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(dir.path()).expect("loaded");
        assert_eq!(first.raw_public, again.raw_public);
        let stored = fs::read_to_string(dir.path().join(PUBLIC_FILE)).expect("public file");
        assert!(stored.contains(&first.public.to_base64()));
    }

    #[test]
    fn a_damaged_key_file_stops_the_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(
            dir.path().join(SECRET_FILE),
            "untrusted comment: x\nnot base64\n",
        )
        .expect("write");
        let err = load_or_create(dir.path()).err().expect("refused");
        assert!(err.contains(SECRET_FILE), "{err}");
    }

    #[test]
    fn a_stale_public_file_and_loose_permissions_are_put_right() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = load_or_create(dir.path()).expect("created");
        fs::write(
            dir.path().join(PUBLIC_FILE),
            "untrusted comment: old\nRWQold\n",
        )
        .expect("write");
        let secret = dir.path().join(SECRET_FILE);
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).expect("chmod");
        let again = load_or_create(dir.path()).expect("loaded");
        assert_eq!(key.raw_public, again.raw_public);
        let stored = fs::read_to_string(dir.path().join(PUBLIC_FILE)).expect("public file");
        assert!(stored.contains(&key.public.to_base64()), "{stored}");
        let mode = fs::metadata(&secret).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
