//! `/api/attestation` and `toolshed attest verify` against a running instance (software
//! path: this machine is no SEV-SNP or TDX guest; the configfs-tsm path is tested against a
//! fake of the kernel's files beside its code).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use crate::support::{self, said};

const TOKEN: &str = "attestation-test-token-0123456789";
const NONCE: &str = "00112233445566778899aabbccddeeff";

/// No configfs-tsm here, whatever the machine running the tests has.
fn spawn(extra: &[(&str, &str)]) -> support::TestServer {
    let mut env = vec![("TOOLSHED_ATTESTATION_TSM_DIR", "/nonexistent/tsm/report")];
    env.extend_from_slice(extra);
    support::spawn_with(&env)
}

fn verify(base: &str, extra: &[&str]) -> Output {
    Command::new(support::binary())
        .args(["attest", "verify", "--url", base])
        .args(extra)
        .env_clear()
        .output()
        .expect("run attest verify")
}

fn binary_sha256() -> String {
    let bytes = std::fs::read(support::binary()).expect("read binary");
    format!("{:x}", Sha256::digest(&bytes))
}

#[tokio::test]
async fn software_evidence_binds_the_nonce_binary_and_instance_key() {
    let server = spawn(&[]);
    let response = server.get(&format!("/api/attestation?nonce={NONCE}")).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["platform"], "none");
    assert_eq!(body["hardware_backed"], false);
    assert_eq!(body["evidence"], serde_json::Value::Null);
    assert_eq!(body["nonce"], NONCE);
    assert_eq!(body["binary_sha256"], binary_sha256().as_str());
    assert!(
        body["note"]
            .as_str()
            .unwrap_or("")
            .contains("NOT hardware-backed")
    );
    assert!(
        !body.to_string().to_lowercase().contains("verified"),
        "{body}"
    );
    // The preimage as stated, recomputed here.
    let public = std::fs::read_to_string(server.data_dir.join("instance.pub")).expect("pub");
    let key_b64 = public.lines().nth(1).expect("key line");
    assert_eq!(body["instance_public_key"], key_b64);
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .expect("base64");
    let key_sha256 = Sha256::digest(&key[10..42]);
    assert_eq!(body["instance_key_sha256"], format!("{key_sha256:x}"));
    let mut preimage = b"toolshed-attestation-v1".to_vec();
    preimage.extend(hex(NONCE));
    preimage.extend(hex(body["binary_sha256"].as_str().expect("hash")));
    preimage.extend(key_sha256);
    let expected = sha2::Sha512::digest(&preimage);
    assert_eq!(body["report_data"], format!("{expected:x}"));
    // The secret half is the owner's alone.
    let mode = std::fs::metadata(server.data_dir.join("instance.key"))
        .expect("instance.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The verifier agrees, and says what kind of evidence it was.
    let out = verify(&server.base, &["--expect-binary-sha256", &binary_sha256()]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("NOT hardware-backed"), "{}", said(&out));
    let out = verify(&server.base, &["--expect-binary-sha256", &"ab".repeat(32)]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    // Pinned to this instance's key: passes; to another key, or requiring hardware: fails.
    let pub_file = server.data_dir.join("instance.pub");
    let out = verify(
        &server.base,
        &["--instance-key", pub_file.to_str().expect("path")],
    );
    assert!(out.status.success(), "{}", said(&out));
    let other = minisign::KeyPair::generate_unencrypted_keypair().expect("key pair");
    let out = verify(&server.base, &["--instance-key", &other.pk.to_base64()]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("not the pinned one"), "{}", said(&out));
    let out = verify(&server.base, &["--require-hardware"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[tokio::test]
async fn the_instance_key_outlives_a_restart() {
    let dir = support::temp_dir();
    let env = [("TOOLSHED_ATTESTATION_TSM_DIR", "/nonexistent/tsm/report")];
    let first = support::spawn_in(dir.path(), &env);
    let a = first
        .get_json(&format!("/api/attestation?nonce={NONCE}"))
        .await;
    drop(first);
    let second = support::spawn_in(dir.path(), &env);
    let b = second
        .get_json(&format!("/api/attestation?nonce={NONCE}"))
        .await;
    assert_eq!(a["instance_public_key"], b["instance_public_key"]);
    assert_eq!(a["report_data"], b["report_data"]);
}

#[tokio::test]
async fn bad_nonces_are_refused_by_name() {
    let server = spawn(&[]);
    for query in [
        "",
        "?nonce=",
        "?nonce=0011",
        &format!("?nonce={}", "ab".repeat(65)),
        "?nonce=zz112233445566778899aabbccddeeff",
        "?nonce=+0112233445566778899aabbccddeeff",
        &format!("?nonce={NONCE}&platform=tdx"),
    ] {
        let response = server.get(&format!("/api/attestation{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value = response.json().await.expect("json");
        let message = body["error"].as_str().unwrap_or("");
        assert!(
            message.contains("nonce") || message.contains("platform"),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn it_needs_a_token_like_the_rest_of_the_api() {
    let server = spawn(&[("TOOLSHED_API_TOKENS", TOKEN)]);
    let response = server.get(&format!("/api/attestation?nonce={NONCE}")).await;
    assert_eq!(response.status(), 401);
    let out = verify(&server.base, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("401"), "{}", said(&out));
    let out = verify(&server.base, &["--token", TOKEN]);
    assert!(out.status.success(), "{}", said(&out));
}

#[tokio::test]
async fn a_report_directory_that_is_not_configfs_tsm_fails_clearly() {
    let tsm = support::temp_dir();
    let root = tsm.path().to_str().expect("path");
    let server = support::spawn_with(&[("TOOLSHED_ATTESTATION_TSM_DIR", root)]);
    let response = server.get(&format!("/api/attestation?nonce={NONCE}")).await;
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["code"], "attestation_failed");
    assert!(
        body["error"].as_str().unwrap_or("").contains("provider"),
        "{body}"
    );
    assert_eq!(
        std::fs::read_dir(tsm.path()).expect("root").count(),
        0,
        "cleaned up"
    );
}
