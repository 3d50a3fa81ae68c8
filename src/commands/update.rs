//! `toolshed update`: installs a signed release over the executable, or leaves it untouched.
//!
//! The release (a binary and its `.minisig`, from a file or a URL) is fetched beside the
//! executable, its signature checked against the given key, its version read from the
//! signed trusted comment and compared with the installed one (a downgrade is refused
//! unless allowed), and it must run here (`version`). Only then is the executable swapped:
//! the old one is kept as `<exe>.previous` (a hard link, so the swap itself is one atomic
//! rename) and the new one renamed into place, with its signature as `<exe>.minisig` for
//! `--require-signature`. With `--restart`, a server running from that executable on the
//! data directory is asked (SIGUSR2) to shut down gracefully and start again as the new
//! binary; otherwise that is the supervisor's job.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use semver::Version;

use crate::build_info;
use crate::platform::release::{self, ReleaseError};
use crate::platform::signature;
use crate::storage::lock::{DataDirLock, LOCK_FILE};

/// The largest release downloaded.
const MAX_RELEASE_BYTES: u64 = 1 << 30;
/// How long a download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// What `toolshed update` was asked.
pub struct UpdateArgs<'a> {
    /// A release file or an http(s) URL.
    pub from: &'a str,
    pub public_key: &'a str,
    /// The signature [default: `<from>.minisig`].
    pub signature: Option<&'a str>,
    pub allow_downgrade: bool,
    /// The executable to replace [default: this one].
    pub exe: Option<&'a Path>,
    pub restart: bool,
    pub data_dir: &'a Path,
}

pub fn update(args: &UpdateArgs<'_>) -> ExitCode {
    match run(args) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(Failure::Untouched(message)) => {
            eprintln!("toolshed: update refused, the installed binary is untouched: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Installed(message)) => {
            eprintln!("toolshed: {message}");
            ExitCode::from(1)
        }
    }
}

/// Why an update stopped: before the executable was replaced, or after.
enum Failure {
    Untouched(String),
    Installed(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Untouched(message)
    }
}

/// A file that is removed when dropped unless it was taken.
struct Staged(Option<PathBuf>);

impl Staged {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    fn take(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn run(args: &UpdateArgs<'_>) -> Result<String, Failure> {
    let key = signature::load_public_key(args.public_key).map_err(|e| e.to_string())?;
    let running =
        std::env::current_exe().map_err(|e| format!("cannot find the running executable: {e}"))?;
    let exe = args.exe.map_or_else(|| running.clone(), Path::to_owned);
    let exe = exe
        .canonicalize()
        .map_err(|e| format!("cannot find the executable {}: {e}", exe.display()))?;
    let folder = exe
        .parent()
        .ok_or_else(|| format!("{} has no folder", exe.display()))?;
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let binary = Staged(Some(
        folder.join(format!(".{name}.update-{}", std::process::id())),
    ));
    let sig = Staged(Some(
        folder.join(format!(".{name}.update-{}.minisig", std::process::id())),
    ));
    let sig_source = args
        .signature
        .map_or_else(|| format!("{}.minisig", args.from), str::to_owned);
    fetch(args.from, binary.path())?;
    fetch(&sig_source, sig.path())?;

    let release = release::verify(&key, binary.path(), sig.path()).map_err(|e| match e {
        ReleaseError::Signature(e) => format!("the signature does not hold: {e}"),
        other => other.to_string(),
    })?;
    let installed = installed_version(&exe, exe == running.canonicalize().unwrap_or_default())?;
    release::check_upgrade(&installed, &release.version, args.allow_downgrade)
        .map_err(|e| e.to_string())?;
    if release.version == installed && !args.allow_downgrade {
        return Ok(format!(
            "{} is already at version {installed}; nothing to do",
            exe.display()
        ));
    }
    let permissions = std::fs::metadata(&exe)
        .map_err(|e| format!("cannot read {}: {e}", exe.display()))?
        .permissions();
    std::fs::set_permissions(binary.path(), permissions)
        .map_err(|e| format!("cannot make the release executable: {e}"))?;
    runs_here(binary.path())?;

    match swap(&exe, binary.take(), sig.take()) {
        Ok(()) => {}
        Err(Swap::Untouched(message)) => return Err(Failure::Untouched(message)),
        Err(Swap::Installed(message)) => return Err(Failure::Installed(message)),
    }
    let mut message = format!(
        "installed toolshed {} (signed by key {}) at {}; the previous binary is {}.previous",
        release.version,
        release.verified.key_id,
        exe.display(),
        exe.display()
    );
    if args.restart {
        message.push('\n');
        match restart(&exe, args.data_dir) {
            Ok(restarted) => message.push_str(&restarted),
            Err(e) => {
                return Err(Failure::Installed(format!(
                    "{message}\nbut the server was not restarted: {e}"
                )));
            }
        }
    } else {
        message.push_str(
            "\nrestart the server to run it (your supervisor, or `toolshed update --restart`, \
             or SIGUSR2 to the server's pid)",
        );
    }
    Ok(message)
}

/// Copies a file, or downloads an http(s) URL, to `target`.
fn fetch(source: &str, target: &Path) -> Result<(), String> {
    if !(source.starts_with("http://") || source.starts_with("https://")) {
        return std::fs::copy(source, target)
            .map(|_| ())
            .map_err(|e| format!("cannot read {source}: {e}"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the downloader: {e}"))?;
    runtime.block_on(download(source, target))
}

async fn download(url: &str, target: &Path) -> Result<(), String> {
    use futures_util::StreamExt;
    use std::io::Write;

    let client = reqwest::Client::builder()
        .timeout(DOWNLOAD_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot start the downloader: {e}"))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("cannot download {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let mut file =
        std::fs::File::create(target).map_err(|e| format!("cannot write the download: {e}"))?;
    let mut stream = response.bytes_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("the download of {url} broke off: {e}"))?;
        total += chunk.len() as u64;
        if total > MAX_RELEASE_BYTES {
            return Err(format!("{url} is larger than {MAX_RELEASE_BYTES} bytes"));
        }
        file.write_all(&chunk)
            .map_err(|e| format!("cannot write the download: {e}"))?;
    }
    file.sync_all()
        .map_err(|e| format!("cannot write the download: {e}"))
}

/// The version of the executable being replaced: this build's, or what it says it is.
fn installed_version(exe: &Path, is_running: bool) -> Result<Version, String> {
    let text = if is_running {
        build_info::VERSION.to_owned()
    } else {
        let out = Command::new(exe)
            .arg("version")
            .output()
            .map_err(|e| format!("cannot ask {} its version: {e}", exe.display()))?;
        let said = String::from_utf8_lossy(&out.stdout);
        said.lines()
            .next()
            .and_then(|line| line.strip_prefix("toolshed "))
            .map(str::to_owned)
            .ok_or_else(|| format!("{} does not say its version", exe.display()))?
    };
    Version::parse(text.trim()).map_err(|e| format!("the installed version {text:?}: {e}"))
}

/// Refuses a release that does not start on this machine (another architecture, say).
fn runs_here(binary: &Path) -> Result<(), String> {
    let mut child = Command::new(binary)
        .arg("version")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("the release does not run here: {e}"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(status)) => return Err(format!("the release does not run here ({status})")),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                return Err("the release does not answer `version` within 10 s".into());
            }
        }
    }
    let mut said = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut said);
    }
    if !said.starts_with("toolshed ") {
        return Err("the release does not say it is toolshed".into());
    }
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut text = path.as_os_str().to_owned();
    text.push(suffix);
    PathBuf::from(text)
}

/// Keeps `file` as `kept` too: a hard link (no moment without the file), else a copy;
/// through a temporary name, so an old `kept` goes only once the new one is there.
fn keep(file: &Path, kept: &Path) -> Result<(), String> {
    let tmp = with_suffix(kept, ".tmp");
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(file, &tmp).is_err() {
        std::fs::copy(file, &tmp)
            .map_err(|e| format!("cannot keep {} as {}: {e}", file.display(), kept.display()))?;
    }
    std::fs::rename(&tmp, kept)
        .map_err(|e| format!("cannot keep {} as {}: {e}", file.display(), kept.display()))
}

/// Keeps the executable (and its signature) as `<exe>.previous`, then renames the release
/// and its signature into place. `Err(Swap::Untouched)` until the executable was replaced.
fn swap(exe: &Path, binary: PathBuf, sig: PathBuf) -> Result<(), Swap> {
    let untouched = |message: String| {
        let _ = std::fs::remove_file(&binary);
        let _ = std::fs::remove_file(&sig);
        Swap::Untouched(message)
    };
    // What is renamed into place must be on disk first, whatever the file system.
    let synced = std::fs::File::open(&binary)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::File::open(&sig))
        .and_then(|f| f.sync_all());
    if let Err(e) = synced {
        return Err(untouched(format!("cannot write the release to disk: {e}")));
    }
    let previous = with_suffix(exe, ".previous");
    keep(exe, &previous).map_err(&untouched)?;
    let exe_sig = signature::signature_path(exe);
    if exe_sig.exists() {
        keep(&exe_sig, &with_suffix(&previous, ".minisig")).map_err(&untouched)?;
    }
    if let Err(e) = std::fs::rename(&binary, exe) {
        return Err(untouched(format!(
            "cannot install the release at {}: {e}",
            exe.display()
        )));
    }
    let placed = std::fs::rename(&sig, &exe_sig);
    if let Some(folder) = exe.parent()
        && let Ok(dir) = std::fs::File::open(folder)
    {
        let _ = dir.sync_all();
    }
    placed.map_err(|e| {
        Swap::Installed(format!(
            "the release is installed at {}, but its signature could not be placed at {} ({e}): \
             a server with TOOLSHED_REQUIRE_SIGNATURE will refuse to start until it is there",
            exe.display(),
            exe_sig.display()
        ))
    })
}

/// How a swap failed.
enum Swap {
    /// Before the executable was replaced.
    Untouched(String),
    /// After.
    Installed(String),
}

/// Asks the server holding `data_dir`, if it runs from `exe`, to restart into it.
fn restart(exe: &Path, data_dir: &Path) -> Result<String, String> {
    if !data_dir.join(LOCK_FILE).exists() {
        return Ok(format!(
            "no server has used {}; nothing to restart",
            data_dir.display()
        ));
    }
    if DataDirLock::acquire(data_dir).is_ok() {
        return Ok(format!(
            "no server holds {}; nothing to restart",
            data_dir.display()
        ));
    }
    let pid = std::fs::read_to_string(data_dir.join(LOCK_FILE))
        .map_err(|e| format!("cannot read the server's pid: {e}"))?;
    let pid = pid.trim();
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the lock file names no pid ({pid:?})"));
    }
    // Only a server running from this executable (replaced now: the kernel says "deleted").
    let running = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map_err(|e| format!("cannot see which executable pid {pid} runs: {e}"))?;
    let running = running.to_string_lossy();
    let expected = exe.to_string_lossy();
    if running.trim_end_matches(" (deleted)") != expected {
        return Err(format!(
            "the server on {} (pid {pid}) runs {running}, not {expected}; restart it yourself",
            data_dir.display()
        ));
    }
    let status = Command::new("kill")
        .args(["-USR2", pid])
        .status()
        .map_err(|e| format!("cannot signal pid {pid}: {e}"))?;
    if !status.success() {
        return Err(format!("cannot signal pid {pid} ({status})"));
    }
    Ok(format!(
        "asked the server (pid {pid}) to finish its requests and start again as the new binary"
    ))
}
