//! The `process` provider: each instance is a child process of this same binary
//! (`toolshed serve`) on 127.0.0.1 with its own data directory, port and API token.
//!
//! An instance's folder `<control plane data>/instances/<id>/` holds `data/` (its data
//! directory), `tokens` (its API token, 0600, read through `TOOLSHED_API_TOKENS_FILE`) and
//! `instance.log` (its standard output and error). Children run in a process group of
//! their own, so they outlive a control plane that stops or restarts; a pid is taken for an
//! instance only while `/proc/<pid>/environ` names that instance's data directory.
//!
//! Limits are the kernel's, set before the instance's first instruction: the child is
//! `prlimit --data=… --nofile=… -- nice -n N toolshed serve`, each of which execs the next
//! (one pid). Without cgroups (which a VM or container may not delegate), RLIMIT_DATA is
//! the memory bound: allocations past it fail, where a cgroup would have killed.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::provider::Provider;
use super::store::Limits;

/// How long a stopping instance gets to drain before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Starts, stops and recognises instance processes.
#[derive(Clone)]
pub struct ProcessProvider {
    root: PathBuf,
    /// Children this control plane started, kept to reap them when they exit.
    children: Arc<Mutex<HashMap<u32, Child>>>,
    /// How each child that ended did: `true` for a clean exit (status 0).
    ended: Arc<Mutex<HashMap<u32, bool>>>,
}

impl ProcessProvider {
    /// Instances live under `root/instances`.
    pub fn new(root: &Path) -> ProcessProvider {
        ProcessProvider {
            root: root.join("instances"),
            children: Arc::default(),
            ended: Arc::default(),
        }
    }

    pub fn folder(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn data_dir(&self, id: &str) -> PathBuf {
        self.folder(id).join("data")
    }

    /// Collects the exit status of children that ended.
    fn reap(&self) {
        let mut children = self
            .children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        children.retain(|pid, child| match child.try_wait() {
            Ok(None) => true,
            status => {
                self.note_end(*pid, status.ok().flatten());
                false
            }
        });
    }

    fn note_end(&self, pid: u32, status: Option<std::process::ExitStatus>) {
        self.ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(pid, status.is_some_and(|s| s.success()));
    }
}

impl Provider for ProcessProvider {
    /// Writes the instance's token file and its metrics token (once, at creation).
    fn prepare(&self, id: &str, token: &str, metrics_token: &str) -> std::io::Result<()> {
        let folder = self.folder(id);
        std::fs::create_dir_all(self.data_dir(id))?;
        for (name, secret) in [("tokens", token), ("metrics-token", metrics_token)] {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(folder.join(name))?;
            std::io::Write::write_all(&mut file, format!("{secret}\n").as_bytes())?;
        }
        Ok(())
    }

    /// Instance `id`'s API token (the user's), which its attestation route takes.
    fn api_token(&self, id: &str) -> Option<String> {
        std::fs::read_to_string(self.folder(id).join("tokens"))
            .ok()
            .and_then(|t| t.lines().next().map(|l| l.trim().to_owned()))
            .filter(|t| !t.is_empty())
    }

    /// The token instance `id`'s `/metrics` takes (and nothing else does).
    fn metrics_token(&self, id: &str) -> Option<String> {
        std::fs::read_to_string(self.folder(id).join("metrics-token"))
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    }

    /// Starts instance `id` on `port` running `program` (a verified release) within
    /// `limits`; its pid.
    fn start(&self, id: &str, port: u16, program: &Path, limits: &Limits) -> std::io::Result<u32> {
        let folder = self.folder(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(folder.join("instance.log"))?;
        let mut argv = limited(limits).map_err(std::io::Error::other)?;
        argv.push(program.into());
        argv.push("serve".into());
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]).env_clear();
        if let Some(token) = self.metrics_token(id) {
            command.env("TOOLSHED_METRICS_TOKEN", token);
        }
        let child = command
            .env("ENV", "production")
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("LOG_FORMAT", "json")
            .env("TOOLSHED_DATA_DIR", self.data_dir(id))
            .env("TOOLSHED_API_TOKENS_FILE", folder.join("tokens"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own group: a signal to the control plane's group does not reach it.
            .process_group(0)
            .spawn()?;
        let pid = child.id();
        self.children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(pid, child);
        Ok(pid)
    }

    /// Whether `pid` is alive and is instance `id` (not a recycled pid).
    fn is_running(&self, id: &str, pid: u32) -> bool {
        {
            // A child of ours is known by its handle: right after the fork, before the exec,
            // its environment is still ours.
            let mut children = self
                .children
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(child) = children.get_mut(&pid) {
                let status = child.try_wait();
                if let Ok(None) = status {
                    return true;
                }
                children.remove(&pid);
                self.note_end(pid, status.ok().flatten());
                return false;
            }
        }
        self.reap();
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            return false;
        };
        let expected = format!("TOOLSHED_DATA_DIR={}", self.data_dir(id).display());
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next().map(|s| s == "Z"))
            })
            .unwrap_or(true);
        !zombie
            && environ
                .split(|b| *b == 0)
                .any(|entry| entry == expected.as_bytes())
    }

    /// Whether the process `pid`, now ended, exited cleanly; `None` when it was not a child
    /// of this control plane (an adopted one), whose status nobody here can read.
    fn take_exit(&self, pid: u32) -> Option<bool> {
        self.ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&pid)
    }

    /// Stops instance `id`'s process: SIGTERM, then SIGKILL after the grace.
    fn stop<'a>(&'a self, id: &'a str, pid: u32) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !self.is_running(id, pid) {
                return;
            }
            signal(pid, "TERM");
            let deadline = tokio::time::Instant::now() + STOP_GRACE;
            while self.is_running(id, pid) {
                if tokio::time::Instant::now() > deadline {
                    signal(pid, "KILL");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }

    fn address(&self, _id: &str, port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }

    /// Removes instance `id`'s folder (its data too).
    fn purge(&self, id: &str) -> std::io::Result<()> {
        match std::fs::remove_dir_all(self.folder(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The programs that enforce limits, found on `PATH`: `(prlimit, nice)`.
pub fn limits_supported() -> Result<(PathBuf, PathBuf), String> {
    // PATH, then where Debian puts them (a control plane may run with a bare environment).
    let find = |name: &str| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .chain(["/usr/bin".into(), "/bin".into()])
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
            .ok_or_else(|| format!("{name} (util-linux, coreutils) is not installed"))
    };
    Ok((find("prlimit")?, find("nice")?))
}

/// This process's hard limit on open files (which its children cannot raise without
/// privilege); none when unlimited or unreadable.
pub fn open_files_hard_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The command line that runs a program within `limits` (empty: none).
fn limited(limits: &Limits) -> Result<Vec<OsString>, String> {
    let mut argv: Vec<OsString> = Vec::new();
    if *limits == Limits::default() {
        return Ok(argv);
    }
    let (prlimit, nice) = limits_supported()?;
    if limits.data_mb.is_some() || limits.open_files.is_some() {
        argv.push(prlimit.into());
        if let Some(mb) = limits.data_mb {
            argv.push(format!("--data={}", mb.saturating_mul(1 << 20)).into());
        }
        if let Some(files) = limits.open_files {
            argv.push(format!("--nofile={files}").into());
        }
        argv.push("--".into());
    }
    if let Some(n) = limits.nice {
        argv.extend([nice.into(), "-n".into(), n.to_string().into()]);
    }
    Ok(argv)
}

/// A port on 127.0.0.1 free right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
