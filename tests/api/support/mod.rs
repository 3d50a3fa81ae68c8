//! Test helpers: start the real `toolshed` binary on port 0 with a fresh data directory and
//! talk HTTP to it.
#![allow(dead_code)]

pub mod mock_img;
pub mod mock_llm;
pub mod mock_speech;
pub mod moto;
pub mod postgres;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub use tempfile::TempDir;

/// A fresh temporary directory, removed on drop.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("toolshed-test-")
        .tempdir()
        .expect("create temp dir")
}

/// A running server process; killed on drop.
pub struct TestServer {
    pub child: Child,
    pub base: String,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub data_dir: PathBuf,
    _temp: Option<TempDir>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_toolshed")
}

/// Starts the server with a fresh data dir and extra env vars.
pub fn spawn_with(env: &[(&str, &str)]) -> TestServer {
    let temp = temp_dir();
    let dir = temp.path().to_owned();
    let mut server = spawn_in(&dir, env);
    server._temp = Some(temp);
    server
}

/// Starts the server with defaults and a fresh data dir.
pub fn spawn() -> TestServer {
    spawn_with(&[])
}

/// Starts the server on an existing data dir (for restart tests).
pub fn spawn_in(data_dir: &Path, env: &[(&str, &str)]) -> TestServer {
    spawn_program(Path::new(binary()), data_dir, env)
}

/// Starts `program` (a copy of the binary, say) as the server on `data_dir`.
pub fn spawn_program(program: &Path, data_dir: &Path, env: &[(&str, &str)]) -> TestServer {
    let mut command = Command::new(program);
    command
        .arg("serve")
        .env_clear()
        .env("PORT", "0")
        .env("ENV", "test")
        .env("LOG_FORMAT", "json")
        .env("TOOLSHED_DATA_DIR", data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start toolshed");
    let stdout = child.stdout.take().expect("stdout");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (addr_tx, addr_rx) = mpsc::channel();
    let sink = logs.clone();
    std::thread::spawn(move || {
        let mut addr_tx = Some(addr_tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &addr_tx
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "listening"
                && let Some(addr) = v["addr"].as_str()
            {
                let _ = tx.send(addr.to_owned());
                addr_tx = None;
            }
            sink.lock().expect("logs").push(line);
        }
    });
    let addr = match addr_rx.recv_timeout(Duration::from_secs(20)) {
        Ok(addr) => addr,
        Err(_) => {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "server did not start: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    };
    TestServer {
        child,
        base: format!("http://{addr}"),
        logs,
        data_dir: data_dir.to_owned(),
        _temp: None,
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GETs `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        client().get(self.url(path)).send().await.expect("send")
    }

    /// GETs `path` and parses the answer as JSON, whatever its status.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).await.json().await.expect("json")
    }

    /// POSTs `body` as JSON to `path`.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        client()
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("send")
    }

    /// PUTs `body` as JSON to `path`.
    pub async fn put_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        client()
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("send")
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log lines so far, parsed as JSON (others skipped).
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .expect("logs")
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until a log line matches `pred`.
    pub fn wait_for_log(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        for _ in 0..800 {
            if let Some(line) = self.log_lines().into_iter().find(|l| pred(l)) {
                return line;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("no matching log line in {:#?}", self.log_lines());
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a finished command printed, stdout then stderr.
/// Runs `command` to its end, or kills it after `within` (a server that should have refused
/// to start would otherwise serve for ever).
pub fn output_within(command: &mut Command, within: Duration) -> std::process::Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let deadline = std::time::Instant::now() + within;
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// `promtool check metrics` on `text`: `None` when promtool is not installed (`.ci/run`
/// installs it and sets `TOOLSHED_REQUIRE_TOOLS`, so there it must be).
pub fn promtool(text: &str) -> Option<(bool, String)> {
    use std::io::Write;
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(_) if std::env::var_os("TOOLSHED_REQUIRE_TOOLS").is_none() => return None,
        Err(e) => panic!("promtool is required here: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("promtool");
    Some((output.status.success(), said(&output)))
}

pub fn said(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}
