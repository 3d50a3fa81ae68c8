//! Releases the control plane may run: a binary and its minisign signature under the
//! configured release key, its version read from the signed trusted comment
//! (`platform::release`). Registered releases are copied into `<data>/releases/<version>/`;
//! a binary is verified again each time an instance is started on it if it changed on disk
//! since it was last verified (its or its signature's inode, size, mtime or ctime, which no
//! write can keep: a verification is remembered only for files whose ctime was over a second
//! old, beyond the clock's coarse steps), so one changed on disk is never launched. Without a release key, only
//! the control plane's own binary (its own version) runs.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    /// Each version's binary as last verified: the files' stamps then, the binary, its
    /// SHA-256 (hashing and verifying a 27 MB binary took 30 to 50 ms of every start).
    verified: Arc<Mutex<HashMap<String, Verified>>>,
}

/// A version's files' stamps when they were verified, and what that found.
type Verified = (Vec<Stamp>, Launch);

/// What identifies a file's content short of reading it: any write changes the ctime.
type Stamp = (u64, u64, u64, i64, i64, i64, i64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

/// A verified binary to launch, and the SHA-256 its attestation must report.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub sha256: String,
}

impl Releases {
    pub fn new(data_dir: &Path, key: Option<PublicKey>, own: (Version, PathBuf)) -> Releases {
        Releases {
            dir: data_dir.join("releases"),
            key,
            own,
            verified: Arc::default(),
        }
    }

    /// `version`'s binary, verified (again, if it or its signature changed since) and
    /// hashed. Reads whole files: call it off the async threads.
    pub fn launch(&self, version: &str) -> Result<Launch, String> {
        let binary = self.binary_path(version);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().cast_signed());
        let files = [
            binary.clone(),
            signature::signature_path(&binary),
            self.own.1.clone(),
        ];
        let stamps: Vec<Stamp> = files.iter().filter_map(|f| stamp(f)).collect();
        let cached = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(version)
            .filter(|(then, _)| *then == stamps)
            .map(|(_, launch)| launch.clone());
        if let Some(launch) = cached {
            return Ok(launch);
        }
        let program = self.binary(version)?;
        let sha256 = crate::platform::hash::sha256_file(&program)
            .map(|hash| crate::platform::hex::to_hex(&hash))
            .map_err(|e| format!("cannot read {}: {e}", program.display()))?;
        // Verified and hashed in two reads: the same bytes only if nothing changed between.
        let after: Vec<Stamp> = files.iter().filter_map(|f| stamp(f)).collect();
        if after != stamps {
            return Err(format!(
                "release {version} changed while it was being verified"
            ));
        }
        let launch = Launch { program, sha256 };
        // A file changed within the clock's step of our look could change again unseen.
        if stamps.iter().all(|s| s.5 < now - 1) {
            self.verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(version.to_owned(), (stamps, launch.clone()));
        }
        Ok(launch)
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
    fn binary(&self, version: &str) -> Result<PathBuf, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_changed_after_it_was_verified_is_not_launched() {
        let dir = tempfile::tempdir().expect("dir");
        let pair = minisign::KeyPair::generate_unencrypted_keypair().expect("key pair");
        let folder = dir.path().join("releases/1.0.0");
        std::fs::create_dir_all(&folder).expect("folder");
        let binary = folder.join("toolshed");
        std::fs::write(&binary, b"#!/bin/sh\necho one\n").expect("write");
        signature::sign_file(&pair.sk, &binary, "timestamp:1\ttoolshed:1.0.0").expect("sign");
        let own = dir.path().join("own");
        std::fs::write(&own, b"own").expect("own");
        let releases = Releases::new(dir.path(), Some(pair.pk), (Version::new(0, 1, 0), own));

        let first = releases.launch("1.0.0").expect("verifies");
        assert_eq!(first.program, binary);
        assert!(
            releases.verified.lock().expect("lock").is_empty(),
            "files changed a moment ago are not remembered as verified"
        );
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let again = releases.launch("1.0.0").expect("still verifies");
        assert_eq!(again.sha256, first.sha256);
        assert!(
            releases
                .verified
                .lock()
                .expect("lock")
                .contains_key("1.0.0")
        );

        // Same size, other content: the stamps change, so it is verified again and refused.
        std::fs::write(&binary, b"#!/bin/sh\necho two\n").expect("tamper");
        let refused = releases.launch("1.0.0").expect_err("changed");
        assert!(refused.contains("does not verify"), "{refused}");
        assert!(releases.launch("2.0.0").is_err(), "no such release");
    }
}
