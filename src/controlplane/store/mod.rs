//! The control plane's own state: each instance's desired and observed state, and the
//! rollouts, in SQLite (its data directory) or PostgreSQL (`backend.rs`). A few writes a
//! second at most; every call is short.

mod backend;

use std::path::Path;

use serde::{Deserialize, Serialize};

use backend::{Backend, Cell, Param};

/// What an instance is doing, in Fly Machines' words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Created,
    Starting,
    Started,
    Stopping,
    Stopped,
    Failed,
    CrashLoop,
    Destroyed,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Created,
        State::Starting,
        State::Started,
        State::Stopping,
        State::Stopped,
        State::Failed,
        State::CrashLoop,
        State::Destroyed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Starting => "starting",
            State::Started => "started",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
            State::CrashLoop => "crash_loop",
            State::Destroyed => "destroyed",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// What the owner wants an instance to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    Started,
    Stopped,
    Destroyed,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Started => "started",
            Desired::Stopped => "stopped",
            Desired::Destroyed => "destroyed",
        }
    }

    fn parse(text: &str) -> Desired {
        match text {
            "started" => Desired::Started,
            "destroyed" => Desired::Destroyed,
            _ => Desired::Stopped,
        }
    }
}

/// When an instance whose process ended is started again (Docker's and Fly's policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Whenever it exits or fails its health probe (a crash loop after 5 failures in a row).
    #[default]
    Always,
    /// When it exits with an error or fails its health probe, at most `max_restarts` times
    /// within `window_s`; an instance that exits cleanly stays stopped.
    OnFailure,
    /// Never: it stays `stopped` (clean exit) or `failed`.
    No,
}

/// An instance's restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    #[serde(default)]
    pub policy: RestartPolicy,
    /// `on-failure`: restarts allowed within the window (default 3).
    #[serde(default = "Restart::default_max")]
    #[schema(minimum = 1, maximum = 100)]
    pub max_restarts: u32,
    /// `on-failure`: the window, in seconds (default 300).
    #[serde(default = "Restart::default_window")]
    #[schema(minimum = 1, maximum = 86400)]
    pub window_s: u64,
}

impl Restart {
    fn default_max() -> u32 {
        3
    }

    fn default_window() -> u64 {
        300
    }
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            policy: RestartPolicy::default(),
            max_restarts: Restart::default_max(),
            window_s: Restart::default_window(),
        }
    }
}

/// What an instance's process may use, enforced by the kernel (`prlimit`, `nice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Its virtual data size (RLIMIT_DATA: heap, thread stacks, private mappings), in MiB:
    /// an allocation past it fails and the instance aborts (then its restart policy
    /// decides). An idle instance maps about 90 MiB of it, while resident memory is far
    /// less; 128 is the least accepted.
    #[schema(minimum = 128, maximum = 1048576)]
    pub data_mb: Option<u64>,
    /// Open files and sockets (RLIMIT_NOFILE).
    #[schema(minimum = 64, maximum = 1048576)]
    pub open_files: Option<u64>,
    /// Its CPU priority: 0 (as the control plane) to 19 (only what others leave).
    #[schema(minimum = 0, maximum = 19)]
    pub nice: Option<u8>,
}

/// How an instance is to be run, beside its release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Spec {
    #[serde(default)]
    pub restart: Restart,
    #[serde(default)]
    pub limits: Limits,
}

/// One instance as stored.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub user_id: String,
    /// The release it runs.
    pub version: String,
    pub desired: Desired,
    pub state: State,
    pub port: u16,
    pub pid: Option<u32>,
    /// Restarts after a crash or a failing health check.
    pub restarts: u32,
    /// Consecutive failed starts or probes, for the backoff.
    pub failures: u32,
    /// Ms since the epoch.
    pub last_probe_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub spec: Spec,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the control plane's database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the control plane's database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the control plane's database did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("the control plane's lock file: {0}")]
    Lock(std::io::Error),
    #[error("the control plane's database holds an unreadable record: {0}")]
    Record(#[from] serde_json::Error),
}

/// The state store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

const COLUMNS: &str = "id, user_id, desired, state, port, pid, restarts, failures, last_probe_at,
    last_error, created_at, updated_at, version, spec";

fn from_row(row: &[Cell]) -> Instance {
    let small = |cell: &Cell| u32::try_from(cell.int()).unwrap_or(u32::MAX);
    Instance {
        id: row[0].text(),
        user_id: row[1].text(),
        desired: Desired::parse(&row[2].text()),
        state: State::parse(&row[3].text()).unwrap_or(State::Failed),
        port: u16::try_from(row[4].int()).unwrap_or(0),
        pid: row[5].opt_int().and_then(|pid| u32::try_from(pid).ok()),
        restarts: small(&row[6]),
        failures: small(&row[7]),
        last_probe_at: row[8].opt_int(),
        last_error: row[9].opt_text(),
        created_at: row[10].int(),
        updated_at: row[11].int(),
        version: row[12].text(),
        // A record from before specs runs as the defaults say.
        spec: row[13]
            .opt_text()
            .and_then(|spec| serde_json::from_str(&spec).ok())
            .unwrap_or_default(),
    }
}

fn text(value: &str) -> Param {
    Param::Text(value.to_owned())
}

impl Store {
    /// The SQLite store in `dir` (`controlplane.db`).
    pub fn open_sqlite(dir: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::open_sqlite(dir)?,
        })
    }

    /// The PostgreSQL store at `url`.
    pub async fn connect_postgres(url: &str) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::connect_postgres(url).await?,
        })
    }

    /// Tries once to become the control plane that acts on instances.
    pub async fn lead(&self) -> Result<bool, StoreError> {
        self.backend.lead().await
    }

    /// Resolves when the database connection is gone for good.
    pub async fn lost(&self) {
        self.backend.lost().await
    }

    pub async fn insert(&self, instance: &Instance) -> Result<(), StoreError> {
        self.backend
            .execute(
                "INSERT INTO instances (id, user_id, desired, state, port, created_at, updated_at, version, spec)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
                &[
                    text(&instance.id),
                    text(&instance.user_id),
                    text(instance.desired.as_str()),
                    text(instance.state.as_str()),
                    Param::Int(instance.port.into()),
                    Param::Int(instance.created_at),
                    text(&instance.version),
                    Param::Text(serde_json::to_string(&instance.spec)?),
                ],
            )
            .await
            .map(|_| ())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Instance>, StoreError> {
        let rows = self
            .backend
            .query(
                &format!("SELECT {COLUMNS} FROM instances WHERE id = ?1"),
                &[text(id)],
            )
            .await?;
        Ok(rows.first().map(|row| from_row(row)))
    }

    /// Every instance not destroyed, oldest first.
    pub async fn list(&self) -> Result<Vec<Instance>, StoreError> {
        let rows = self
            .backend
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM instances WHERE state != 'destroyed' ORDER BY created_at, id"
                ),
                &[],
            )
            .await?;
        Ok(rows.iter().map(|row| from_row(row)).collect())
    }

    pub async fn set_desired(
        &self,
        id: &str,
        desired: Desired,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.backend
            .execute(
                "UPDATE instances SET desired = ?2, failures = 0, updated_at = ?3 WHERE id = ?1",
                &[text(id), text(desired.as_str()), Param::Int(now)],
            )
            .await
            .map(|n| n > 0)
    }

    /// Moves an instance to another release (a rollout's step, or its revert).
    pub async fn set_version(&self, id: &str, version: &str, now: i64) -> Result<(), StoreError> {
        self.backend
            .execute(
                "UPDATE instances SET version = ?2, updated_at = ?3 WHERE id = ?1",
                &[text(id), text(version), Param::Int(now)],
            )
            .await
            .map(|_| ())
    }

    /// Records what was observed of an instance (and, when its restart policy let it end,
    /// what is wanted of it now).
    pub async fn observe(&self, instance: &Instance, now: i64) -> Result<(), StoreError> {
        self.backend
            .execute(
                "UPDATE instances SET state = ?2, pid = ?3, restarts = ?4, failures = ?5,
                   last_probe_at = ?6, last_error = ?7, updated_at = ?8, desired = ?9 WHERE id = ?1",
                &[
                    text(&instance.id),
                    text(instance.state.as_str()),
                    Param::OptInt(instance.pid.map(i64::from)),
                    Param::Int(instance.restarts.into()),
                    Param::Int(instance.failures.into()),
                    Param::OptInt(instance.last_probe_at),
                    Param::OptText(instance.last_error.clone()),
                    Param::Int(now),
                    text(instance.desired.as_str()),
                ],
            )
            .await
            .map(|_| ())
    }

    /// Keeps a rollout's record (`body`, its JSON), new or changed.
    pub async fn put_rollout(
        &self,
        id: &str,
        state: &str,
        started_at: i64,
        body: &str,
    ) -> Result<(), StoreError> {
        self.backend
            .execute(
                "INSERT INTO rollouts (id, state, started_at, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, body = excluded.body",
                &[text(id), text(state), Param::Int(started_at), text(body)],
            )
            .await
            .map(|_| ())
    }

    /// A rollout's record.
    pub async fn rollout(&self, id: &str) -> Result<Option<String>, StoreError> {
        let rows = self
            .backend
            .query("SELECT body FROM rollouts WHERE id = ?1", &[text(id)])
            .await?;
        Ok(rows.first().map(|row| row[0].text()))
    }

    /// The records of the rollouts not finished (running or reverting), oldest first.
    pub async fn unfinished_rollouts(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .backend
            .query(
                "SELECT body FROM rollouts WHERE state IN ('running', 'reverting')
                 ORDER BY started_at, id",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|row| row[0].text()).collect())
    }
}
