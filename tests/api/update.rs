//! `toolshed update`: a signed release replaces the executable, anything else leaves it
//! untouched; `--restart` makes a running server start again as the new binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::{self, said};

struct Setup {
    dir: support::TempDir,
    /// The installed executable (a copy of the test binary).
    exe: PathBuf,
    /// The release: the test binary with bytes appended (an ELF ignores them), so that
    /// installed and release differ.
    release: PathBuf,
    secret: PathBuf,
    public: String,
    original: Vec<u8>,
}

fn setup() -> Setup {
    let dir = support::temp_dir();
    let bin = dir.path().join("bin");
    let out = dir.path().join("release");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::create_dir_all(&out).expect("release");
    let exe = bin.join("toolshed");
    std::fs::copy(support::binary(), &exe).expect("install");
    let release = out.join("toolshed");
    std::fs::copy(support::binary(), &release).expect("release");
    append(&release, b"release-2");
    let pair = minisign::KeyPair::generate_unencrypted_keypair().expect("key pair");
    let secret = dir.path().join("release.key");
    std::fs::write(&secret, pair.sk.to_box(None).expect("box").into_string()).expect("key");
    let original = std::fs::read(&exe).expect("read");
    Setup {
        dir,
        exe,
        release,
        secret,
        public: pair.pk.to_base64(),
        original,
    }
}

fn append(file: &Path, bytes: &[u8]) {
    let mut content = std::fs::read(file).expect("read");
    content.extend_from_slice(bytes);
    std::fs::write(file, content).expect("write");
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

/// Signs the release as version `version` (or with `comment` as it is).
fn sign(setup: &Setup, comment: &str) {
    let out = Command::new(support::binary())
        .args([
            "sign",
            "--secret-key",
            s(&setup.secret),
            "--trusted-comment",
            comment,
        ])
        .arg(&setup.release)
        .env_clear()
        .output()
        .expect("sign");
    assert!(out.status.success(), "{}", said(&out));
}

fn update(setup: &Setup, from: &str, extra: &[&str]) -> Output {
    Command::new(&setup.exe)
        .args(["update", "--from", from, "--public-key", &setup.public])
        .args(extra)
        .env_clear()
        .output()
        .expect("run update")
}

/// The installed binary is what it was, with nothing left beside it.
fn untouched(setup: &Setup) {
    assert!(
        std::fs::read(&setup.exe).expect("read") == setup.original,
        "the installed binary changed"
    );
    let beside: Vec<String> = std::fs::read_dir(setup.exe.parent().expect("bin"))
        .expect("bin")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["toolshed"], "nothing staged or kept");
}

#[test]
fn only_a_release_signed_by_the_key_and_newer_is_installed() {
    let setup = setup();
    let from = s(&setup.release).to_owned();

    // Signed, but with no version in the trusted comment.
    sign(&setup, "timestamp:1\tfile:toolshed");
    let out = update(&setup, &from, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("names no version"), "{}", said(&out));
    untouched(&setup);

    // Older than the installed one.
    sign(&setup, "timestamp:1\tfile:toolshed\ttoolshed:0.0.1");
    let out = update(&setup, &from, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("--allow-downgrade"), "{}", said(&out));
    untouched(&setup);

    // Another key's signature.
    let other = minisign::KeyPair::generate_unencrypted_keypair().expect("key pair");
    sign(&setup, "timestamp:1\tfile:toolshed\ttoolshed:99.0.0");
    let out = Command::new(&setup.exe)
        .args([
            "update",
            "--from",
            &from,
            "--public-key",
            &other.pk.to_base64(),
        ])
        .env_clear()
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("not with key"), "{}", said(&out));
    untouched(&setup);

    // Changed after it was signed.
    append(&setup.release, b"tampered");
    let out = update(&setup, &from, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("does not match"), "{}", said(&out));
    untouched(&setup);

    // No signature at all.
    let out = update(&setup, &from, &["--signature", "/nonexistent.minisig"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    untouched(&setup);

    // Signed and newer: installed, the old one kept, the signature beside it.
    sign(&setup, "timestamp:1\tfile:toolshed\ttoolshed:99.0.0");
    let out = update(&setup, &from, &[]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("installed toolshed 99.0.0"),
        "{}",
        said(&out)
    );
    let release = std::fs::read(&setup.release).expect("release");
    assert!(
        std::fs::read(&setup.exe).expect("exe") == release,
        "the release is installed"
    );
    let previous = setup.exe.with_file_name("toolshed.previous");
    assert!(std::fs::read(&previous).expect("previous") == setup.original);
    let check = Command::new(&setup.exe)
        .args(["verify", "--public-key", &setup.public])
        .arg(&setup.exe)
        .env_clear()
        .output()
        .expect("verify");
    assert!(check.status.success(), "{}", said(&check));

    // An older release again, allowed on purpose.
    sign(&setup, "timestamp:2\tfile:toolshed\ttoolshed:0.0.1");
    let out = update(&setup, &from, &["--allow-downgrade"]);
    assert!(out.status.success(), "{}", said(&out));
    drop(setup.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_is_downloaded_and_the_running_server_restarts_into_it() {
    let setup = setup();
    sign(&setup, "timestamp:1\tfile:toolshed\ttoolshed:99.0.0");
    let release_dir = setup.release.parent().expect("dir").to_owned();
    let files =
        axum::Router::new().fallback_service(tower_http::services::ServeDir::new(release_dir));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, files).await });

    let data = setup.dir.path().join("data");
    let server = support::spawn_program(&setup.exe, &data, &[]);
    let exe = setup.exe.clone();
    let public = setup.public.clone();
    let data_arg = s(&data).to_owned();
    let url = format!("{base}/toolshed");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&exe)
            .args([
                "update",
                "--from",
                &url,
                "--public-key",
                &public,
                "--restart",
            ])
            .args(["--data-dir", &data_arg])
            .env_clear()
            .output()
            .expect("run update")
    })
    .await
    .expect("update");
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("asked the server"), "{}", said(&out));

    server
        .wait_for_log(|l| l["message"] == "restart signal received: shutting down to start again");
    let mut listening = Vec::new();
    for _ in 0..400 {
        listening = server
            .log_lines()
            .into_iter()
            .filter(|l| l["message"] == "listening")
            .collect();
        if listening.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listening.len(), 2, "the server started again");
    let addr = listening[1]["addr"].as_str().expect("addr");
    let health = support::client()
        .get(format!("http://{addr}/api/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let running = std::fs::read_link(format!("/proc/{}/exe", server.child.id())).expect("exe");
    assert_eq!(running, setup.exe, "the same process now runs the new file");
    assert!(
        std::fs::read(&setup.exe).expect("exe") == std::fs::read(&setup.release).expect("release")
    );
}
