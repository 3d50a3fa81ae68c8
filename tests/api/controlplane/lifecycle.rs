//! `toolshed controlplane serve`: instances started, told apart by their tokens, restarted
//! after a kill with their data, stopped, destroyed, and taken up again by a restarted
//! control plane.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Plane, alive, release, start_plane, start_plane_with};
use crate::support::{self, client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_keep_to_their_tokens_come_back_after_a_kill_and_go_when_deleted() {
    let dir = support::temp_dir();
    let plane = start_plane(dir.path());
    let mut instances = Vec::new();
    for n in 0..10 {
        instances.push(plane.create(&format!("user-{n}")).await);
    }
    for instance in &instances {
        let started = plane
            .wait(instance["id"].as_str().expect("id"), "started")
            .await;
        assert!(started["pid"].is_u64());
    }
    let url = |i: usize| instances[i]["url"].as_str().expect("url").to_owned();
    let token = |i: usize| instances[i]["token"].as_str().expect("token").to_owned();
    for i in 0..instances.len() {
        let health = client()
            .get(format!("{}/api/health", url(i)))
            .send()
            .await
            .expect("health");
        assert_eq!(health.status(), 200);
        let own = client()
            .get(format!("{}/api/kv/list", url(i)))
            .bearer_auth(token(i))
            .send()
            .await
            .expect("own");
        assert_eq!(own.status(), 200, "instance {i} takes its own token");
        let other = client()
            .get(format!("{}/api/kv/list", url(i)))
            .bearer_auth(token((i + 1) % instances.len()))
            .send()
            .await
            .expect("other");
        assert_eq!(other.status(), 401, "instance {i} refuses another's token");
    }
    let (_, listed) = plane.call("GET", "/instances", None).await;
    assert_eq!(listed.as_array().expect("list").len(), 10);

    // Every running instance is scraped: its memory shows per instance id in the fleet's
    // metrics and in its own record.
    let scraped_by = Instant::now() + Duration::from_secs(20);
    let fleet_text = loop {
        let text = plane.fleet_metrics().await;
        let scraped = text
            .lines()
            .filter(|l| l.starts_with("toolshed_fleet_instance_resident_memory_bytes{"))
            .count();
        if scraped == 10 {
            break text;
        }
        assert!(
            Instant::now() < scraped_by,
            "not every instance scraped: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        fleet_text.contains(r#"toolshed_fleet_instances{state="started"} 10"#),
        "{fleet_text}"
    );
    assert!(
        !fleet_text.contains("user-"),
        "no user id in the fleet's metrics"
    );
    let (_, one) = plane
        .call(
            "GET",
            &format!("/instances/{}", instances[2]["id"].as_str().expect("id")),
            None,
        )
        .await;
    assert!(
        one["usage"]["resident_memory_bytes"].as_f64() > Some(1e6),
        "{one}"
    );
    if let Some((ok, said)) = support::promtool(&fleet_text) {
        assert!(ok, "promtool check metrics: {said}\n{fleet_text}");
    }
    assert!(listed[0].get("token").is_none(), "a token is shown once");

    // Killed: started again within seconds, with its data.
    let id0 = instances[0]["id"].as_str().expect("id").to_owned();
    let put = client()
        .put(format!("{}/api/kv/entries/notes/first", url(0)))
        .bearer_auth(token(0))
        .json(&json!({"value": "kept"}))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);
    let (_, before) = plane.call("GET", &format!("/instances/{id0}"), None).await;
    let old_pid = before["pid"].as_u64().expect("pid");
    Command::new("kill")
        .args(["-KILL", &old_pid.to_string()])
        .status()
        .expect("kill");
    let killed_at = Instant::now();
    let again = loop {
        let (_, now) = plane.call("GET", &format!("/instances/{id0}"), None).await;
        if now["state"] == "started" && now["pid"].as_u64() != Some(old_pid) {
            break now;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "not restarted: {now}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(again["restarts"], 1, "{again}");
    let entry: Value = client()
        .get(format!("{}/api/kv/entries/notes/first", url(0)))
        .bearer_auth(token(0))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(entry["value"], "kept");

    // Deleted: its process is gone, its id too.
    let id1 = instances[1]["id"].as_str().expect("id").to_owned();
    let (_, one) = plane.call("GET", &format!("/instances/{id1}"), None).await;
    let pid1 = one["pid"].as_u64().expect("pid");
    let (status, gone) = plane
        .call("DELETE", &format!("/instances/{id1}?purge=true"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(gone["state"], "destroyed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid1) {
        assert!(Instant::now() < deadline, "pid {pid1} still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        plane
            .call("GET", &format!("/instances/{id1}"), None)
            .await
            .0,
        404
    );
    assert!(!dir.path().join("instances").join(&id1).exists(), "purged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_control_plane_takes_up_its_instances_without_restarting_them() {
    let dir = support::temp_dir();
    let plane = start_plane(dir.path());
    let mut pids = Vec::new();
    let mut ids = Vec::new();
    for user in ["ada", "alan"] {
        let created = plane.create(user).await;
        let id = created["id"].as_str().expect("id").to_owned();
        let started = plane.wait(&id, "started").await;
        pids.push(started["pid"].as_u64().expect("pid"));
        ids.push(id);
    }
    plane.stop_leaving_instances();
    for pid in &pids {
        assert!(alive(*pid), "instances outlive their control plane");
    }

    let plane = start_plane(dir.path());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (id, pid) in ids.iter().zip(&pids) {
        let (_, now) = plane.call("GET", &format!("/instances/{id}"), None).await;
        assert_eq!(now["state"], "started", "{now}");
        assert_eq!(now["pid"].as_u64(), Some(*pid), "the same process: {now}");
        assert_eq!(now["restarts"], 0, "{now}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_can_be_awaited_and_bad_requests_get_json_errors() {
    let dir = support::temp_dir();
    let plane = start_plane(dir.path());
    let anonymous = client()
        .get(format!("{}/instances", plane.base))
        .send()
        .await
        .expect("send");
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.json::<Value>().await.expect("json")["error"].is_string());

    let (status, created) = plane
        .call(
            "POST",
            "/instances",
            Some(json!({"user_id": "grace", "start": false})),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id").to_owned();
    plane.wait(&id, "stopped").await;
    let (status, body) = plane
        .call(
            "GET",
            &format!("/instances/{id}/wait?state=started&timeout_s=1"),
            None,
        )
        .await;
    assert_eq!(status, 408, "{body}");
    assert!(body["error"].as_str().expect("error").contains("stopped"));
    let (status, _) = plane
        .call("POST", &format!("/instances/{id}/start"), None)
        .await;
    assert_eq!(status, 200);
    let started = plane.wait(&id, "started").await;
    let (status, _) = plane
        .call("POST", &format!("/instances/{id}/restart"), None)
        .await;
    assert_eq!(status, 200);
    let restarted = plane.wait(&id, "started").await;
    assert_ne!(restarted["pid"], started["pid"]);
    assert_eq!(restarted["restarts"], 1);
    let (status, _) = plane
        .call("POST", &format!("/instances/{id}/stop"), None)
        .await;
    assert_eq!(status, 200);
    plane.wait(&id, "stopped").await;

    for (method, path, body, expected) in [
        (
            "POST",
            "/instances".to_owned(),
            Some(json!({"user_id": ""})),
            400,
        ),
        (
            "POST",
            "/instances".to_owned(),
            Some(json!({"user_id": "x", "size": 3})),
            422,
        ),
        (
            "GET",
            format!("/instances/{id}/wait?state=asleep"),
            None,
            400,
        ),
        (
            "GET",
            format!("/instances/{id}/wait?timeout_s=61"),
            None,
            400,
        ),
        ("GET", "/instances/i-nope".to_owned(), None, 404),
        ("POST", "/instances/i-nope/start".to_owned(), None, 404),
        ("GET", "/nowhere".to_owned(), None, 404),
    ] {
        let (status, answer) = plane.call(method, &path, body).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        assert!(answer["error"].is_string(), "{method} {path}: {answer}");
    }
    // The fleet's view: instance ids, never user ids; memory from the instance's own
    // /metrics, scraped with a token the user's does not replace.
    let fleet_text = loop {
        let text = plane.fleet_metrics().await;
        if text.contains("toolshed_fleet_instance_resident_memory_bytes{")
            || text.contains("\"stopped\"} 1")
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        fleet_text.contains(r#"toolshed_fleet_instances{state="stopped"} 1"#),
        "{fleet_text}"
    );
    assert!(
        fleet_text.contains(&format!(
            r#"toolshed_fleet_instance_up{{instance="{id}"}} 0"#
        )),
        "{fleet_text}"
    );
    assert!(!fleet_text.contains("grace"), "no user id: {fleet_text}");

    let (status, spec) = plane.call("GET", "/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/instances/{id}/wait"].is_object());
}

async fn rollout_outcome(plane: &Plane, body: Value) -> Value {
    let (status, started) = plane.call("POST", "/rollouts", Some(body)).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().expect("id").to_owned();
    plane
        .until(
            &format!("/rollouts/{id}"),
            Duration::from_secs(90),
            "rollout not finished",
            |now| now["state"] == "succeeded" || now["state"] == "failed",
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_signed_releases_run_and_a_rollout_moves_all_or_reverts() {
    let dir = support::temp_dir();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("out");
    let pair = minisign::KeyPair::generate_unencrypted_keypair().expect("key pair");
    let secret = dir.path().join("release.key");
    std::fs::write(&secret, pair.sk.to_box(None).expect("box").into_string()).expect("key");
    let v1 = release(&out, &secret, "1.0.0", None);
    let v2 = release(&out, &secret, "2.0.0", None);
    // Starts, but never answers its health probe.
    let hung = release(&out, &secret, "3.0.0", Some(b"#!/bin/sh\nexec sleep 600\n"));
    let tampered = release(&out, &secret, "4.0.0", Some(b"#!/bin/sh\nexit 0\n"));
    std::fs::write(&tampered, b"#!/bin/sh\necho changed\n").expect("tamper");

    let data = dir.path().join("plane");
    let plane = start_plane_with(&data, &["--release-key", &pair.pk.to_base64()]);
    let add = |path: &Path| json!({"path": path.to_str().expect("utf-8")});
    let (status, added) = plane.call("POST", "/releases", Some(add(&v1))).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["version"], "1.0.0");
    let (status, refused) = plane.call("POST", "/releases", Some(add(&tampered))).await;
    assert_eq!(status, 400, "a changed binary is refused: {refused}");
    let (_, listed) = plane.call("GET", "/releases", None).await;
    assert_eq!(listed.as_array().expect("list").len(), 1);

    let mut ids = Vec::new();
    for user in ["ada", "alan", "grace"] {
        let created = plane.create(user).await;
        assert_eq!(created["version"], "1.0.0", "the newest release by default");
        let id = created["id"].as_str().expect("id").to_owned();
        plane.wait(&id, "started").await;
        ids.push(id);
    }
    for path in [&v2, &hung] {
        let (status, added) = plane.call("POST", "/releases", Some(add(path))).await;
        assert_eq!(status, 201, "{added}");
    }

    // Everyone to 2.0.0: canary, then batches of two.
    let done = rollout_outcome(
        &plane,
        json!({"version": "2.0.0", "max_parallel": 2, "min_healthy_time_s": 1, "healthy_deadline_s": 60}),
    )
    .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["done"], 3);
    for id in &ids {
        // (Read again if the process changed between the answer and the look at it.)
        let deadline = Instant::now() + Duration::from_secs(20);
        let exe = loop {
            let now = plane.wait(id, "started").await;
            assert_eq!(now["version"], "2.0.0");
            if let Ok(exe) = std::fs::read_link(format!("/proc/{}/exe", now["pid"])) {
                break exe;
            }
            assert!(Instant::now() < deadline, "no process for {id}");
        };
        assert_eq!(
            exe,
            data.join("releases/2.0.0/toolshed"),
            "runs the kept release"
        );
    }

    // Back to 1.0.0 only when asked.
    let (status, body) = plane
        .call("POST", "/rollouts", Some(json!({"version": "1.0.0"})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("allow_downgrade")
    );

    // A release whose binary changed on disk after it was registered is not launched.
    std::fs::write(data.join("releases/3.0.0/toolshed.minisig"), b"garbage").expect("break");
    let (status, body) = plane
        .call("POST", "/rollouts", Some(json!({"version": "3.0.0"})))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = plane
        .call("POST", "/rollouts", Some(json!({"version": "9.9.9"})))
        .await;
    assert_eq!(status, 400, "{body}");

    // A release that never gets healthy: the canary fails and goes back; nothing else moves.
    let sig = std::fs::read(out.join("toolshed-3.0.0.minisig")).expect("signature");
    std::fs::write(data.join("releases/3.0.0/toolshed.minisig"), sig).expect("restore");
    let failed = rollout_outcome(
        &plane,
        json!({"version": "3.0.0", "min_healthy_time_s": 1, "healthy_deadline_s": 3}),
    )
    .await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().expect("error").contains("back"),
        "{failed}"
    );
    for id in &ids {
        let now = plane.wait(id, "started").await;
        assert_eq!(now["version"], "2.0.0", "{now}");
    }

    // A signed release that runs, answers, but is not the binary it claims to be (a script
    // that starts another): its attestation reports another hash, so it is failed.
    let script = format!("#!/bin/sh\nexec {} \"$@\"\n", support::binary());
    let impostor = release(&out, &secret, "5.0.0", Some(script.as_bytes()));
    let (status, added) = plane.call("POST", "/releases", Some(add(&impostor))).await;
    assert_eq!(status, 201, "{added}");
    let (status, created) = plane
        .call(
            "POST",
            "/instances",
            Some(json!({"user_id": "mallory", "version": "5.0.0"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let (_, now) = plane.call("GET", &format!("/instances/{id}"), None).await;
        if now["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot prove"))
        {
            break now;
        }
        assert!(Instant::now() < deadline, "not caught: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(failed["state"], "started", "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instances_history_shows_its_load_from_outside() {
    let dir = support::temp_dir();
    let plane = start_plane_with(dir.path(), &["--scrape-interval-ms", "200"]);
    let created = plane.create("ada").await;
    let id = created["id"].as_str().expect("id").to_owned();
    let token = created["token"].as_str().expect("token").to_owned();
    let started = plane.wait(&id, "started").await;
    let url = started["url"].as_str().expect("url").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let busy = loop {
        for _ in 0..20 {
            let answer = client()
                .get(format!("{url}/api/kv/entries/notes/one"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("request");
            assert_eq!(answer.status(), 404, "read as the user, not found");
        }
        let (status, history) = plane
            .call("GET", &format!("/instances/{id}/history"), None)
            .await;
        assert_eq!(status, 200, "{history}");
        assert_eq!(history["interval_ms"], 200);
        let samples = history["samples"].as_array().expect("samples").clone();
        if let Some(busy) = samples
            .iter()
            // The control plane's own probes make 2 a second: more is the test's load.
            .find(|s| s["requests_per_s"].as_f64().is_some_and(|r| r > 10.0))
        {
            break busy.clone();
        }
        assert!(Instant::now() < deadline, "no load seen: {history}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        busy["mean_latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{busy}"
    );
    assert!(
        busy["resident_memory_bytes"]
            .as_f64()
            .is_some_and(|b| b > 1e6),
        "{busy}"
    );
    assert_eq!(busy["server_errors_per_s"], 0.0, "{busy}");
    let (status, _) = plane
        .call("GET", "/instances/i-nothing/history", None)
        .await;
    assert_eq!(status, 404);
}
