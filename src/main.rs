//! The `toolshed` command: `serve` (the default) and `version`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use toolshed::env::{Config, SettingsArgs};
use toolshed::{build_info, platform::telemetry, server};

#[derive(Parser)]
#[command(
    name = "toolshed",
    version,
    about = "A personal backend in one binary."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Print version, git commit, build date and target.
    Version,
}

/// jemalloc, with background threads that hand freed memory back to the system: glibc's
/// allocator kept a burst's tens of megabytes resident for good (docs/PERFORMANCE.md,
/// "Memory after a burst"). The allocator is the one static a process must have.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Version => {
            println!("{}", build_info::describe());
            ExitCode::SUCCESS
        }
        Command::Serve => serve(&cli.settings),
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
    match runtime.block_on(server::run(config, logging.request_lines.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "toolshed stopped with an error");
            eprintln!("toolshed: {e}");
            ExitCode::from(1)
        }
    }
}
