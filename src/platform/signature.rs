//! Signatures in the minisign format (the `minisign` crate): signing a file, verifying one,
//! and the release binary checking its own signature at start.
//!
//! Only prehashed (`ED`) signatures are made and accepted; the crate's Ed25519 check refuses
//! a non-canonical `S` (S ≥ L), which a test below proves, because another crate
//! (`minisign-verify` 0.2.4) did not.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::Engine;
use minisign::{PublicKey, PublicKeyBox, SecretKey, SecretKeyBox, SignatureBox};

/// A secret key's decoded length: algorithms (6), KDF salt and limits (48), key id (8), the
/// Ed25519 seed and public key (64), checksum (32).
const UNENCRYPTED_KEY_LEN: usize = 158;

/// The password of an encrypted secret key, when no one is at a terminal to type it.
pub const PASSWORD_ENV: &str = "TOOLSHED_SIGNING_PASSWORD";

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} is not a minisign public key (a file, or the key's base64 line): {reason}")]
    PublicKey { what: String, reason: String },
    #[error("{path} is not a usable minisign secret key: {reason}")]
    SecretKey { path: String, reason: String },
    #[error("{path} is not a minisign signature: {reason}")]
    SignatureFile { path: String, reason: String },
    #[error("{path} was signed with key {signed_by}, not with key {expected}")]
    WrongKey {
        path: String,
        signed_by: String,
        expected: String,
    },
    #[error("{path} is a legacy (not prehashed) signature; only prehashed ones are accepted")]
    Legacy { path: String },
    #[error("the signature does not match {path}: {reason}")]
    Mismatch { path: String, reason: String },
    #[error("cannot sign {path}: {reason}")]
    Sign { path: String, reason: String },
}

/// What a good signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: String,
    pub trusted_comment: String,
}

/// The signature file minisign looks for beside `file`.
pub fn signature_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

/// A public key from a `.pub` file, or given inline as its base64 line (as `minisign -P`).
pub fn load_public_key(arg: &str) -> Result<PublicKey, SignatureError> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = read_text(path)?;
        PublicKeyBox::from_string(&text)
            .and_then(PublicKeyBox::into_public_key)
            .map_err(|e| SignatureError::PublicKey {
                what: path.display().to_string(),
                reason: e.to_string(),
            })
    } else {
        PublicKey::from_base64(arg.trim()).map_err(|e| SignatureError::PublicKey {
            what: format!("{arg:?} (no such file either)"),
            reason: e.to_string(),
        })
    }
}

/// A secret key file as `minisign -G` writes it; an encrypted one is opened with the password
/// in `TOOLSHED_SIGNING_PASSWORD`, or one asked for at the terminal.
pub fn load_secret_key(path: &Path) -> Result<SecretKey, SignatureError> {
    let text = read_text(path)?;
    let bad = |reason: String| SignatureError::SecretKey {
        path: path.display().to_string(),
        reason,
    };
    let encoded = text
        .lines()
        .nth(1)
        .ok_or_else(|| bad("expected a comment line, then the key's base64 line".into()))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| bad(e.to_string()))?;
    // Bytes 2..4 name the key derivation: zero for a key written with `minisign -G -W`.
    let encrypted = raw.get(2..4).ok_or_else(|| bad("too short".into()))? != [0, 0];
    let sk_box = SecretKeyBox::from_string(&text).map_err(|e| bad(e.to_string()))?;
    if encrypted {
        return SecretKey::from_box(sk_box, std::env::var(PASSWORD_ENV).ok())
            .map_err(|e| bad(e.to_string()));
    }
    // `minisign -G -W` (0.11) leaves an unencrypted key's checksum zero, which the crate
    // calls corrupted. Such a key is read as it is: signing checks the result against the
    // key's public half, so a damaged seed or public half still fails there (a damaged key
    // id only shows when the signature is verified).
    let checksum_unset =
        raw.len() == UNENCRYPTED_KEY_LEN && raw[raw.len() - 32..].iter().all(|&b| b == 0);
    if checksum_unset {
        return SecretKey::from_bytes(&raw).map_err(|e| bad(e.to_string()));
    }
    SecretKey::from_unencrypted_box(sk_box).map_err(|e| bad(e.to_string()))
}

/// The trusted comment of a signature this build makes: minisign's own fields, then, when
/// the file is this very executable (a release signing itself), what it is.
pub fn default_trusted_comment(file: &Path, now_unix: u64) -> String {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut comment = format!("timestamp:{now_unix}\tfile:{name}\thashed");
    if is_running_executable(file) {
        comment.push_str(&format!(
            "\ttoolshed:{}\tcommit:{}\ttarget:{}\tbuilt:{}",
            crate::build_info::VERSION,
            crate::build_info::GIT_COMMIT,
            crate::build_info::TARGET,
            crate::build_info::BUILD_DATE,
        ));
    }
    comment
}

/// Whether `file` holds the same bytes as the executable running now.
fn is_running_executable(file: &Path) -> bool {
    let running = if cfg!(target_os = "linux") {
        PathBuf::from("/proc/self/exe")
    } else {
        match std::env::current_exe() {
            Ok(exe) => exe,
            Err(_) => return false,
        }
    };
    let same_size = match (fs::metadata(file), fs::metadata(&running)) {
        (Ok(a), Ok(b)) => a.len() == b.len(),
        _ => false,
    };
    same_size && matches!((fs::read(file), fs::read(&running)), (Ok(a), Ok(b)) if a == b)
}

/// Signs `file` with a prehashed signature and writes `<file>.minisig`; returns its path.
pub fn sign_file(
    secret_key: &SecretKey,
    file: &Path,
    trusted_comment: &str,
) -> Result<PathBuf, SignatureError> {
    // Readers trim the comment they check, so one with outer spaces would never verify.
    if trusted_comment.contains(['\n', '\r']) || trusted_comment != trusted_comment.trim() {
        return Err(SignatureError::Sign {
            path: file.display().to_string(),
            reason: "a trusted comment is one line, without leading or trailing spaces".into(),
        });
    }
    let data = read_bytes(file)?;
    let public_key = PublicKey::from_secret_key(secret_key).map_err(|e| SignatureError::Sign {
        path: file.display().to_string(),
        reason: e.to_string(),
    })?;
    let untrusted = format!(
        "signature from toolshed secret key {}",
        key_id(public_key.keynum())
    );
    let signature = minisign::sign(
        Some(&public_key),
        secret_key,
        Cursor::new(data),
        Some(trusted_comment),
        Some(&untrusted),
    )
    .map_err(|e| SignatureError::Sign {
        path: file.display().to_string(),
        reason: e.to_string(),
    })?;
    let out = signature_path(file);
    fs::write(&out, signature.into_string()).map_err(|source| SignatureError::Write {
        path: out.display().to_string(),
        source,
    })?;
    Ok(out)
}

/// Checks `signature_file` over `file` with `public_key`: key id, prehashed, the file's
/// signature and the signature over the trusted comment.
pub fn verify_file(
    public_key: &PublicKey,
    file: &Path,
    signature_file: &Path,
) -> Result<Verified, SignatureError> {
    let text = read_text(signature_file)?;
    verify_data(
        public_key,
        &read_bytes(file)?,
        &file.display().to_string(),
        &text,
        &signature_file.display().to_string(),
    )
}

/// Checks a signature (`text`, as in a `.minisig` file named `sig_name`) over `data` (named
/// `data_name` in errors).
pub fn verify_data(
    public_key: &PublicKey,
    data: &[u8],
    data_name: &str,
    text: &str,
    sig_name: &str,
) -> Result<Verified, SignatureError> {
    let signature = parse_signature(text).map_err(|reason| SignatureError::SignatureFile {
        path: sig_name.to_owned(),
        reason,
    })?;
    let expected = key_id(public_key.keynum());
    let signed_by = key_id(signature.keynum());
    if signed_by != expected {
        return Err(SignatureError::WrongKey {
            path: sig_name.to_owned(),
            signed_by,
            expected,
        });
    }
    if !signature.is_prehashed() {
        return Err(SignatureError::Legacy {
            path: sig_name.to_owned(),
        });
    }
    minisign::verify(
        public_key,
        &signature,
        Cursor::new(data),
        true,
        false,
        false,
    )
    .map_err(|e| SignatureError::Mismatch {
        path: data_name.to_owned(),
        reason: e.to_string(),
    })?;
    let trusted_comment =
        signature
            .trusted_comment()
            .map_err(|e| SignatureError::SignatureFile {
                path: sig_name.to_owned(),
                reason: e.to_string(),
            })?;
    Ok(Verified {
        key_id: expected,
        trusted_comment,
    })
}

/// A signature file's text, refused unless its two signatures have their exact lengths: the
/// crate accepts a short global signature and then indexes past its end.
pub fn parse_signature(text: &str) -> Result<SignatureBox, String> {
    let lines: Vec<&str> = text.lines().collect();
    let decoded_len = |i: usize| {
        lines
            .get(i)
            .and_then(|line| {
                base64::engine::general_purpose::STANDARD
                    .decode(line.trim())
                    .ok()
            })
            .map(|bytes| bytes.len())
    };
    // "ED" ‖ key id (8) ‖ signature (64); then the global signature (64).
    if decoded_len(1) != Some(74) {
        return Err("its second line is not a signature (74 bytes in base64)".into());
    }
    if !lines
        .get(2)
        .is_some_and(|l| l.starts_with("trusted comment: "))
    {
        return Err("its third line is not a trusted comment".into());
    }
    if decoded_len(3) != Some(64) {
        return Err("its fourth line is not a global signature (64 bytes in base64)".into());
    }
    SignatureBox::from_string(text).map_err(|e| e.to_string())
}

/// The running executable against `<exe>.minisig`, for `--require-signature`. The bytes
/// checked are the ones running (`/proc/self/exe`), not whatever the path holds by now.
pub fn verify_own_executable(public_key_arg: &str) -> Result<(PathBuf, Verified), String> {
    let key = load_public_key(public_key_arg).map_err(|e| e.to_string())?;
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the running executable: {e}"))?;
    let running = if cfg!(target_os = "linux") {
        PathBuf::from("/proc/self/exe")
    } else {
        exe.clone()
    };
    let data = read_bytes(&running).map_err(|e| e.to_string())?;
    let sig_path = signature_path(&exe);
    let text = read_text(&sig_path).map_err(|e| e.to_string())?;
    let verified = verify_data(
        &key,
        &data,
        &exe.display().to_string(),
        &text,
        &sig_path.display().to_string(),
    )
    .map_err(|e| e.to_string())?;
    Ok((exe, verified))
}

/// A key id as minisign prints it: the 8 bytes as a little-endian number, in upper-case hex.
pub fn key_id(keynum: &[u8]) -> String {
    let mut bytes = [0u8; 8];
    let n = keynum.len().min(8);
    bytes[..n].copy_from_slice(&keynum[..n]);
    format!("{:016X}", u64::from_le_bytes(bytes))
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, SignatureError> {
    fs::read(path).map_err(|source| SignatureError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String, SignatureError> {
    fs::read_to_string(path).map_err(|source| SignatureError::Read {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use minisign::KeyPair;

    struct Signed {
        _dir: tempfile::TempDir,
        key: PublicKey,
        file: PathBuf,
        sig: PathBuf,
    }

    fn signed(content: &[u8]) -> Signed {
        let dir = tempfile::tempdir().expect("temp dir");
        let pair = KeyPair::generate_unencrypted_keypair().expect("key pair");
        let file = dir.path().join("artifact");
        fs::write(&file, content).expect("write");
        let sig = sign_file(&pair.sk, &file, "timestamp:1\tfile:artifact").expect("sign");
        Signed {
            _dir: dir,
            key: pair.pk,
            file,
            sig,
        }
    }

    /// The signature file's lines: untrusted comment, signature, trusted comment, global.
    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .expect("read")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn b64(text: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .expect("base64")
    }

    fn write_lines(path: &Path, lines: &[String]) {
        fs::write(path, lines.join("\n") + "\n").expect("write");
    }

    #[test]
    fn a_signature_verifies_and_carries_its_trusted_comment() {
        let s = signed(b"release bytes");
        let verified = verify_file(&s.key, &s.file, &s.sig).expect("verifies");
        assert_eq!(verified.trusted_comment, "timestamp:1\tfile:artifact");
        assert_eq!(verified.key_id, key_id(s.key.keynum()));
        let sig_line = b64(&lines(&s.sig)[1]);
        assert_eq!(&sig_line[..2], b"ED", "prehashed");
    }

    #[test]
    fn a_changed_file_is_refused() {
        let s = signed(b"release bytes");
        fs::write(&s.file, b"release bytez").expect("write");
        let err = verify_file(&s.key, &s.file, &s.sig).expect_err("refused");
        assert!(matches!(err, SignatureError::Mismatch { .. }), "{err}");
    }

    #[test]
    fn a_changed_trusted_comment_is_refused() {
        let s = signed(b"release bytes");
        let mut l = lines(&s.sig);
        l[2] = "trusted comment: timestamp:2\tfile:artifact".into();
        write_lines(&s.sig, &l);
        let err = verify_file(&s.key, &s.file, &s.sig).expect_err("refused");
        assert!(err.to_string().contains("Comment signature"), "{err}");
    }

    #[test]
    fn another_key_is_refused_by_its_id() {
        let s = signed(b"release bytes");
        let other = KeyPair::generate_unencrypted_keypair().expect("key pair");
        let err = verify_file(&other.pk, &s.file, &s.sig).expect_err("refused");
        assert!(matches!(err, SignatureError::WrongKey { .. }), "{err}");
    }

    #[test]
    fn a_non_canonical_s_is_refused() {
        // S + L verifies under the group law but is a second encoding of one signature:
        // a strict verifier refuses it (the crate minisign-verify 0.2.4 did not).
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let s = signed(b"release bytes");
        let mut l = lines(&s.sig);
        let mut raw = b64(&l[1]);
        // raw = "ED" ‖ key id (8) ‖ R (32) ‖ S (32), S little-endian.
        let s_bytes = &mut raw[42..74];
        let mut carry = 0u16;
        for (byte, add) in s_bytes.iter_mut().zip(L) {
            let sum = u16::from(*byte) + u16::from(add) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "S + L fits in 256 bits since S < L < 2^253");
        l[1] = base64::engine::general_purpose::STANDARD.encode(&raw);
        write_lines(&s.sig, &l);
        let err = verify_file(&s.key, &s.file, &s.sig).expect_err("refused");
        assert!(matches!(err, SignatureError::Mismatch { .. }), "{err}");
    }

    #[test]
    fn a_legacy_signature_is_refused() {
        let s = signed(b"release bytes");
        let mut l = lines(&s.sig);
        let mut raw = b64(&l[1]);
        raw[..2].copy_from_slice(b"Ed");
        l[1] = base64::engine::general_purpose::STANDARD.encode(&raw);
        write_lines(&s.sig, &l);
        let err = verify_file(&s.key, &s.file, &s.sig).expect_err("refused");
        assert!(matches!(err, SignatureError::Legacy { .. }), "{err}");
    }

    #[test]
    fn keys_load_from_files_and_inline() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pair = KeyPair::generate_unencrypted_keypair().expect("key pair");
        let pub_path = dir.path().join("k.pub");
        let sec_path = dir.path().join("k.key");
        fs::write(&pub_path, pair.pk.to_box().expect("box").into_string()).expect("write");
        fs::write(&sec_path, pair.sk.to_box(None).expect("box").into_string()).expect("write");
        let from_file = load_public_key(pub_path.to_str().expect("utf-8")).expect("file");
        let inline = load_public_key(&pair.pk.to_base64()).expect("inline");
        assert_eq!(from_file.keynum(), inline.keynum());
        let secret = load_secret_key(&sec_path).expect("secret");
        assert_eq!(secret.keynum(), pair.sk.keynum());
        assert!(load_public_key("no-such-key").is_err());
        assert!(
            load_secret_key(&pub_path).is_err(),
            "a public key is no secret key"
        );
    }

    #[test]
    fn a_key_without_checksum_signs_unless_damaged() {
        // As `minisign -G -W` writes it: no checksum.
        let dir = tempfile::tempdir().expect("temp dir");
        let pair = KeyPair::generate_unencrypted_keypair().expect("key pair");
        let text = pair.sk.to_box(None).expect("box").into_string();
        let mut raw = b64(text.lines().nth(1).expect("key line"));
        let n = raw.len();
        raw[n - 32..].fill(0);
        let path = dir.path().join("w.key");
        let write = |raw: &[u8]| {
            let line = base64::engine::general_purpose::STANDARD.encode(raw);
            fs::write(
                &path,
                format!("untrusted comment: minisign secret key\n{line}\n"),
            )
            .expect("write");
        };
        write(&raw);
        let file = dir.path().join("f");
        fs::write(&file, b"data").expect("write");
        let key = load_secret_key(&path).expect("loads");
        sign_file(&key, &file, "t").expect("signs");
        verify_file(&pair.pk, &file, &signature_path(&file)).expect("verifies");
        // A damaged seed: the signature no longer matches the key's public half.
        raw[54 + 8] ^= 1;
        write(&raw);
        let key = load_secret_key(&path).expect("loads");
        assert!(sign_file(&key, &file, "t").is_err());
    }

    #[test]
    fn a_short_or_missing_global_signature_is_an_error_not_a_panic() {
        let s = signed(b"release bytes");
        let good = lines(&s.sig);
        for (line, replacement) in [
            (3, "AAAA".to_owned()),
            (3, String::new()),
            (1, "AAAA".to_owned()),
            (2, "not a trusted comment".to_owned()),
        ] {
            let mut l = good.clone();
            l[line] = replacement;
            write_lines(&s.sig, &l);
            let err = verify_file(&s.key, &s.file, &s.sig).expect_err("refused");
            assert!(matches!(err, SignatureError::SignatureFile { .. }), "{err}");
        }
        write_lines(&s.sig, &good[..2]);
        assert!(verify_file(&s.key, &s.file, &s.sig).is_err());
    }

    #[test]
    fn a_trusted_comment_with_outer_spaces_is_not_signed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pair = KeyPair::generate_unencrypted_keypair().expect("key pair");
        let file = dir.path().join("f");
        fs::write(&file, b"data").expect("write");
        assert!(sign_file(&pair.sk, &file, " padded ").is_err());
    }
}
