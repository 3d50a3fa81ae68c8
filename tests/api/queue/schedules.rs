//! Cron schedules: `/api/queue/schedules`, across restarts.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::{self, TestServer, client};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

async fn put(server: &TestServer, name: &str, body: Value) -> reqwest::Response {
    server
        .put_json(&format!("/api/queue/schedules/{name}"), &body)
        .await
}

fn stop(mut server: TestServer) {
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(20)), Some(0));
}

/// Gives a stopped instance's schedule `name` another pattern, as a PUT would but keeping
/// its next tick (so the schedule cannot fire while the test sets it up).
fn set_cron(data: &Path, name: &str, cron: &str) {
    let conn = rusqlite::Connection::open(data.join("toolshed.db")).expect("open");
    let changed = conn
        .execute(
            "UPDATE schedules SET cron = ?2 WHERE name = ?1",
            rusqlite::params![name, cron],
        )
        .expect("update");
    assert_eq!(changed, 1);
}

/// Moves a stopped instance's schedule `name` to fire at `at_ms`, as if time had passed.
fn set_next_run(data: &Path, name: &str, at_ms: i64) {
    let conn = rusqlite::Connection::open(data.join("toolshed.db")).expect("open");
    let changed = conn
        .execute(
            "UPDATE schedules SET next_run_at = ?2 WHERE name = ?1",
            rusqlite::params![name, at_ms],
        )
        .expect("update");
    assert_eq!(changed, 1);
}

/// Waits until schedule `name` satisfies `pred`.
async fn wait_schedule(server: &TestServer, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..800 {
        let schedule = server
            .get_json(&format!("/api/queue/schedules/{name}"))
            .await;
        if pred(&schedule) {
            return schedule;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "schedule {name} never got there: {}",
        server
            .get_json(&format!("/api/queue/schedules/{name}"))
            .await
    );
}

/// A task that stays pending for an hour: a run that has not finished.
fn slow_task() -> Value {
    json!({"payload": {"method": "GET", "path": "/api/health"}, "delay_ms": 3_600_000})
}

#[tokio::test]
async fn schedules_are_created_read_replaced_and_deleted_with_clear_errors() {
    let server = support::spawn();
    let created = put(
        &server,
        "new-year",
        json!({"cron": "0 0 1 1 *", "timezone": "Europe/Berlin", "task": slow_task()}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.expect("json");
    assert_eq!(body["catch_up"], true);
    assert_eq!(body["runs"], 0);
    let next = body["next_run_at"].as_i64().expect("next");
    // The next midnight of a 1 January in Berlin is 23:00 UTC on a 31 December.
    let seconds = next / 1000;
    assert_eq!(seconds % 86_400, 23 * 3600);
    assert!(next > now_ms() && next < now_ms() + 366 * 86_400_000);

    let replaced = put(
        &server,
        "new-year",
        json!({"cron": "0 0 1 1 *", "timezone": "Europe/Berlin", "task": slow_task(), "catch_up": false}),
    )
    .await;
    assert_eq!(replaced.status(), 200);
    let body: Value = replaced.json().await.expect("json");
    assert_eq!(body["catch_up"], false);
    assert_eq!(
        body["next_run_at"], next,
        "the same pattern keeps its next tick"
    );

    let list: Value = server.get_json("/api/queue/schedules").await;
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["new-year", "toolshed.backup"]);
    assert_eq!(list[1]["cron"], "@daily");
    assert_eq!(list[1]["task"]["kind"], "backup");

    for (name, body, status, needle) in [
        (
            "bad-cron",
            json!({"cron": "* * *", "task": slow_task()}),
            400,
            "cron",
        ),
        (
            "bad-seconds",
            json!({"cron": "0 0 0 * * *", "task": slow_task()}),
            400,
            "cron",
        ),
        (
            "bad-zone",
            json!({"cron": "@hourly", "timezone": "Mars/Olympus", "task": slow_task()}),
            400,
            "timezone",
        ),
        (
            "bad-kind",
            json!({"cron": "@hourly", "task": {"kind": "smoke-signals", "payload": {}}}),
            400,
            "smoke-signals",
        ),
        (
            "bad-payload",
            json!({"cron": "@hourly", "task": {"kind": "http", "payload": {"path": "/elsewhere"}}}),
            400,
            "task",
        ),
        (
            "toolshed.backup",
            json!({"cron": "@hourly", "task": slow_task()}),
            400,
            "TOOLSHED_BACKUP_SCHEDULE",
        ),
        (
            "bad name!",
            json!({"cron": "@hourly", "task": slow_task()}),
            400,
            "name",
        ),
        ("no-cron", json!({"task": slow_task()}), 422, "cron"),
        (
            "extra",
            json!({"cron": "@hourly", "task": slow_task(), "every": 5}),
            422,
            "every",
        ),
    ] {
        let response = put(&server, name, body).await;
        assert_eq!(response.status().as_u16(), status, "{name}");
        let error: Value = response.json().await.expect("json");
        assert!(
            error["error"].as_str().expect("error").contains(needle),
            "{name}: {error}"
        );
    }

    let deleted = client()
        .delete(server.url("/api/queue/schedules/new-year"))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        server.get("/api/queue/schedules/new-year").await.status(),
        404
    );
    let again = client()
        .delete(server.url("/api/queue/schedules/new-year"))
        .send()
        .await
        .expect("delete");
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn missed_ticks_are_caught_up_once_after_a_restart_and_runs_never_overlap() {
    let dir = support::temp_dir();
    let data = dir.path().join("data");
    let server = support::spawn_in(&data, &[("TOOLSHED_BACKUP_SCHEDULE", "off")]);
    // Made yearly, then made minutely while stopped: no tick can come before the test's own.
    for (name, catch_up) in [("catching-up", true), ("counting-only", false)] {
        let response = put(
            &server,
            name,
            json!({"cron": "0 0 1 1 *", "task": slow_task(), "catch_up": catch_up}),
        )
        .await;
        assert_eq!(response.status(), 201);
    }
    let list: Value = server.get_json("/api/queue/schedules").await;
    assert_eq!(list.as_array().expect("list").len(), 2, "backups are off");
    stop(server);

    // Down for five minute-ticks.
    let minute_ago_5 = (now_ms() / 60_000 - 5) * 60_000;
    set_cron(&data, "catching-up", "* * * * *");
    set_cron(&data, "counting-only", "* * * * *");
    set_next_run(&data, "catching-up", minute_ago_5);
    set_next_run(&data, "counting-only", minute_ago_5);
    let server = support::spawn_in(&data, &[("TOOLSHED_BACKUP_SCHEDULE", "off")]);
    let caught_up = wait_schedule(&server, "catching-up", |s| s["runs"] == 1).await;
    let missed = caught_up["missed"].as_u64().expect("missed");
    assert!(
        (5..=6).contains(&missed),
        "the other ticks are counted: {caught_up}"
    );
    assert_eq!(caught_up["last_task_status"], "pending");
    assert!(caught_up["next_run_at"].as_i64().expect("next") > now_ms());
    let counted = wait_schedule(&server, "counting-only", |s| {
        s["missed"].as_u64() >= Some(6)
    })
    .await;
    assert_eq!(counted["runs"], 0, "{counted}");
    assert_eq!(counted["last_task_id"], Value::Null);
    let tasks: Value = server.get_json("/api/queue/tasks?status=pending").await;
    assert_eq!(
        tasks["tasks"].as_array().expect("tasks").len(),
        1,
        "one task for five missed ticks"
    );
    stop(server);

    // The next tick comes while that run's task is still pending: skipped, not stacked.
    set_next_run(&data, "catching-up", now_ms() - 1_000);
    let server = support::spawn_in(&data, &[("TOOLSHED_BACKUP_SCHEDULE", "off")]);
    // (A minute may turn meanwhile: that tick is skipped too.)
    let skipped = wait_schedule(&server, "catching-up", |s| s["skipped"].as_u64() >= Some(1)).await;
    assert_eq!(skipped["runs"], 1, "{skipped}");
    assert_eq!(skipped["last_task_id"], caught_up["last_task_id"]);
}

#[tokio::test]
async fn the_backup_schedule_takes_a_backup_at_its_tick() {
    let dir = support::temp_dir();
    let data = dir.path().join("data");
    let server = support::spawn_in(
        &data,
        &[
            ("TOOLSHED_BACKUP_SCHEDULE", "0 3 * * *"),
            ("TOOLSHED_BACKUP_TIMEZONE", "Europe/Berlin"),
        ],
    );
    let schedule = server
        .get_json("/api/queue/schedules/toolshed.backup")
        .await;
    assert_eq!(schedule["cron"], "0 3 * * *");
    assert_eq!(schedule["timezone"], "Europe/Berlin");
    stop(server);
    set_next_run(&data, "toolshed.backup", now_ms() - 1_000);
    let server = support::spawn_in(
        &data,
        &[
            ("TOOLSHED_BACKUP_SCHEDULE", "0 3 * * *"),
            ("TOOLSHED_BACKUP_TIMEZONE", "Europe/Berlin"),
        ],
    );
    let fired = wait_schedule(&server, "toolshed.backup", |s| {
        s["last_task_status"] == "succeeded"
    })
    .await;
    assert_eq!(fired["runs"], 1);
    let backups: Value = server.get_json("/api/admin/backups").await;
    assert_eq!(backups.as_array().expect("list").len(), 1, "{backups}");
    assert_eq!(backups[0]["state"], "done");
}

#[tokio::test]
async fn a_bad_backup_schedule_setting_is_refused_at_start() {
    let output = support::output_within(
        std::process::Command::new(support::binary())
            .env_clear()
            .env("PORT", "0")
            .env("TOOLSHED_BACKUP_SCHEDULE", "every day")
            .env("TOOLSHED_BACKUP_TIMEZONE", "Nowhere/Land")
            .arg("serve"),
        Duration::from_secs(20),
    );
    assert_eq!(output.status.code(), Some(1));
    let said = support::said(&output);
    assert!(said.contains("TOOLSHED_BACKUP_SCHEDULE"), "{said}");
    assert!(said.contains("TOOLSHED_BACKUP_TIMEZONE"), "{said}");
}
