//! A real S3-compatible server for the backup tests: moto in server mode, from the venv
//! `.ci/install-tools` makes (`target/moto-venv`), or `moto_server` on the PATH. Where it is
//! missing the tests that need it are skipped, unless `TOOLSHED_REQUIRE_TOOLS` is set
//! (`.ci/run` sets it): then it must be there.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running moto server; stopped on drop.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .map(|_| PathBuf::from("moto_server"))
}

/// Starts moto with `bucket` made, or `None` when moto is not installed (and not required).
pub async fn start(bucket: &str) -> Option<Moto> {
    let Some(program) = program() else {
        assert!(
            std::env::var_os("TOOLSHED_REQUIRE_TOOLS").is_none(),
            "moto_server is required here: run .ci/install-tools"
        );
        eprintln!("moto_server is not installed (.ci/install-tools): skipped");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(made) = client.put(format!("{}/{bucket}", moto.url)).send().await
            && made.status().is_success()
        {
            return Some(moto);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("moto_server did not start on port {port}");
}
