//! Running the app: open the store, bind, serve until a signal, then shut down gracefully.
//!
//! Building the app (`app::build`) is separate from running it, so tests and benchmarks can
//! drive the router without a socket.

mod connections;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tower::util::BoxCloneSyncService;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{self, StartError};
use crate::env::Config;
use crate::platform::auth::Access;
use crate::platform::log_format::RequestLineSink;
use crate::platform::metrics::Metrics;
use crate::platform::outbound::Outbound;
use crate::platform::state::{AppHandle, AppState, Shared};
use crate::storage::schedule::ScheduleSpec;
use crate::storage::worker::Workers;
use crate::storage::{StorageError, Store, StoreOptions};

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the store in {dir}: {source}")]
    Store {
        dir: String,
        #[source]
        source: StorageError,
    },
    #[error("cannot start {0}")]
    Start(#[from] StartError),
    #[error("{0}")]
    Access(String),
    #[error("{0}")]
    Settings(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Asked to stop (SIGINT, SIGTERM).
    Stopped,
    /// Asked to start again as the executable now at its path (SIGUSR2, after
    /// `toolshed update`).
    Restart,
}

/// Resolves when SIGINT or SIGTERM (stop) or SIGUSR2 (restart) arrives.
async fn signalled() -> Ended {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let wait_for = |kind: SignalKind, name: &'static str| async move {
            match signal(kind) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for {name}");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => Ended::Stopped,
            () = wait_for(SignalKind::terminate(), "SIGTERM") => Ended::Stopped,
            () = wait_for(SignalKind::user_defined2(), "SIGUSR2") => Ended::Restart,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
        Ended::Stopped
    }
}

/// Re-reads the API tokens on every SIGHUP until `shutdown`; a bad file keeps the old set.
async fn reload_tokens_on_sighup(access: Access, shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        let mut hangups = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::hangup(),
        ) {
            Ok(signal) => signal,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; tokens load at start only");
                return;
            }
        };
        loop {
            tokio::select! {
                received = hangups.recv() => {
                    if received.is_none() {
                        return;
                    }
                    match access.reload() {
                        Ok(count) => tracing::info!(tokens = count, "API tokens reloaded"),
                        Err(e) => tracing::error!(error = %e, "API tokens not reloaded; the old set stays"),
                    }
                }
                () = shutdown.cancelled() => return,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (access, shutdown);
    }
}

/// Serves until SIGINT/SIGTERM (or SIGUSR2: restart), then lets in-flight requests and
/// running tasks finish within the grace; answers which was asked.
pub async fn run(config: Config, request_lines: RequestLineSink) -> Result<Ended, ServeError> {
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    let (asked, mut ended) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let why = signalled().await;
        match why {
            Ended::Stopped => tracing::info!("shutdown signal received"),
            Ended::Restart => {
                tracing::info!("restart signal received: shutting down to start again")
            }
        }
        let _ = asked.send(why);
        trigger.cancel();
    });
    serve(config, shutdown, request_lines).await?;
    // Serving can end without a signal (a failed listener): that is a stop.
    Ok(ended.try_recv().unwrap_or(Ended::Stopped))
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    shutdown: CancellationToken,
    request_lines: RequestLineSink,
) -> Result<(), ServeError> {
    let started_at = Instant::now();
    let store = Store::open(
        &config.data_dir,
        StoreOptions {
            durability: config.sqlite_sync,
            max_value_bytes: config.kv_max_value_bytes,
            task_retention: config.task_retention_s,
            blob_max_bytes: config.blob_max_bytes,
            blob_max_age: config.blob_max_age_s,
            backup_keep: config.backup_keep,
            backup_remote: config
                .backup_remote_options()
                .map_err(ServeError::Settings)?,
        },
    )
    .map_err(|source| ServeError::Store {
        dir: config.data_dir.display().to_string(),
        source,
    })?;
    own_schedules(&store, &config).await?;
    let access = Access::load(&config).map_err(ServeError::Access)?;
    if access.token_count() == 0 {
        tracing::warn!(
            "no API token is configured: serving without access control, to this machine only \
             (set TOOLSHED_API_TOKENS or TOOLSHED_API_TOKENS_FILE before exposing it)"
        );
    }
    let addr = std::net::SocketAddr::from((config.host, config.port));
    let grace = config.shutdown_grace_s;
    let limits = connections::Limits {
        max_connections: config.max_connections,
        header_timeout: config.header_timeout_s,
    };

    let app_handle = AppHandle::default();
    let outbound = Outbound::new(config.outbound_policy(), config.outbound_concurrency);
    let mut workers = Workers::new(store.queue.clone());
    app::register_task_kinds(&mut workers, &config, &app_handle, &outbound, &store);
    let workers = Arc::new(workers);
    let background = TaskTracker::new();
    let drained = CancellationToken::new();
    background.spawn(reload_tokens_on_sighup(access.clone(), shutdown.clone()));
    let state = AppState::new(Shared {
        outbound,
        access,
        config,
        store: store.clone(),
        workers: workers.clone(),
        started_at,
        drained: drained.clone(),
        metrics: Arc::new(Metrics::new(std::time::SystemTime::now())),
        background: background.clone(),
    });
    // Built before binding: a service that cannot start stops the program before it
    // answers anything.
    let metrics_app = state
        .config
        .metrics_addr
        .map(|addr| (addr, crate::routes::metrics::scrape_router(&state)));
    let app = app::build(state, request_lines)?;
    let _ = app_handle.set(BoxCloneSyncService::new(app.clone()));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr()?;
    // Metrics on a listener of their own: an orchestrator's network, not the user's.
    let metrics_server = match metrics_app {
        Some((addr, router)) => {
            let metrics_listener =
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind {
                        addr: addr.to_string(),
                        source,
                    })?;
            tracing::info!(addr = %metrics_listener.local_addr()?, "serving /metrics");
            let stop = shutdown.clone();
            Some(tokio::spawn(async move {
                let served = axum::serve(metrics_listener, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            }))
        }
        None => None,
    };
    let maintenance = store.spawn_maintenance(shutdown.clone());
    let scheduler = store.schedules.spawn(shutdown.clone());
    let worker_loop = tokio::spawn(workers.run(shutdown.clone(), grace));
    tracing::info!(
        addr = %local,
        startup_ms = started_at.elapsed().as_secs_f64() * 1000.0,
        "listening"
    );

    let server = connections::serve(listener, app, limits, shutdown.clone());
    let grace_over = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = server => {},
        () = grace_over => {
            tracing::warn!(grace_s = grace.as_secs(), "grace period over, dropping unfinished requests");
        }
    }
    // Whatever ended serving, background work stops the same orderly way.
    shutdown.cancel();
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
    drained.cancel();
    // Running tasks get the same grace as requests (they drain in parallel).
    let _ = worker_loop.await;
    let _ = maintenance.await;
    let _ = scheduler.await;
    // Services' background tasks (the LLM cache writer) finish their last writes.
    background.close();
    if tokio::time::timeout(grace.max(Duration::from_secs(1)), background.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not finish within the grace period");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The schedules settings make: `toolshed.backup` from `TOOLSHED_BACKUP_SCHEDULE`.
async fn own_schedules(store: &Store, config: &Config) -> Result<(), ServeError> {
    const BACKUP: &str = "toolshed.backup";
    let done = match &config.backup_schedule {
        Some(cron) => store
            .schedules
            .put(
                BACKUP,
                ScheduleSpec {
                    cron: cron.clone(),
                    timezone: config.backup_timezone.clone(),
                    // A large directory or a slow bucket takes minutes; an hour is the most a task gets.
                    task: serde_json::json!({"kind": "backup", "payload": null, "timeout_ms": 3_600_000}),
                    catch_up: true,
                },
                None,
            )
            .await
            .map(|_| ()),
        None => store.schedules.delete(BACKUP).await.map(|_| ()),
    };
    done.map_err(|source| ServeError::Store {
        dir: config.data_dir.display().to_string(),
        source,
    })
}
