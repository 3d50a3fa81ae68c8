//! The log subscriber: pretty lines for a developer, JSON lines for machines, written by a
//! background thread so that logging never blocks a request (see `log_writer`).

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::env::{Config, LogFormat};
use crate::platform::log_format::{JsonLines, PrettyLines, RequestLineSink};
use crate::platform::log_writer::{FlushGuard, batch_writer};
use tracing_subscriber::fmt::format::Format;

/// The logging of a running process.
pub struct Logging {
    /// Keep it alive until exit: dropping it flushes the lines still queued.
    pub guard: FlushGuard,
    /// Where the request log writes its lines (see `RequestLineSink`).
    pub request_lines: RequestLineSink,
}

/// Installs the global subscriber (the one process-wide piece: `tracing` has one).
pub fn init(config: &Config) -> Logging {
    let (writer, guard) = batch_writer(std::io::stdout());
    // Our own crate at the chosen level; dependencies only when they warn.
    let filter = Targets::new()
        .with_default(tracing::Level::WARN.min(config.log_level))
        .with_target("toolshed", config.log_level);
    let format = config.log_format();
    let request_lines = if format == LogFormat::Json && config.log_level >= tracing::Level::INFO {
        RequestLineSink::new(writer.clone())
    } else {
        RequestLineSink::default()
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
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
    Logging {
        guard,
        request_lines,
    }
}
