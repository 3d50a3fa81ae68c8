//! The `toolshed` command: `serve` (the default), `sign`, `verify`, `attest verify`,
//! `restore`, `update`, `controlplane serve` and `version`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use toolshed::env::{Config, SettingsArgs};
use toolshed::{build_info, commands, platform::signature, platform::telemetry, server};

#[derive(Parser)]
#[command(
    name = "toolshed",
    version,
    about = "A personal backend in one binary.",
    // Settings go before no verb (`toolshed --port 1`) or after `serve`; with another verb
    // they would be taken and ignored, so clap refuses them.
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: SettingsArgs,
}

// Built once, from the command line: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve {
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Print version, git commit, build date and target.
    Version,
    /// Sign FILE in the minisign format (prehashed), writing FILE.minisig.
    Sign {
        /// A minisign secret key file (`minisign -G`); an encrypted one takes its password
        /// from TOOLSHED_SIGNING_PASSWORD or the terminal.
        #[arg(long, short = 's')]
        secret_key: PathBuf,
        /// The trusted comment [default: timestamp, file name, and this toolshed's version,
        /// commit, target and build time].
        #[arg(long, short = 't')]
        trusted_comment: Option<String>,
        /// The file to sign.
        file: PathBuf,
    },
    /// Verify FILE against FILE.minisig (or --signature) with a minisign public key.
    Verify {
        /// A minisign public key file, or the key's base64 line.
        #[arg(long, short = 'p')]
        public_key: String,
        /// The signature file [default: FILE.minisig].
        #[arg(long, short = 'x')]
        signature: Option<PathBuf>,
        /// The signed file.
        file: PathBuf,
    },
    /// Replace a stopped server's data directory with a backup, after checking the archive's
    /// SHA-256, every file's hash and the database's integrity; the old directory is kept as
    /// DATA_DIR.before-restore-<time>.
    Restore {
        /// A backup archive (.tar), or a backup's id: one in DATA_DIR/backups, else one in
        /// TOOLSHED_BACKUP_REMOTE (downloaded and opened with TOOLSHED_BACKUP_KEY).
        #[arg(long, required_unless_present = "list", conflicts_with = "list")]
        from: Option<String>,
        /// List the backups kept here and in TOOLSHED_BACKUP_REMOTE instead.
        #[arg(long)]
        list: bool,
        /// The archive's expected SHA-256 [default: from the backup's record, if any].
        #[arg(long, conflicts_with = "list")]
        sha256: Option<String>,
        /// The settings: the data directory (--data-dir, TOOLSHED_DATA_DIR) and the
        /// remote's (TOOLSHED_BACKUP_REMOTE, TOOLSHED_BACKUP_KEY, TOOLSHED_BACKUP_S3_*).
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Install a signed release over this executable: verify its minisign signature, read
    /// its version from the signed trusted comment, refuse a downgrade, keep the old binary
    /// as <exe>.previous, and swap atomically.
    Update {
        /// The release binary: a file or an http(s) URL.
        #[arg(long)]
        from: String,
        /// The release key: a minisign public key file, or the key's base64 line.
        #[arg(long, short = 'p')]
        public_key: String,
        /// The signature: a file or URL [default: FROM.minisig].
        #[arg(long, short = 'x')]
        signature: Option<String>,
        /// Install an older version (or the same one again).
        #[arg(long)]
        allow_downgrade: bool,
        /// The executable to replace [default: this one].
        #[arg(long)]
        exe: Option<PathBuf>,
        /// Then ask the server holding DATA_DIR (if it runs from that executable) to finish
        /// its requests and start again as the new binary.
        #[arg(long)]
        restart: bool,
        /// The data directory of the server to restart.
        #[arg(long, env = "TOOLSHED_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Remote attestation: `attest verify` checks a running instance's evidence.
    #[command(subcommand)]
    Attest(AttestCommand),
    /// The control plane: `controlplane serve` starts one instance per user and keeps it
    /// running.
    #[command(subcommand)]
    Controlplane(ControlplaneCommand),
}

#[derive(Subcommand)]
enum ControlplaneCommand {
    /// Serve the control plane's API and run its reconcile loop (instances keep running
    /// when it stops, and are taken up again when it starts).
    Serve(ControlplaneServe),
}

#[derive(clap::Args)]
struct ControlplaneServe {
    /// The address its API listens on.
    #[arg(long, env = "TOOLSHED_CONTROLPLANE_HOST", default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Its port (0: any free one).
    #[arg(long, env = "TOOLSHED_CONTROLPLANE_PORT", default_value_t = 8100)]
    port: u16,
    /// Its state and every instance's folder.
    #[arg(
        long,
        env = "TOOLSHED_CONTROLPLANE_DATA_DIR",
        default_value = "./controlplane"
    )]
    data_dir: PathBuf,
    /// Its admin tokens, comma-separated (at least 16 characters each).
    #[arg(long, env = "TOOLSHED_CONTROLPLANE_TOKENS", hide_env_values = true)]
    tokens: String,
    /// `pretty` or `json` [default: json].
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    log_format: String,
    /// The minisign public key releases must be signed with (a file or the base64
    /// line); without it instances run this binary only.
    #[arg(long, env = "TOOLSHED_CONTROLPLANE_RELEASE_KEY")]
    release_key: Option<String>,
    /// Keep its state in PostgreSQL (`postgres://user:password@host:port/db`, no TLS)
    /// instead of SQLite in the data directory: control planes on one database share it,
    /// one leads (an advisory lock), the others stand by.
    #[arg(
        long,
        env = "TOOLSHED_CONTROLPLANE_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// How often each running instance's /metrics is read, in ms (its history keeps
    /// the last 60).
    #[arg(long, env = "TOOLSHED_CONTROLPLANE_SCRAPE_INTERVAL_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    scrape_interval_ms: u64,
    /// Fail every instance whose attestation evidence carries no hardware report (SEV-SNP,
    /// TDX): for confidential deployments, where software evidence proves too little.
    #[arg(long, env = "TOOLSHED_CONTROLPLANE_REQUIRE_HARDWARE")]
    require_hardware: bool,
}

#[derive(Subcommand)]
enum AttestCommand {
    /// Fetch evidence with a fresh random nonce and check what binds it to the binary and
    /// the instance; exit 0 only when every check passed.
    Verify {
        /// The instance, e.g. https://me.example.com or http://127.0.0.1:8000.
        #[arg(long)]
        url: String,
        /// The SHA-256 (hex) the instance must report for its executable, e.g. a signed
        /// release's.
        #[arg(long)]
        expect_binary_sha256: Option<String>,
        /// The instance key it must answer with (its `instance.pub`, or the base64 line).
        #[arg(long)]
        instance_key: Option<String>,
        /// Fail unless the evidence is a hardware report (SEV-SNP or TDX).
        #[arg(long)]
        require_hardware: bool,
        /// An API token for the instance.
        #[arg(long, env = "TOOLSHED_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

/// jemalloc, with background threads that hand freed memory back to the system: glibc's
/// allocator kept a burst's tens of megabytes resident for good (docs/PERFORMANCE.md,
/// "Memory after a burst"). The allocator is the one static a process must have.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        return serve(&cli.settings);
    };
    match command {
        Command::Version => {
            println!("{}", build_info::describe());
            ExitCode::SUCCESS
        }
        Command::Serve { settings } => serve(&settings),
        Command::Sign {
            secret_key,
            trusted_comment,
            file,
        } => commands::sign(&secret_key, trusted_comment.as_deref(), &file),
        Command::Verify {
            public_key,
            signature,
            file,
        } => commands::verify(&public_key, signature.as_deref(), &file),
        Command::Restore {
            from,
            list,
            sha256,
            settings,
        } => match Config::from_args(&settings) {
            Ok(config) if list => commands::list_backups(&config),
            Ok(config) => {
                commands::restore(from.as_deref().unwrap_or(""), &config, sha256.as_deref())
            }
            Err(errors) => {
                eprint!("toolshed: {errors}");
                ExitCode::from(1)
            }
        },
        Command::Update {
            from,
            public_key,
            signature,
            allow_downgrade,
            exe,
            restart,
            data_dir,
        } => commands::update(&commands::UpdateArgs {
            from: &from,
            public_key: &public_key,
            signature: signature.as_deref(),
            allow_downgrade,
            exe: exe.as_deref(),
            restart,
            data_dir: &data_dir,
        }),
        Command::Controlplane(ControlplaneCommand::Serve(args)) => controlplane(args),
        Command::Attest(AttestCommand::Verify {
            url,
            expect_binary_sha256,
            instance_key,
            require_hardware,
            token,
        }) => commands::attest_verify(
            &url,
            expect_binary_sha256.as_deref(),
            instance_key.as_deref(),
            require_hardware,
            token.as_deref(),
        ),
    }
}

fn serve(settings: &SettingsArgs) -> ExitCode {
    let config = match Config::from_args(settings) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("toolshed: {errors}");
            return ExitCode::from(1);
        }
    };
    let logging = telemetry::init(&config);
    if let Some(public_key) = &config.require_signature {
        match signature::verify_own_executable(public_key) {
            Ok((exe, verified)) => tracing::info!(
                executable = %exe.display(),
                key_id = %verified.key_id,
                trusted_comment = %verified.trusted_comment,
                "executable signature verified"
            ),
            Err(e) => {
                tracing::error!(error = %e, "refusing to start: the executable's signature does not hold");
                eprintln!(
                    "toolshed: refusing to start (TOOLSHED_REQUIRE_SIGNATURE / --require-signature): {e}"
                );
                return ExitCode::from(1);
            }
        }
    }
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(error = %e, "freed memory is returned to the system only as the allocator works");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("toolshed: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // Read now: once `toolshed update` has replaced the file, the kernel names this one
    // "(deleted)".
    let exe = std::env::current_exe();
    match runtime.block_on(server::run(config, logging.request_lines.clone())) {
        Ok(server::Ended::Stopped) => ExitCode::SUCCESS,
        Ok(server::Ended::Restart) => {
            drop(runtime);
            tracing::info!("starting again as the executable now at this path");
            // Exec keeps nothing queued in this process: the log lines go out first.
            drop(logging);
            restart(exe)
        }
        Err(e) => {
            tracing::error!(error = %e, "toolshed stopped with an error");
            eprintln!("toolshed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Becomes the executable now at this one's path, with the same arguments and environment
/// (the process, its pid and its standard streams stay; files close on exec, so the data
/// directory's lock is free for the new image).
fn restart(exe: std::io::Result<PathBuf>) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let exe = match exe {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("toolshed: cannot restart, the executable's path is unknown: {e}");
            return ExitCode::from(1);
        }
    };
    let failed = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!("toolshed: cannot restart as {}: {failed}", exe.display());
    ExitCode::from(1)
}

fn controlplane(args: ControlplaneServe) -> ExitCode {
    let ControlplaneServe {
        host,
        port,
        data_dir,
        tokens,
        log_format,
        release_key,
        database_url,
        scrape_interval_ms,
        require_hardware,
    } = args;
    let release_key = match release_key
        .as_deref()
        .map(signature::load_public_key)
        .transpose()
    {
        Ok(key) => key,
        Err(e) => {
            eprintln!("toolshed: --release-key: {e}");
            return ExitCode::from(1);
        }
    };
    let settings = SettingsArgs {
        log_format: Some(log_format),
        env: Some("production".into()),
        ..SettingsArgs::default()
    };
    let config = match Config::from_args(&settings) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("toolshed: {errors}");
            return ExitCode::from(1);
        }
    };
    let tokens = match toolshed::platform::auth::TokenSet::read(
        toolshed::env::Secret::new(&tokens).as_ref(),
        None,
    ) {
        Ok(tokens) if !tokens.is_empty() => tokens,
        Ok(_) => {
            eprintln!("toolshed: the control plane needs TOOLSHED_CONTROLPLANE_TOKENS");
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("toolshed: TOOLSHED_CONTROLPLANE_TOKENS: {e}");
            return ExitCode::from(1);
        }
    };
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(e) => {
            eprintln!("toolshed: cannot find this executable, which instances run: {e}");
            return ExitCode::from(1);
        }
    };
    let _logging = telemetry::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("toolshed: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let options = toolshed::controlplane::Options {
        host,
        port,
        data_dir,
        tokens,
        program,
        release_key,
        database_url,
        scrape_every: std::time::Duration::from_millis(scrape_interval_ms),
        require_hardware,
    };
    let served = runtime.block_on(async {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            let terminate = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut signal) => {
                        signal.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = terminate => {}
            }
            tracing::info!("control plane stopping; instances keep running");
            trigger.cancel();
        });
        toolshed::controlplane::serve(options, shutdown).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the control plane stopped with an error");
            eprintln!("toolshed: {e}");
            ExitCode::from(1)
        }
    }
}
