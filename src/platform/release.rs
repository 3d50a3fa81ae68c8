//! A release: an executable and its minisign signature, whose signed trusted comment names
//! the version (`toolshed:<version>`, as `toolshed sign` writes it when a binary signs
//! itself). Verifying one and comparing versions is what `toolshed update` (and a control
//! plane rolling out builds) needs.

use std::path::Path;

use minisign::PublicKey;
use semver::Version;

use crate::platform::signature::{self, Verified};

/// A release that checked out: its signer's key id, trusted comment and version.
#[derive(Debug)]
pub struct VerifiedRelease {
    pub verified: Verified,
    pub version: Version,
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Signature(#[from] signature::SignatureError),
    #[error(
        "the signed trusted comment names no version (a field toolshed:<version>): {comment:?}"
    )]
    NoVersion { comment: String },
    #[error("toolshed:{text} in the signed trusted comment is not a version: {reason}")]
    BadVersion { text: String, reason: String },
    #[error(
        "release {new} is older than the installed {installed}: a downgrade needs --allow-downgrade"
    )]
    Downgrade { new: Version, installed: Version },
}

/// The version a trusted comment names in its `toolshed:<version>` field.
pub fn version_in(comment: &str) -> Result<Version, ReleaseError> {
    let text = comment
        .split(['\t', ' '])
        .find_map(|field| field.strip_prefix("toolshed:"))
        .ok_or_else(|| ReleaseError::NoVersion {
            comment: comment.to_owned(),
        })?;
    Version::parse(text).map_err(|e| ReleaseError::BadVersion {
        text: text.to_owned(),
        reason: e.to_string(),
    })
}

/// Checks `file` against `signature_file` under `key` and reads the version it was signed as.
pub fn verify(
    key: &PublicKey,
    file: &Path,
    signature_file: &Path,
) -> Result<VerifiedRelease, ReleaseError> {
    let verified = signature::verify_file(key, file, signature_file)?;
    let version = version_in(&verified.trusted_comment)?;
    Ok(VerifiedRelease { verified, version })
}

/// Refuses moving from `installed` to an older `new` unless a downgrade is allowed.
pub fn check_upgrade(
    installed: &Version,
    new: &Version,
    allow_downgrade: bool,
) -> Result<(), ReleaseError> {
    if new < installed && !allow_downgrade {
        return Err(ReleaseError::Downgrade {
            new: new.clone(),
            installed: installed.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_the_signed_comment_and_compared_as_semver() {
        let comment = "timestamp:1\tfile:toolshed\thashed\ttoolshed:0.10.0\tcommit:abc";
        assert_eq!(
            version_in(comment).expect("version"),
            Version::new(0, 10, 0)
        );
        assert!(matches!(
            version_in("timestamp:1\tfile:toolshed"),
            Err(ReleaseError::NoVersion { .. })
        ));
        assert!(matches!(
            version_in("toolshed:latest"),
            Err(ReleaseError::BadVersion { .. })
        ));
        let (old, new) = (Version::new(0, 9, 0), Version::new(0, 10, 0));
        assert!(
            check_upgrade(&old, &new, false).is_ok(),
            "0.10 is newer than 0.9"
        );
        assert!(check_upgrade(&new, &old, false).is_err());
        assert!(check_upgrade(&new, &old, true).is_ok());
        let rc = Version::parse("0.10.0-rc.1").expect("rc");
        assert!(
            check_upgrade(&new, &rc, false).is_err(),
            "a pre-release is older"
        );
    }
}
