//! The off-machine copy: each backup sealed (AES-256-GCM) and sent to an S3-compatible
//! bucket (a real moto server here), and restored from there onto an empty machine.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{self, TestServer, client, moto, said};

const BUCKET: &str = "toolshed-backups";
const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const SECRET_TEXT: &str = "a-diary-entry-nobody-else-reads";

fn remote_env(moto: &moto::Moto) -> Vec<(&'static str, String)> {
    vec![
        ("TOOLSHED_BACKUP_REMOTE", format!("s3://{BUCKET}/alice")),
        ("TOOLSHED_BACKUP_S3_ENDPOINT", moto.url.clone()),
        ("TOOLSHED_BACKUP_S3_ACCESS_KEY_ID", "testing".into()),
        ("TOOLSHED_BACKUP_S3_SECRET_ACCESS_KEY", "testing".into()),
        ("TOOLSHED_BACKUP_KEY", KEY.into()),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Takes a backup and waits for it (and its upload) to finish; its listing.
async fn backup(server: &TestServer) -> Value {
    let started: Value = client()
        .post(server.url("/api/admin/backups"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let id = started["id"].as_str().expect("id").to_owned();
    for _ in 0..1200 {
        let list: Value = server.get_json("/api/admin/backups").await;
        if let Some(entry) = list
            .as_array()
            .expect("list")
            .iter()
            .find(|b| b["id"] == id.as_str() && b["state"] != "running")
        {
            assert_eq!(entry["state"], "done", "{entry}");
            return entry.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("backup {id} did not finish");
}

fn toolshed(args: &[&str], env: &[(&str, &str)]) -> Output {
    support::output_within(
        Command::new(support::binary())
            .args(args)
            .env_clear()
            .env("PORT", "0")
            .envs(env.iter().copied()),
        Duration::from_secs(60),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_leaves_sealed_and_comes_back_onto_an_empty_machine() {
    let Some(moto) = moto::start(BUCKET).await else {
        return;
    };
    let env = remote_env(&moto);
    let mut server_env = pairs(&env);
    server_env.push(("TOOLSHED_BACKUP_KEEP", "2"));
    server_env.push(("TOOLSHED_BACKUP_SCHEDULE", "off"));
    let dir = support::temp_dir();
    let data = dir.path().join("data");
    let server = support::spawn_in(&data, &server_env);
    server
        .put_json(
            "/api/kv/entries/diary/today",
            &json!({"value": SECRET_TEXT}),
        )
        .await;
    let first = backup(&server).await;
    let id = first["id"].as_str().expect("id").to_owned();
    assert_eq!(
        first["remote"],
        format!("s3://{BUCKET}/alice/{id}.tar.sealed"),
        "{first}"
    );
    assert_eq!(first["remote_error"], Value::Null);

    // What the bucket holds is sealed: the header, and none of the plaintext.
    let sealed = client()
        .get(format!("{}/{BUCKET}/alice/{id}.tar.sealed", moto.url))
        .send()
        .await
        .expect("get object")
        .bytes()
        .await
        .expect("bytes");
    assert!(sealed.starts_with(b"TSBK-v1\n"));
    let local = std::fs::read(data.join("backups").join(format!("{id}.tar"))).expect("local");
    let contains = |haystack: &[u8]| {
        haystack
            .windows(SECRET_TEXT.len())
            .any(|w| w == SECRET_TEXT.as_bytes())
    };
    assert!(contains(&local), "the local archive is plain");
    assert!(!contains(&sealed), "the copy in the bucket is not");
    assert!(sealed.len() > local.len());

    // The window holds in the bucket too.
    backup(&server).await;
    let last = backup(&server).await;
    let mut stopped = server;
    stopped.signal("TERM");
    assert_eq!(stopped.wait_exit(Duration::from_secs(20)), Some(0));
    let listed = toolshed(
        &[
            "restore",
            "--list",
            "--data-dir",
            data.to_str().expect("utf-8"),
        ],
        &pairs(&env),
    );
    assert!(listed.status.success(), "{}", said(&listed));
    let listing = String::from_utf8_lossy(&listed.stdout).into_owned();
    let in_bucket = listing.lines().filter(|l| l.contains("s3://")).count();
    assert_eq!(in_bucket, 2, "{listing}");
    assert!(
        !listing.contains(&format!("{id}\t")),
        "the oldest is gone: {listing}"
    );

    // The machine's disk is gone; the bucket and the key are all there is.
    std::fs::remove_dir_all(&data).expect("lose the disk");
    let last_id = last["id"].as_str().expect("id");
    let data_arg = data.to_str().expect("utf-8");
    let mut wrong_key = pairs(&env);
    wrong_key.retain(|(k, _)| *k != "TOOLSHED_BACKUP_KEY");
    let other_key = "ff".repeat(32);
    wrong_key.push(("TOOLSHED_BACKUP_KEY", &other_key));
    let refused = toolshed(
        &["restore", "--from", last_id, "--data-dir", data_arg],
        &wrong_key,
    );
    assert_eq!(refused.status.code(), Some(1), "{}", said(&refused));
    assert!(
        said(&refused).contains("does not open with this TOOLSHED_BACKUP_KEY"),
        "{}",
        said(&refused)
    );
    assert!(!data.exists(), "nothing was made");

    let restored = toolshed(
        &["restore", "--from", last_id, "--data-dir", data_arg],
        &pairs(&env),
    );
    assert!(restored.status.success(), "{}", said(&restored));
    let server = support::spawn_in(&data, &pairs(&env));
    let entry = server.get_json("/api/kv/entries/diary/today").await;
    assert_eq!(entry["value"], SECRET_TEXT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_failed_goes_up_with_the_next_backup() {
    let Some(moto) = moto::start(BUCKET).await else {
        return;
    };
    let mut env = remote_env(&moto);
    // A bucket that is not there yet: the first upload fails.
    env[0].1 = "s3://later-bucket/alice".into();
    let mut server_env = pairs(&env);
    server_env.push(("TOOLSHED_BACKUP_SCHEDULE", "off"));
    let server = support::spawn_with(&server_env);
    let failed = backup(&server).await;
    assert_eq!(
        failed["state"], "done",
        "the backup itself stands: {failed}"
    );
    assert_eq!(failed["remote"], Value::Null);
    assert!(failed["remote_error"].is_string(), "{failed}");

    let made = client()
        .put(format!("{}/later-bucket", moto.url))
        .send()
        .await
        .expect("make the bucket");
    assert!(made.status().is_success());
    backup(&server).await;
    let list: Value = server.get_json("/api/admin/backups").await;
    let list = list.as_array().expect("list");
    assert_eq!(list.len(), 2);
    for entry in list {
        assert!(entry["remote"].is_string(), "{entry}");
        assert_eq!(entry["remote_error"], Value::Null, "{entry}");
    }
}

#[test]
fn a_remote_without_a_key_is_refused_at_start() {
    let dir = support::temp_dir();
    let out = toolshed(
        &["serve"],
        &[
            ("TOOLSHED_DATA_DIR", dir.path().to_str().expect("utf-8")),
            ("TOOLSHED_BACKUP_REMOTE", "s3://toolshed-backups/alice"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("TOOLSHED_BACKUP_KEY"), "{}", said(&out));
    assert!(said(&out).contains("unencrypted"), "{}", said(&out));
    let bad_key = toolshed(
        &["serve"],
        &[
            ("TOOLSHED_DATA_DIR", dir.path().to_str().expect("utf-8")),
            ("TOOLSHED_BACKUP_REMOTE", "s3://toolshed-backups/alice"),
            ("TOOLSHED_BACKUP_KEY", "too-short"),
        ],
    );
    assert_eq!(bad_key.status.code(), Some(1), "{}", said(&bad_key));
    assert!(
        said(&bad_key).contains("64 hex digits"),
        "{}",
        said(&bad_key)
    );
}
