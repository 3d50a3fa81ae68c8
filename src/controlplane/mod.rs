//! `toolshed controlplane serve`: starts one Toolshed instance per user and keeps it
//! running, from outside: it talks to instances only over HTTP (their health probe) and
//! never reads their data. Its own HTTP API (admin tokens, JSON errors, an OpenAPI
//! document), its own state store (`store/`: SQLite in its data directory, or PostgreSQL
//! shared with a standby), the `process` provider (`process.rs`), the reconcile loop
//! (`reconcile.rs`), the fleet's metrics (`fleet.rs`), signed releases (`releases.rs`) and
//! rollouts (`rollouts.rs`).
//!
//! Only the leader acts: the control plane holding the store's lock. Another one on the
//! same store stands by (its API answers 503) and takes over when the lock is free.

mod api;
pub mod fleet;
pub mod process;
pub mod provider;
mod reconcile;
pub mod releases;
mod rollouts;
pub mod store;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::commands::attest_verify::{Check, Expectations, check};
use crate::platform::auth::TokenSet;
use crate::routes::attestation::schemas::Evidence;
use process::ProcessProvider;
use provider::Provider;
use store::{Instance, Store};

/// How it was asked to run.
pub struct Options {
    pub host: IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    /// The admin tokens its API takes.
    pub tokens: TokenSet,
    /// The toolshed binary instances run when there is no release.
    pub program: PathBuf,
    /// The key releases must be signed with; without one, only `program` runs.
    pub release_key: Option<minisign::PublicKey>,
    /// A PostgreSQL store (`postgres://…`) instead of SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// How often a running instance's `/metrics` is read.
    pub scrape_every: Duration,
    /// Fail an instance whose attestation carries no hardware report.
    pub require_hardware: bool,
}

/// What an instance's health probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Healthy,
    /// Nothing listens: not up yet, or draining after SIGTERM on its way out.
    Refused,
    /// It answered with an error, or not in time.
    Failed,
}

/// Everything the API and the loop share; cheap to clone.
#[derive(Clone)]
pub struct ControlPlane {
    store: Store,
    provider: Arc<dyn Provider>,
    tokens: Arc<TokenSet>,
    /// Wakes the loop when an instance's desired state changes.
    changed: Arc<Notify>,
    probe: reqwest::Client,
    /// Each running instance's figures, from its `/metrics`.
    scrapes: fleet::Scrapes,
    scrape_every: Duration,
    require_hardware: bool,
    releases: releases::Releases,
    /// Whether this control plane holds the store's lock (else it stands by).
    leading: Arc<std::sync::atomic::AtomicBool>,
    /// Held by whoever acts on instances' processes (a reconcile pass, a restart, a
    /// rollout's step, a delete), so that no two act on one instance from different reads.
    acting: Arc<tokio::sync::Mutex<()>>,
    /// The SHA-256 of the binary each process this control plane started runs, by pid:
    /// what the instance's attestation must report.
    launched: Arc<std::sync::Mutex<std::collections::HashMap<u32, String>>>,
}

impl ControlPlane {
    /// Whether instance `id` on `port` answers its liveness probe.
    async fn probe(&self, id: &str, port: u16) -> Probe {
        match self
            .probe
            .get(format!("{}/api/health", self.provider.address(id, port)))
            .send()
            .await
        {
            Ok(answer) if answer.status().is_success() => Probe::Healthy,
            Err(e) if e.is_connect() => Probe::Refused,
            _ => Probe::Failed,
        }
    }

    /// Reads instance `id`'s `/metrics` (with its metrics token) into the fleet's view.
    async fn scrape(&self, id: &str, port: u16) {
        let Some(token) = self.provider.metrics_token(id) else {
            return;
        };
        let answer = self
            .probe
            .get(format!("{}/metrics", self.provider.address(id, port)))
            .bearer_auth(token)
            .send()
            .await;
        let text = match answer {
            Ok(answer) if answer.status().is_success() => answer.text().await.ok(),
            _ => None,
        };
        if let Some(text) = text {
            self.scrapes
                .set(id, fleet::usage_from(&text, crate::storage::db::now_ms()));
        }
    }

    /// Asks instance `id` (process `pid`) for attestation evidence over a fresh nonce and
    /// checks it as `toolshed attest verify` does: our nonce, the instance key's signature
    /// over report_data, a hardware report's structure and report_data (one required with
    /// `--require-hardware`), and the hash of the binary it was started from. `Ok` when it
    /// proves all that.
    async fn attest(&self, id: &str, port: u16, pid: u32, version: &str) -> Result<(), String> {
        let launched = self
            .launched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&pid)
            .cloned();
        let expected = match launched {
            Some(expected) => expected,
            // Started by an earlier leader and not proven yet: its release's binary.
            None => {
                let releases = self.releases.clone();
                let version = version.to_owned();
                tokio::task::spawn_blocking(move || releases.launch(&version))
                    .await
                    .map_err(|e| e.to_string())??
                    .sha256
            }
        };
        let token = self
            .provider
            .api_token(id)
            .ok_or("its token file is missing")?;
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).map_err(|e| format!("no randomness: {e}"))?;
        let evidence: Evidence = self
            .probe
            .get(format!(
                "{}/api/attestation?nonce={}",
                self.provider.address(id, port),
                crate::platform::hex::to_hex(&nonce)
            ))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("no attestation evidence: {e}"))?
            .json()
            .await
            .map_err(|e| format!("unreadable attestation evidence: {e}"))?;
        let expect = Expectations {
            binary_sha256: Some(expected),
            instance_key: None,
            require_hardware: self.require_hardware,
        };
        let failed: Vec<String> = check(&evidence, &nonce, &expect)
            .into_iter()
            .filter_map(|c| match c {
                Check::Fail(why) => Some(why),
                _ => None,
            })
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "it cannot prove it runs its release: {}",
                failed.join("; ")
            ))
        }
    }

    /// Stops `instance`'s process gracefully, recording `stopping` meanwhile; it is left
    /// without a pid (and in `stopping` until the caller says what it is now).
    async fn stop_process(&self, instance: &mut Instance) {
        if let Some(pid) = instance.pid.take() {
            instance.state = store::State::Stopping;
            self.store_observed(instance).await;
            self.provider.stop(&instance.id, pid).await;
        }
    }

    async fn store_observed(&self, instance: &Instance) {
        if let Err(e) = self
            .store
            .observe(instance, crate::storage::db::now_ms())
            .await
        {
            tracing::error!(instance = %instance.id, error = %e, "cannot record an instance's state");
        }
    }
}

/// Serves the API and, once it leads, runs the loop until `shutdown`; the instances keep
/// running after.
pub async fn serve(options: Options, shutdown: CancellationToken) -> Result<(), String> {
    std::fs::create_dir_all(&options.data_dir).map_err(|e| {
        format!(
            "cannot create the control plane's data directory {}: {e}",
            options.data_dir.display()
        )
    })?;
    let store = match &options.database_url {
        Some(url) => Store::connect_postgres(url).await,
        None => Store::open_sqlite(&options.data_dir),
    }
    .map_err(|e| e.to_string())?;
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot make the probe client: {e}"))?;
    let cp = ControlPlane {
        store,
        provider: Arc::new(ProcessProvider::new(&options.data_dir)),
        releases: releases::Releases::new(
            &options.data_dir,
            options.release_key,
            (
                semver::Version::parse(crate::build_info::VERSION)
                    .map_err(|e| format!("this build's version: {e}"))?,
                options.program,
            ),
        ),
        leading: Arc::default(),
        launched: Arc::default(),
        acting: Arc::default(),
        tokens: Arc::new(options.tokens),
        changed: Arc::default(),
        probe,
        scrapes: fleet::Scrapes::default(),
        scrape_every: options.scrape_every,
        require_hardware: options.require_hardware,
    };
    // A lock free now is taken before the API answers, so a lone control plane never
    // answers "standing by".
    if let Ok(true) = cp.store.lead().await {
        cp.leading.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((options.host, options.port)))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", options.host, options.port))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    tracing::info!(addr = %addr, "control plane listening");
    let serving = tokio::spawn(
        axum::serve(listener, api::router(cp.clone()))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future(),
    );
    let outcome = tokio::select! {
        () = lead(cp.clone(), shutdown.clone()) => Ok(()),
        () = cp.store.lost() => Err("lost its database connection (and with it the lead); the instances keep running".to_owned()),
    };
    shutdown.cancel();
    let served = serving
        .await
        .map_err(|e| format!("the control plane's listener failed: {e}"))?;
    outcome?;
    served.map_err(|e| format!("the control plane's listener failed: {e}"))
}

/// Waits for the store's lock, then carries on the running rollouts and runs the loop
/// until `shutdown`.
async fn lead(cp: ControlPlane, shutdown: CancellationToken) {
    let mut said = false;
    // Taken already before the API listened, when it was free then.
    while !cp.leading.load(std::sync::atomic::Ordering::SeqCst) {
        match cp.store.lead().await {
            Ok(true) => {
                cp.leading.store(true, std::sync::atomic::Ordering::SeqCst);
                break;
            }
            Ok(false) if !said => {
                said = true;
                tracing::info!("another control plane leads on this store; standing by");
            }
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "cannot take the lead"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    let adopted = cp.store.list().await.map(|l| l.len()).unwrap_or(0);
    tracing::info!(
        instances = adopted,
        "leading: this control plane acts on the instances"
    );
    match rollouts::running(&cp).await {
        Ok(running) => {
            for rollout in running {
                tracing::info!(rollout = %rollout.id, "carrying on a rollout");
                tokio::spawn(rollouts::run(cp.clone(), rollout));
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read the running rollouts"),
    }
    reconcile::run(cp, shutdown).await;
}
