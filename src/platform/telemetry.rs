//! The log subscriber: pretty lines for a developer, JSON lines for machines, written by a
//! background thread so that logging never blocks a request.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::env::{Config, LogFormat};

/// Installs the global subscriber. Keep the guard alive until exit: dropping it flushes the
/// lines still queued.
pub fn init(config: &Config) -> WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(64 * 1024)
        .finish(std::io::stdout());
    // Our own crate at the chosen level; dependencies only when they warn.
    let filter = Targets::new()
        .with_default(tracing::Level::WARN.min(config.log_level))
        .with_target("toolshed", config.log_level);
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                    .with_writer(writer),
            )
            .try_init(),
    };
    if let Err(e) = result {
        eprintln!("logging was already initialised: {e}");
    }
    guard
}
