//! `toolshed sign` / `toolshed verify` against the stock `minisign` tool, both ways, and
//! `--require-signature` at start.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{self, said};

fn toolshed(args: &[&str]) -> Output {
    Command::new(support::binary())
        .args(args)
        .env_clear()
        .output()
        .expect("run toolshed")
}

/// `minisign` with `args`: `None` when it is not installed (`.ci/run` installs it and sets
/// `TOOLSHED_REQUIRE_TOOLS`, so there it must be).
fn minisign(args: &[&str]) -> Option<Output> {
    match Command::new("minisign").args(args).output() {
        Ok(output) => Some(output),
        Err(_) if std::env::var_os("TOOLSHED_REQUIRE_TOOLS").is_none() => {
            eprintln!("minisign is not installed: skipped");
            None
        }
        Err(e) => panic!("minisign is required here: {e}"),
    }
}

struct Keys {
    dir: support::TempDir,
    public: PathBuf,
    secret: PathBuf,
}

/// A key pair made by `minisign -G -W` (no password).
fn minisign_keys() -> Option<Keys> {
    let dir = support::temp_dir();
    let public = dir.path().join("release.pub");
    let secret = dir.path().join("release.key");
    let out = minisign(&["-G", "-W", "-p", public.to_str()?, "-s", secret.to_str()?])?;
    assert!(out.status.success(), "{}", said(&out));
    Some(Keys {
        dir,
        public,
        secret,
    })
}

fn artifact(dir: &Path, content: &[u8]) -> PathBuf {
    let file = dir.join("artifact.bin");
    std::fs::write(&file, content).expect("write artifact");
    file
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn minisign_verifies_what_toolshed_signs() {
    let Some(keys) = minisign_keys() else { return };
    let file = artifact(keys.dir.path(), b"a release");
    let out = toolshed(&["sign", "--secret-key", s(&keys.secret), s(&file)]);
    assert!(out.status.success(), "{}", said(&out));
    let out = minisign(&["-V", "-p", s(&keys.public), "-m", s(&file)]).expect("minisign");
    assert!(out.status.success(), "{}", said(&out));
    let text = said(&out);
    assert!(
        text.contains("Signature and comment signature verified"),
        "{text}"
    );
    // minisign's own fields; the toolshed ones only when a binary signs itself (below).
    assert!(text.contains("file:artifact.bin\thashed"), "{text}");
    assert!(!text.contains("toolshed:"), "{text}");
    // And minisign refuses it once the file changed.
    std::fs::write(&file, b"a release, altered").expect("write");
    let out = minisign(&["-V", "-p", s(&keys.public), "-m", s(&file)]).expect("minisign");
    assert!(!out.status.success(), "{}", said(&out));
}

#[test]
fn toolshed_verifies_what_minisign_signs_and_refuses_the_rest() {
    let Some(keys) = minisign_keys() else { return };
    let file = artifact(keys.dir.path(), b"another release");
    let out = minisign(&[
        "-S",
        "-s",
        s(&keys.secret),
        "-m",
        s(&file),
        "-t",
        "made by stock minisign",
    ])
    .expect("minisign");
    assert!(out.status.success(), "{}", said(&out));
    let out = toolshed(&["verify", "--public-key", s(&keys.public), s(&file)]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("Trusted comment: made by stock minisign"));
    // The key given inline, as `minisign -P` takes it.
    let inline = std::fs::read_to_string(&keys.public).expect("public key");
    let line = inline.lines().nth(1).expect("key line");
    let out = toolshed(&["verify", "--public-key", line, s(&file)]);
    assert!(out.status.success(), "{}", said(&out));

    // A changed trusted comment.
    let sig = PathBuf::from(format!("{}.minisig", s(&file)));
    let good = std::fs::read_to_string(&sig).expect("signature");
    let forged = good.replace("made by stock minisign", "made by someone else");
    std::fs::write(&sig, &forged).expect("write");
    let out = toolshed(&["verify", "--public-key", s(&keys.public), s(&file)]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("Comment signature"), "{}", said(&out));
    std::fs::write(&sig, &good).expect("write");

    // Another key: refused by its id.
    let Some(other) = minisign_keys() else { return };
    let out = toolshed(&["verify", "--public-key", s(&other.public), s(&file)]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("not with key"), "{}", said(&out));

    // A changed file.
    std::fs::write(&file, b"another release!").expect("write");
    let out = toolshed(&["verify", "--public-key", s(&keys.public), s(&file)]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("does not match"), "{}", said(&out));
}

#[test]
fn an_encrypted_key_takes_its_password_from_the_environment() {
    let dir = support::temp_dir();
    let public = dir.path().join("p.pub");
    let secret = dir.path().join("p.key");
    // minisign asks for the password twice on its standard input when it is no terminal.
    let Ok(mut child) = Command::new("minisign")
        .args(["-G", "-p", s(&public), "-s", s(&secret)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("TOOLSHED_REQUIRE_TOOLS").is_none(),
            "minisign is required here"
        );
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"correct horse\ncorrect horse\n")
        .expect("password");
    let out = child.wait_with_output().expect("minisign -G");
    assert!(out.status.success(), "{}", said(&out));
    let file = artifact(dir.path(), b"signed with a password");
    let sign = |password: &str| {
        Command::new(support::binary())
            .args(["sign", "--secret-key", s(&secret), s(&file)])
            .env_clear()
            .env("TOOLSHED_SIGNING_PASSWORD", password)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("toolshed sign")
    };
    let wrong = sign("wrong horse");
    assert_eq!(wrong.status.code(), Some(1), "{}", said(&wrong));
    assert!(said(&wrong).contains("Wrong password"), "{}", said(&wrong));
    let right = sign("correct horse");
    assert!(right.status.success(), "{}", said(&right));
    let out = minisign(&["-V", "-p", s(&public), "-m", s(&file)]).expect("minisign");
    assert!(out.status.success(), "{}", said(&out));
}

#[test]
fn bad_keys_and_missing_files_are_clear_errors() {
    let dir = support::temp_dir();
    let file = artifact(dir.path(), b"x");
    let out = toolshed(&["verify", "--public-key", "not-a-key", s(&file)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        said(&out).contains("not a minisign public key"),
        "{}",
        said(&out)
    );
    // A server setting means nothing to `sign`: refused, not ignored.
    let out = toolshed(&["sign", "--port", "1", "--secret-key", "k", s(&file)]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(said(&out).contains("--port"), "{}", said(&out));
    let out = toolshed(&[
        "sign",
        "--secret-key",
        s(&dir.path().join("nope.key")),
        s(&file),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(said(&out).contains("cannot read"), "{}", said(&out));
}

/// A copy of the binary with a signature beside it, made with a fresh key pair.
fn signed_copy(dir: &Path) -> (PathBuf, String) {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().expect("key pair");
    let secret = dir.join("k.key");
    std::fs::write(&secret, pair.sk.to_box(None).expect("box").into_string()).expect("write");
    let copy = dir.join("toolshed");
    std::fs::copy(support::binary(), &copy).expect("copy binary");
    let out = toolshed(&["sign", "--secret-key", s(&secret), s(&copy)]);
    assert!(out.status.success(), "{}", said(&out));
    (copy, pair.pk.to_base64())
}

#[test]
fn a_binary_that_requires_its_signature_starts_only_when_it_holds() {
    let dir = support::temp_dir();
    let (copy, public) = signed_copy(dir.path());
    let data = dir.path().join("data");
    let server = support::spawn_program(&copy, &data, &[("TOOLSHED_REQUIRE_SIGNATURE", &public)]);
    let line = server.wait_for_log(|l| l["message"] == "executable signature verified");
    let comment = line["trusted_comment"].as_str().unwrap_or("").to_owned();
    // A binary signing itself says what it is.
    for field in ["file:toolshed", "toolshed:", "commit:", "target:", "built:"] {
        assert!(comment.contains(field), "{field} in {comment}");
    }
    drop(server);

    // A start that should be refused but is not would serve for ever: killed after 20 s.
    let refuse = |public: &str| {
        support::output_within(
            Command::new(&copy)
                .args(["serve", "--require-signature", public])
                .env_clear()
                .env("PORT", "0")
                .env("TOOLSHED_DATA_DIR", &data),
            std::time::Duration::from_secs(20),
        )
    };
    let other = minisign::KeyPair::generate_unencrypted_keypair().expect("key pair");
    let out = refuse(&other.pk.to_base64());
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("refusing to start"), "{}", said(&out));
    assert!(said(&out).contains("not with key"), "{}", said(&out));

    // The binary changed after signing.
    let mut bytes = std::fs::read(&copy).expect("read copy");
    bytes.extend_from_slice(b"appended");
    std::fs::write(&copy, bytes).expect("write copy");
    let out = refuse(&public);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("does not match"), "{}", said(&out));

    // No signature beside it.
    std::fs::remove_file(dir.path().join("toolshed.minisig")).expect("remove signature");
    let out = refuse(&public);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("toolshed.minisig"), "{}", said(&out));
}
