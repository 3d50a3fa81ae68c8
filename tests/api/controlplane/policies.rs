//! Restart policies decide what an instance whose process ended becomes; limits are the
//! kernel's, on the instance's own process.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Plane, signal, start_plane};
use crate::support;

/// Waits until instance `id` runs on a process other than `old`; its record then.
async fn restarted(plane: &Plane, id: &str, old: u64) -> Value {
    plane
        .until(
            &format!("/instances/{id}"),
            Duration::from_secs(30),
            "not restarted",
            |now| now["state"] == "started" && now["pid"].as_u64().is_some_and(|pid| pid != old),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policies_decide_what_an_ended_instance_becomes() {
    let dir = support::temp_dir();
    let plane = start_plane(dir.path());

    // `no`: a crash leaves it failed, and wanted stopped, until its owner starts it.
    let (never, pid) = plane
        .run(json!({"user_id": "no", "restart": {"policy": "no"}}))
        .await;
    signal(pid, "KILL");
    let failed = plane.wait(&never, "failed").await;
    assert_eq!(failed["desired"], "stopped", "{failed}");
    assert!(
        failed["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("policy is no")),
        "{failed}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, still) = plane
        .call("GET", &format!("/instances/{never}"), None)
        .await;
    assert_eq!(still["state"], "failed", "not started again: {still}");
    assert_eq!(still["pid"], Value::Null, "{still}");
    let (status, _) = plane
        .call("POST", &format!("/instances/{never}/start"), None)
        .await;
    assert_eq!(status, 200);
    plane.wait(&never, "started").await;

    // `on-failure` once per window: the first crash is restarted, the second is not.
    let (once, pid) = plane
        .run(json!({"user_id": "once", "restart": {"policy": "on-failure", "max_restarts": 1, "window_s": 600}}))
        .await;
    signal(pid, "KILL");
    let again = restarted(&plane, &once, pid).await;
    assert_eq!(again["restarts"], 1, "{again}");
    signal(again["pid"].as_u64().expect("pid"), "KILL");
    let looped = plane.wait(&once, "crash_loop").await;
    assert!(
        looped["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("on-failure")),
        "{looped}"
    );
    // Started again by its owner: a fresh budget, so the next crash is restarted.
    let (status, _) = plane
        .call("POST", &format!("/instances/{once}/start"), None)
        .await;
    assert_eq!(status, 200);
    let fresh = plane.wait(&once, "started").await;
    let fresh_pid = fresh["pid"].as_u64().expect("pid");
    signal(fresh_pid, "KILL");
    restarted(&plane, &once, fresh_pid).await;

    // `on-failure` and a clean exit (SIGTERM drains, then exits 0): it stays stopped.
    let (clean, pid) = plane
        .run(json!({"user_id": "clean", "restart": {"policy": "on-failure"}}))
        .await;
    signal(pid, "TERM");
    let stopped = plane.wait(&clean, "stopped").await;
    assert_eq!(stopped["desired"], "stopped", "{stopped}");
    assert_eq!(stopped["restarts"], 0, "{stopped}");

    // `always` (the default): even a clean exit is started again.
    let (always, pid) = plane.run(json!({"user_id": "always"})).await;
    assert_eq!(
        plane
            .call("GET", &format!("/instances/{always}"), None)
            .await
            .1["restart"]["policy"],
        "always"
    );
    signal(pid, "TERM");
    let back = restarted(&plane, &always, pid).await;
    assert_eq!(back["restarts"], 1, "{back}");
}

/// A field of `/proc/<pid>/limits` ("Max open files"): its soft limit.
fn soft_limit(pid: u64, name: &str) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {limits}"));
    line[name.len()..]
        .split_whitespace()
        .next()
        .expect("soft limit")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_set_on_the_instance_process_and_bounds_are_checked() {
    let dir = support::temp_dir();
    let plane = start_plane(dir.path());
    let (id, pid) = plane
        .run(json!({"user_id": "small", "limits": {"data_mb": 512, "open_files": 256, "nice": 10}}))
        .await;
    assert_eq!(soft_limit(pid, "Max data size"), (512u64 << 20).to_string());
    assert_eq!(soft_limit(pid, "Max open files"), "256");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .collect();
    // Field 19 of stat is the nice value; `fields` starts at field 3.
    assert_eq!(fields[16], "10", "{stat}");
    let (_, body) = plane.call("GET", &format!("/instances/{id}"), None).await;
    assert_eq!(
        body["limits"],
        json!({"data_mb": 512, "open_files": 256, "nice": 10})
    );
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
    assert!(
        exe.to_string_lossy().contains("toolshed"),
        "the limited process is the instance itself: {exe:?}"
    );

    for (body, says) in [
        (
            json!({"user_id": "u", "limits": {"data_mb": 64}}),
            "data_mb",
        ),
        (
            json!({"user_id": "u", "limits": {"open_files": 8}}),
            "open_files",
        ),
        (json!({"user_id": "u", "limits": {"nice": 20}}), "nice"),
        (
            json!({"user_id": "u", "restart": {"policy": "on-failure", "max_restarts": 0}}),
            "max_restarts",
        ),
    ] {
        let (status, answer) = plane.call("POST", "/instances", Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| e.contains(says)),
            "{answer}"
        );
    }
    for body in [
        json!({"user_id": "u", "limits": {"cpus": 1}}),
        json!({"user_id": "u", "restart": {"policy": "sometimes"}}),
    ] {
        let (status, answer) = plane.call("POST", "/instances", Some(body)).await;
        assert_eq!(status, 422, "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_without_hardware_evidence_fails_where_hardware_is_required() {
    let dir = support::temp_dir();
    let plane = super::start_plane_with(dir.path(), &["--require-hardware"]);
    let created = plane.create("enclave").await;
    let id = created["id"].as_str().expect("id");
    // Started, checked, stopped, again with backoff, until it counts as a crash loop.
    let (status, body) = plane
        .call(
            "GET",
            &format!("/instances/{id}/wait?state=crash_loop&timeout_s=60"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let error = body["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("hardware report was required"),
        "says why: {body}"
    );
    assert_eq!(body["pid"], Value::Null, "not left running: {body}");
}
