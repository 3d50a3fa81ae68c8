//! Two control planes on one store: one leads (acts, answers), the other stands by (503)
//! and takes over, instances and running rollouts included, when the first is gone. On
//! SQLite (one data directory, a file lock) and on a real PostgreSQL server (an advisory
//! lock, released when the leader's session ends).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Plane, alive, release, signal, start_plane_with};
use crate::support::{self, postgres};

const TAKE_OVER: Duration = Duration::from_secs(10);

async fn stands_by(plane: &Plane) {
    let (status, body) = plane.call("GET", "/instances", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("standing by")),
        "{body}"
    );
    let (status, spec) = plane.call("GET", "/openapi.json", None).await;
    assert_eq!(status, 200, "its API's description still answers");
    assert!(spec["paths"]["/instances"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_the_instances_and_carries_on_a_rollout() {
    let dir = support::temp_dir();
    let pair = minisign::KeyPair::generate_unencrypted_keypair().expect("key pair");
    let secret = dir.path().join("release.key");
    std::fs::write(&secret, pair.sk.to_box(None).expect("box").into_string()).expect("key");
    let v1 = release(dir.path(), &secret, "1.0.0", None);
    let v2 = release(dir.path(), &secret, "2.0.0", None);
    let data = dir.path().join("plane");
    let key = pair.pk.to_base64();
    let first = start_plane_with(&data, &["--release-key", &key]);
    first.leads(TAKE_OVER).await;
    let second = start_plane_with(&data, &["--release-key", &key]);
    stands_by(&second).await;

    let add = |path: &Path| json!({"path": path.to_str().expect("utf-8")});
    for path in [&v1, &v2] {
        let (status, added) = first.call("POST", "/releases", Some(add(path))).await;
        assert_eq!(status, 201, "{added}");
    }
    let mut ids = Vec::new();
    for user in ["ada", "alan"] {
        let (id, _) = first
            .run(json!({"user_id": user, "version": "1.0.0"}))
            .await;
        ids.push(id);
    }
    // A rollout slow enough to be cut: the first leader goes once the canary has moved.
    let (status, rollout) = first
        .call(
            "POST",
            "/rollouts",
            Some(json!({"version": "2.0.0", "min_healthy_time_s": 3, "healthy_deadline_s": 60})),
        )
        .await;
    assert_eq!(status, 202, "{rollout}");
    let path = format!("/rollouts/{}", rollout["id"].as_str().expect("id"));
    first
        .until(
            &path,
            Duration::from_secs(30),
            "the canary never moved",
            |now| now["moved"].as_array().is_some_and(|m| m.len() == 1),
        )
        .await;
    first.stop_leaving_instances();

    second.leads(TAKE_OVER).await;
    let done = second
        .until(
            &path,
            Duration::from_secs(90),
            "rollout not carried on",
            |now| now["state"] == "succeeded" || now["state"] == "failed",
        )
        .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["done"], 2, "{done}");
    for id in &ids {
        let now = second.wait(id, "started").await;
        assert_eq!(now["version"], "2.0.0", "{now}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_planes_on_postgresql_share_state_and_one_takes_over() {
    let Some(server) = postgres::start() else {
        return;
    };
    let dir = support::temp_dir();
    let data = dir.path().join("plane");
    let url = ["--database-url", server.url.as_str()];
    let mut first = start_plane_with(&data, &url);
    first.leads(TAKE_OVER).await;
    let second = start_plane_with(&data, &url);
    stands_by(&second).await;
    assert!(
        !data.join("controlplane.db").exists(),
        "the state is in PostgreSQL, not in a SQLite file"
    );

    let mut running = Vec::new();
    for user in ["ada", "alan"] {
        running.push(first.run(json!({"user_id": user})).await);
    }
    // The leader dies without a word: its session ends, and with it the lock.
    signal(first.child.id().into(), "KILL");
    let _ = first.child.wait();
    first.dir = data.join("not-here");
    drop(first);

    second.leads(TAKE_OVER).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for (id, pid) in &running {
        let (_, now) = second.call("GET", &format!("/instances/{id}"), None).await;
        assert_eq!(now["state"], "started", "{now}");
        assert_eq!(
            now["pid"].as_u64(),
            Some(*pid),
            "taken up, not restarted: {now}"
        );
        assert_eq!(now["restarts"], 0, "{now}");
    }
    let (third, _) = second.run(json!({"user_id": "grace"})).await;
    let (status, _) = second
        .call("DELETE", &format!("/instances/{third}"), None)
        .await;
    assert_eq!(status, 200);
    let (_, listed) = second.call("GET", "/instances", None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");

    // Without its database it cannot know it still leads: it stops, the instances run on.
    drop(server);
    let mut second = second;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = second.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running without its database"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "it says it failed");
    for (_, pid) in &running {
        assert!(alive(*pid), "instances outlive their control plane");
    }
}
