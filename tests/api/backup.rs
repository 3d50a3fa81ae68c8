//! Backups (`/api/admin/backups`) and `toolshed restore`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::mock_img::{self, PNG};
use crate::support::{self, TestServer, client, said};

const ADMIN: &str = "admin-token-0123456789";
const API: &str = "api-token-0123456789";

/// Starts a backup and waits until it is written; its id.
async fn backup(server: &TestServer) -> String {
    let response = client()
        .post(server.url("/api/admin/backups"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let started: Value = response.json().await.expect("json");
    let id = started["id"].as_str().expect("id").to_owned();
    assert_eq!(location, format!("/api/admin/backups/{id}"));
    for _ in 0..1200 {
        let list: Value = server.get_json("/api/admin/backups").await;
        let entry = list
            .as_array()
            .expect("list")
            .iter()
            .find(|b| b["id"] == id.as_str())
            .cloned()
            .expect("listed");
        match entry["state"].as_str() {
            Some("done") => return id,
            Some("running") => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => panic!("backup failed: {entry}"),
        }
    }
    panic!("backup {id} did not finish");
}

fn restore(args: &[&str]) -> std::process::Output {
    Command::new(support::binary())
        .arg("restore")
        .args(args)
        .env_clear()
        .output()
        .expect("run restore")
}

fn stop(mut server: TestServer) {
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(20)), Some(0));
}

async fn kv_value(server: &TestServer, key: &str) -> Option<Value> {
    let response = server.get(&format!("/api/kv/entries/{key}")).await;
    match response.status().as_u16() {
        200 => Some(response.json::<Value>().await.expect("json")["value"].clone()),
        404 => None,
        other => panic!("GET {key}: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_brings_back_exactly_the_backed_up_entries_tasks_and_blobs() {
    let mock = mock_img::start().await;
    let dir = support::temp_dir();
    let data = dir.path().join("data");
    let env = [
        ("FAL_KEY", "fal-key"),
        ("FAL_QUEUE_URL", mock.url.as_str()),
        ("TOOLSHED_OUTBOUND_ALLOW_HOSTS", "127.0.0.1"),
        ("TOOLSHED_BACKUP_SCHEDULE", "off"),
    ];
    let server = support::spawn_in(&data, &env);
    for (key, value) in [("kept", "before"), ("removed", "before")] {
        let put = server
            .put_json(&format!("/api/kv/entries/{key}"), &json!({"value": value}))
            .await;
        assert_eq!(put.status(), 200);
    }
    let task: Value = server
        .post_json(
            "/api/queue/tasks",
            &json!({"payload": {"method": "GET", "path": "/api/health"}, "delay_ms": 3_600_000}),
        )
        .await
        .json()
        .await
        .expect("task");
    let task_id = task["id"].as_i64().expect("task id");
    let image = server.get("/api/ai/img?prompt=a%20lighthouse").await;
    assert_eq!(image.headers()["x-cache"], "MISS");
    let id = backup(&server).await;

    // Everything changes after the backup.
    server
        .put_json("/api/kv/entries/kept", &json!({"value": "after"}))
        .await;
    client()
        .delete(server.url("/api/kv/entries/removed"))
        .send()
        .await
        .expect("delete");
    server
        .put_json("/api/kv/entries/added", &json!({"value": "after"}))
        .await;
    client()
        .delete(server.url(&format!("/api/queue/tasks/{task_id}")))
        .send()
        .await
        .expect("delete task");
    std::fs::remove_dir_all(data.join("blobs")).expect("blobs lost");

    // Not while the server holds the directory.
    let refused = restore(&["--from", &id, "--data-dir", data.to_str().expect("utf-8")]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(said(&refused).contains("in use"), "{}", said(&refused));
    stop(server);

    let restored = restore(&["--from", &id, "--data-dir", data.to_str().expect("utf-8")]);
    assert!(restored.status.success(), "{}", said(&restored));
    let previous: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("data.before-restore-")
        })
        .collect();
    assert_eq!(previous.len(), 1, "the replaced directory is kept aside");

    let server = support::spawn_in(&data, &env);
    assert_eq!(kv_value(&server, "kept").await, Some(json!("before")));
    assert_eq!(kv_value(&server, "removed").await, Some(json!("before")));
    assert_eq!(kv_value(&server, "added").await, None);
    let task = server.get(&format!("/api/queue/tasks/{task_id}")).await;
    assert_eq!(task.status(), 200);
    assert_eq!(
        task.json::<Value>().await.expect("task")["status"],
        "pending"
    );
    let image = server.get("/api/ai/img?prompt=a%20lighthouse").await;
    assert_eq!(image.headers()["x-cache"], "HIT", "the blob is back");
    assert_eq!(image.bytes().await.expect("bytes").as_ref(), PNG);
    assert_eq!(mock.submits(), 1);
    let list: Value = server.get_json("/api/admin/backups").await;
    assert_eq!(
        list[0]["id"],
        id.as_str(),
        "the backups stay with the directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_eight_writers_write_holds_every_write_acknowledged_before_it() {
    let dir = support::temp_dir();
    let data = dir.path().join("data");
    let server = Arc::new(support::spawn_in(&data, &[]));
    let stop_writing = Arc::new(AtomicBool::new(false));
    let acked: Arc<Vec<std::sync::atomic::AtomicI64>> = Arc::new(
        (0..8)
            .map(|_| std::sync::atomic::AtomicI64::new(-1))
            .collect(),
    );
    let mut writers = Vec::new();
    for writer in 0..8 {
        let (server, stop_writing, acked) = (server.clone(), stop_writing.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let mut n: i64 = 0;
            while !stop_writing.load(Ordering::SeqCst) {
                let put = server
                    .put_json(
                        &format!("/api/kv/entries/w{writer}/{n:06}"),
                        &json!({"value": n}),
                    )
                    .await;
                assert_eq!(put.status(), 200);
                acked[writer].store(n, Ordering::SeqCst);
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before: Vec<i64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    let id = backup(&server).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_writing.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.expect("writer");
    }

    // The downloaded archive, restored with the SHA-256 the download names.
    let download = server.get(&format!("/api/admin/backups/{id}")).await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "application/x-tar");
    let sha256 = download.headers()["x-backup-sha256"]
        .to_str()
        .expect("sha")
        .to_owned();
    let archive = dir.path().join("downloaded.tar");
    std::fs::write(&archive, download.bytes().await.expect("bytes")).expect("write");
    let Ok(server) = Arc::try_unwrap(server) else {
        panic!("writers still hold the server");
    };
    stop(server);
    let restored = restore(&[
        "--from",
        archive.to_str().expect("utf-8"),
        "--data-dir",
        data.to_str().expect("utf-8"),
        "--sha256",
        &sha256,
    ]);
    assert!(restored.status.success(), "{}", said(&restored));

    let server = support::spawn_in(&data, &[]);
    for (writer, acked_before) in before.iter().enumerate() {
        let page: Value = server
            .get_json(&format!("/api/kv/list?prefix=w{writer}&limit=1000"))
            .await;
        let values: Vec<i64> = page["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["value"].as_i64().expect("n"))
            .collect();
        assert!(
            values.len() as i64 > *acked_before,
            "writer {writer}: {} entries, {acked_before} acknowledged before the backup",
            values.len()
        );
        let expected: Vec<i64> = (0..values.len() as i64).collect();
        assert_eq!(values, expected, "writer {writer}: one consistent state");
    }
}

#[tokio::test]
async fn a_damaged_or_unexpected_archive_changes_nothing() {
    let dir = support::temp_dir();
    let data = dir.path().join("data");
    let server = support::spawn_in(&data, &[]);
    server
        .put_json("/api/kv/entries/k", &json!({"value": "backed up"}))
        .await;
    let id = backup(&server).await;
    server
        .put_json("/api/kv/entries/k", &json!({"value": "current"}))
        .await;
    stop(server);
    let data_arg = data.to_str().expect("utf-8");
    let archive = data.join("backups").join(format!("{id}.tar"));

    let wrong_sha = restore(&[
        "--from",
        &id,
        "--data-dir",
        data_arg,
        "--sha256",
        &"0".repeat(64),
    ]);
    assert_eq!(wrong_sha.status.code(), Some(1));
    assert!(said(&wrong_sha).contains("SHA-256"), "{}", said(&wrong_sha));

    // One flipped byte inside the database's bytes.
    let mut bytes = std::fs::read(&archive).expect("read");
    let copy = dir.path().join("damaged.tar");
    bytes[512 + 100] ^= 0xff;
    std::fs::write(&copy, &bytes).expect("write");
    let damaged = restore(&[
        "--from",
        copy.to_str().expect("utf-8"),
        "--data-dir",
        data_arg,
    ]);
    assert_eq!(damaged.status.code(), Some(1));
    assert!(
        said(&damaged).contains("nothing was changed"),
        "{}",
        said(&damaged)
    );

    // The sidecar beside the archive catches the same damage in place.
    std::fs::write(&archive, &bytes).expect("damage in place");
    let in_place = restore(&["--from", &id, "--data-dir", data_arg]);
    assert_eq!(in_place.status.code(), Some(1));
    assert!(said(&in_place).contains("SHA-256"), "{}", said(&in_place));

    let missing = restore(&["--from", "/nonexistent.tar", "--data-dir", data_arg]);
    assert_eq!(missing.status.code(), Some(1));

    let server = support::spawn_in(&data, &[]);
    assert_eq!(kv_value(&server, "k").await, Some(json!("current")));
    assert!(
        !std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains("restor")),
        "no half-restored directory is left behind"
    );
}

#[tokio::test]
async fn the_window_keeps_the_newest_and_each_backup_can_be_fetched_or_deleted() {
    let server = support::spawn_with(&[
        ("TOOLSHED_BACKUP_KEEP", "2"),
        ("TOOLSHED_BACKUP_SCHEDULE", "off"),
    ]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(backup(&server).await);
    }
    let list: Value = server.get_json("/api/admin/backups").await;
    let listed: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|b| b["id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, [ids[1].as_str(), ids[2].as_str()]);
    let first = &list[0];
    assert_eq!(first["state"], "done");
    assert_eq!(first["databases"], json!(["toolshed.db"]));
    assert!(first["size"].as_u64().expect("size") > 0);
    assert_eq!(first["sha256"].as_str().expect("sha").len(), 64);

    // An orchestrator sees how old the newest backup is, without a user's data.
    let metrics = server.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("toolshed_backups_kept 2"), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "toolshed_backup_last_size_bytes {}",
            list[1]["size"].as_u64().expect("size")
        )),
        "{metrics}"
    );
    let last_success: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("toolshed_backup_last_success_timestamp_seconds "))
        .expect("the newest backup's time")
        .parse()
        .expect("a number");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        (now - last_success).abs() < 120.0,
        "{last_success} vs {now}"
    );

    let ranged = client()
        .get(server.url(&format!("/api/admin/backups/{}", ids[2])))
        .header("range", "bytes=0-9")
        .send()
        .await
        .expect("send");
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.expect("bytes").len(), 10);

    assert_eq!(
        server
            .get(&format!("/api/admin/backups/{}", ids[0]))
            .await
            .status(),
        404
    );
    assert_eq!(
        server.get("/api/admin/backups/../../etc").await.status(),
        404
    );
    let bad = server.get("/api/admin/backups/not-an-id").await;
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<Value>().await.expect("json")["error"].is_string());
    let deleted = client()
        .delete(server.url(&format!("/api/admin/backups/{}", ids[1])))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    let again = client()
        .delete(server.url(&format!("/api/admin/backups/{}", ids[1])))
        .send()
        .await
        .expect("delete");
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn admin_routes_take_admin_tokens_only() {
    let shut = support::spawn_with(&[("TOOLSHED_API_TOKENS", API)]);
    let response = client()
        .get(shut.url("/api/admin/backups"))
        .bearer_auth(API)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 403, "no admin token configured");
    assert!(
        response.json::<Value>().await.expect("json")["error"]
            .as_str()
            .expect("error")
            .contains("TOOLSHED_ADMIN_TOKENS")
    );

    let server = support::spawn_with(&[
        ("TOOLSHED_API_TOKENS", API),
        ("TOOLSHED_ADMIN_TOKENS", ADMIN),
    ]);
    let with =
        |token: &'static str, path: &str| client().get(server.url(path)).bearer_auth(token).send();
    assert_eq!(
        with(ADMIN, "/api/admin/backups")
            .await
            .expect("send")
            .status(),
        200
    );
    assert_eq!(
        with(API, "/api/admin/backups")
            .await
            .expect("send")
            .status(),
        401
    );
    assert_eq!(
        client()
            .get(server.url("/api/admin/backups"))
            .send()
            .await
            .expect("send")
            .status(),
        401
    );
    assert_eq!(
        with(ADMIN, "/api/kv/list").await.expect("send").status(),
        401,
        "an admin token opens nothing else"
    );
    assert_eq!(with(API, "/api/kv/list").await.expect("send").status(), 200);

    // Nor can an API caller reach them through the queue: a backup task is the instance's
    // own, a task's header cannot carry a token, and a task's request never gets in.
    let enqueue = |body: Value| {
        client()
            .post(server.url("/api/queue/tasks"))
            .bearer_auth(API)
            .json(&body)
            .send()
    };
    let backup_task = enqueue(json!({"kind": "backup", "payload": null}))
        .await
        .expect("send");
    assert_eq!(backup_task.status(), 400);
    let error: Value = backup_task.json().await.expect("json");
    assert!(
        error["error"].as_str().expect("error").contains("own"),
        "{error}"
    );
    let smuggled = enqueue(
        json!({"payload": {"method": "GET", "path": "/api/admin/backups",
        "headers": {"x-api-key": ADMIN}}}),
    )
    .await
    .expect("send");
    assert_eq!(smuggled.status(), 400);
    let task: Value = enqueue(
        json!({"payload": {"method": "POST", "path": "/api/admin/backups"},
        "max_attempts": 1}),
    )
    .await
    .expect("send")
    .json()
    .await
    .expect("json");
    let id = task["id"].as_i64().expect("id");
    let mut status = Value::Null;
    for _ in 0..400 {
        let task: Value = client()
            .get(server.url(&format!("/api/queue/tasks/{id}")))
            .bearer_auth(API)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        status = task["status"].clone();
        if status == "dead" {
            assert!(
                task["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("401")),
                "{task}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, "dead");
    let list: Value = client()
        .get(server.url("/api/admin/backups"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(list, json!([]), "no backup was started");
}
