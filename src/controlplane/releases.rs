//! Releases the control plane may run: a binary and its minisign signature under the
//! configured release key, its version read from the signed trusted comment
//! (`platform::release`). Registered releases are copied into `<data>/releases/<version>/`;
//! a binary is verified again each time an instance is started on it, so one changed on
//! disk is never launched. Without a release key, only the control plane's own binary (its
//! own version) runs.

use std::path::{Path, PathBuf};

use minisign::PublicKey;
use semver::Version;
use serde::Serialize;

use crate::platform::{release, signature};

/// A release as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Release {
    pub version: String,
    /// The signer's key id.
    pub key_id: String,
    pub trusted_comment: String,
}

/// The releases of one control plane.
#[derive(Clone)]
pub struct Releases {
    dir: PathBuf,
    key: Option<PublicKey>,
    /// The control plane's own binary and version: what instances run without releases.
    own: (Version, PathBuf),
}

impl Releases {
    pub fn new(data_dir: &Path, key: Option<PublicKey>, own: (Version, PathBuf)) -> Releases {
        Releases {
            dir: data_dir.join("releases"),
            key,
            own,
        }
    }

    /// The version instances get when none is asked for: the newest release, else our own.
    pub fn default_version(&self) -> String {
        self.list()
            .into_iter()
            .filter_map(|r| Version::parse(&r.version).ok())
            .max()
            .unwrap_or_else(|| self.own.0.clone())
            .to_string()
    }

    fn binary_path(&self, version: &str) -> PathBuf {
        self.dir.join(version).join("toolshed")
    }

    /// Registers the release at `source` (its signature beside it, `.minisig`): refused
    /// unless it verifies under the release key; then copied in.
    pub fn add(&self, source: &Path) -> Result<Release, String> {
        let key = self.key.as_ref().ok_or(
            "this control plane has no release key (--release-key): it runs its own binary only",
        )?;
        let sig = signature::signature_path(source);
        let verified = release::verify(key, source, &sig).map_err(|e| e.to_string())?;
        let version = verified.version.to_string();
        let folder = self.dir.join(&version);
        std::fs::create_dir_all(&folder).map_err(|e| format!("cannot keep the release: {e}"))?;
        let target = self.binary_path(&version);
        let tmp = folder.join(".toolshed.tmp");
        std::fs::copy(source, &tmp)
            .and_then(|_| std::fs::copy(&sig, signature::signature_path(&target)))
            .and_then(|_| std::fs::rename(&tmp, &target))
            .map_err(|e| format!("cannot keep the release: {e}"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot keep the release: {e}"))?;
        Ok(Release {
            version,
            key_id: verified.verified.key_id,
            trusted_comment: verified.verified.trusted_comment,
        })
    }

    /// The registered releases, verified as they are on disk now.
    pub fn list(&self) -> Vec<Release> {
        let Some(key) = &self.key else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<Release> = entries
            .flatten()
            .filter_map(|e| {
                let binary = e.path().join("toolshed");
                let verified =
                    release::verify(key, &binary, &signature::signature_path(&binary)).ok()?;
                Some(Release {
                    version: verified.version.to_string(),
                    key_id: verified.verified.key_id,
                    trusted_comment: verified.verified.trusted_comment,
                })
            })
            .collect();
        found.sort_by(|a, b| {
            let parse = |r: &Release| Version::parse(&r.version).ok();
            parse(a).cmp(&parse(b))
        });
        found
    }

    /// The binary to launch for `version`, verified now.
    pub fn binary(&self, version: &str) -> Result<PathBuf, String> {
        if version == self.own.0.to_string() && self.key.is_none() {
            return Ok(self.own.1.clone());
        }
        let Some(key) = &self.key else {
            return Err(format!(
                "version {version} is not this control plane's own ({}), and it has no release key",
                self.own.0
            ));
        };
        let binary = self.binary_path(version);
        if !binary.is_file() {
            if version == self.own.0.to_string() {
                return Ok(self.own.1.clone());
            }
            return Err(format!("no release {version}"));
        }
        let verified = release::verify(key, &binary, &signature::signature_path(&binary))
            .map_err(|e| format!("release {version} does not verify: {e}"))?;
        if verified.version.to_string() != version {
            return Err(format!(
                "release {version}'s signature says it is {}",
                verified.version
            ));
        }
        Ok(binary)
    }
}
