//! A real PostgreSQL server of the test's own: a fresh cluster in a temp dir on a free port
//! on 127.0.0.1, stopped (and its files gone) on drop. PostgreSQL refuses to run as root,
//! so as root the cluster belongs to, and runs as, the `postgres` user (`setpriv`, which
//! execs: the child is the postmaster itself).
//! Debian's package puts the server programs in `/usr/lib/postgresql/<version>/bin`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct Postgres {
    child: Child,
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub url: String,
    _dir: TempDir,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: the fast shutdown; the postmaster takes its backends with it.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The folder holding `initdb`, `postgres` and `pg_isready`: Debian's newest, else one on
/// `PATH`.
fn programs() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "postgres", "pg_isready"]
            .iter()
            .all(|name| dir.join(name).is_file())
    };
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| complete(bin))
        .collect();
    versions.sort();
    versions.pop().or_else(|| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .find(|dir| complete(dir))
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

/// `program args…`, as the `postgres` user when this is root.
fn command(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Starts a cluster; `None` when PostgreSQL is not installed (`.ci/run` installs it and sets
/// `TOOLSHED_REQUIRE_TOOLS`, so there it must be).
pub fn start() -> Option<Postgres> {
    let Some(bin) = programs() else {
        if std::env::var_os("TOOLSHED_REQUIRE_TOOLS").is_some() {
            panic!("PostgreSQL (Debian's postgresql) is required here: no initdb found");
        }
        eprintln!("skipped: PostgreSQL is not installed");
        return None;
    };
    let dir = super::temp_dir();
    if is_root() {
        let owned = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(owned.success(), "chown the cluster's folder to postgres");
    }
    let data = dir.path().join("cluster");
    let init = command(&bin.join("initdb"))
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .expect("initdb");
    assert!(init.status.success(), "initdb: {}", super::said(&init));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = command(&bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(dir.path())
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("postgres");
    // Held from here, so that a failed start still stops it.
    let mut server = Postgres {
        child,
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().expect("postmaster") {
            panic!("PostgreSQL exited at start: {status}");
        }
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .expect("pg_isready");
        if ready.success() {
            break;
        }
        assert!(Instant::now() < deadline, "PostgreSQL is not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(server)
}
