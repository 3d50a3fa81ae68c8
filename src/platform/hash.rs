//! SHA-256 in hex: keys for cached answers (the hash of a normalized request, so two
//! requests share an entry only when they are the same request), and a file's hash. Stable
//! across builds, platforms and restarts (std's hasher is not): keys written today must be
//! found by tomorrow's binary.

use sha2::{Digest, Sha256};

/// The SHA-256 of the file at `path`, read a piece at a time (an executable: the one
/// running, for attestation, or a release's).
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher.finalize().into())
}

/// 64 lower-case hex digits of the SHA-256 of `text`.
pub fn cache_key(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_sha256_and_separates_inputs() {
        assert_eq!(
            cache_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(cache_key("x"), cache_key("x!"));
    }
}
