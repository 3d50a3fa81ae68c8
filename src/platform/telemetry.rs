//! The log subscriber: pretty lines for a developer, JSON lines for machines, written by a
//! background thread so that logging never blocks a request (see `log_writer`).

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::env::{Config, LogFormat};
use crate::platform::log_format::{JsonLines, PrettyLines, enable_request_line_fast_path};
use crate::platform::log_writer::{FlushGuard, batch_writer};
use tracing_subscriber::fmt::format::Format;

/// Installs the global subscriber. Keep the guard alive until exit: dropping it flushes the
/// lines still queued.
pub fn init(config: &Config) -> FlushGuard {
    let (writer, guard) = batch_writer(std::io::stdout());
    // Our own crate at the chosen level; dependencies only when they warn.
    let filter = Targets::new()
        .with_default(tracing::Level::WARN.min(config.log_level))
        .with_target("toolshed", config.log_level);
    if config.log_format == LogFormat::Json && config.log_level >= tracing::Level::INFO {
        enable_request_line_fast_path(writer.clone());
    }
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLines)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .event_format(PrettyLines(Format::default().with_ansi(ansi)))
                        .with_ansi(ansi)
                        .with_writer(writer),
                )
                .try_init()
        }
    };
    if let Err(e) = result {
        eprintln!("logging was already initialised: {e}");
    }
    guard
}
