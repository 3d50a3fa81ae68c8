//! `toolshed controlplane serve`, black-box: `lifecycle` (instances, tokens, kills,
//! releases, rollouts), `policies` (restart policies and limits), `standby` (two control
//! planes on one store, SQLite and PostgreSQL). Here: a control plane as a test holds it.

mod lifecycle;
mod policies;
mod standby;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{self, client};

pub const ADMIN: &str = "controlplane-token-0123456789";

/// A running control plane; killed on drop, and with it every instance it started (they
/// run in process groups of their own and would outlive the test).
pub struct Plane {
    pub child: Child,
    pub base: String,
    pub dir: PathBuf,
}

impl Drop for Plane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in instance_pids(&self.dir) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The pids of the instances under `dir`, from their data directories' lock files.
pub fn instance_pids(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(dir.join("instances")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("data/toolshed.lock")).ok())
        .filter_map(|pid| pid.trim().parse().ok())
        .collect()
}

pub fn start_plane(dir: &Path) -> Plane {
    start_plane_with(dir, &[])
}

pub fn start_plane_with(dir: &Path, args: &[&str]) -> Plane {
    let mut child = Command::new(support::binary())
        .args(["controlplane", "serve", "--port", "0"])
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_clear()
        .env("TOOLSHED_CONTROLPLANE_TOKENS", ADMIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the control plane");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "control plane listening"
                && let (Some(tx), Some(addr)) = (tx.take(), v["addr"].as_str())
            {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the control plane listens");
    Plane {
        child,
        base: format!("http://{addr}"),
        dir: dir.to_owned(),
    }
}

impl Plane {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = client()
            .request(
                method.parse().expect("method"),
                format!("{}{path}", self.base),
            )
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn create(&self, user: &str) -> Value {
        let (status, body) = self
            .call("POST", "/instances", Some(json!({"user_id": user})))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn wait(&self, id: &str, state: &str) -> Value {
        let (status, body) = self
            .call(
                "GET",
                &format!("/instances/{id}/wait?state={state}&timeout_s=30"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

pub fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

impl Plane {
    /// Creates an instance from `body` (a `POST /instances` request) and waits for it to run.
    pub async fn run(&self, body: Value) -> (String, u64) {
        let (status, created) = self.call("POST", "/instances", Some(body)).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_owned();
        let started = self.wait(&id, "started").await;
        (id, started["pid"].as_u64().expect("pid"))
    }

    /// Reads `path` until `done` holds of its answer (which it returns), at most `within`;
    /// `waiting_for` says what in the failure.
    pub async fn until(
        &self,
        path: &str,
        within: Duration,
        waiting_for: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let (_, now) = self.call("GET", path, None).await;
            if done(&now) {
                return now;
            }
            assert!(std::time::Instant::now() < deadline, "{waiting_for}: {now}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `GET /fleet/metrics`, as text.
    pub async fn fleet_metrics(&self) -> String {
        client()
            .get(format!("{}/fleet/metrics", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("fleet")
            .text()
            .await
            .expect("text")
    }

    /// Waits until this control plane leads (its API stops answering 503).
    pub async fn leads(&self, within: Duration) {
        let deadline = std::time::Instant::now() + within;
        loop {
            let (status, body) = self.call("GET", "/instances", None).await;
            if status != 503 {
                assert_eq!(status, 200, "{body}");
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still standing by after {within:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops it with SIGTERM and waits, leaving its instances running.
    pub fn stop_leaving_instances(mut self) {
        signal(self.child.id().into(), "TERM");
        let _ = self.child.wait();
        // Its drop would kill the instances.
        self.dir = self.dir.join("not-here");
    }
}

pub fn signal(pid: u64, name: &str) {
    Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("kill");
}

/// A copy of the test binary (or `content`) signed as `version` with `secret`, in `dir`.
pub fn release(dir: &Path, secret: &Path, version: &str, content: Option<&[u8]>) -> PathBuf {
    let file = dir.join(format!("toolshed-{version}"));
    match content {
        Some(bytes) => std::fs::write(&file, bytes).expect("write"),
        None => {
            std::fs::copy(support::binary(), &file).expect("copy");
        }
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("mode");
    let out = Command::new(support::binary())
        .args(["sign", "--secret-key"])
        .arg(secret)
        .args([
            "--trusted-comment",
            &format!("timestamp:1\tfile:toolshed\ttoolshed:{version}"),
        ])
        .arg(&file)
        .env_clear()
        .output()
        .expect("sign");
    assert!(out.status.success(), "{}", support::said(&out));
    file
}
