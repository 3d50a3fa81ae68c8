//! The control plane's own state: one SQLite file in its data directory holding each
//! instance's desired and observed state. A few writes a second at most, so one connection
//! behind a lock; every call is short.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

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
    fn as_str(self) -> &'static str {
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
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the control plane's database: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The state store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

const COLUMNS: &str = "id, user_id, desired, state, port, pid, restarts, failures, last_probe_at,
    last_error, created_at, updated_at, version";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Instance> {
    let state: String = row.get(3)?;
    Ok(Instance {
        id: row.get(0)?,
        user_id: row.get(1)?,
        desired: Desired::parse(&row.get::<_, String>(2)?),
        state: State::parse(&state).unwrap_or(State::Failed),
        port: row.get(4)?,
        pid: row.get(5)?,
        restarts: row.get(6)?,
        failures: row.get(7)?,
        last_probe_at: row.get(8)?,
        last_error: row.get(9)?,
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
        version: row.get::<_, Option<String>>(12)?.unwrap_or_default(),
    })
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS instances (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                desired TEXT NOT NULL,
                state TEXT NOT NULL,
                port INTEGER NOT NULL,
                pid INTEGER,
                restarts INTEGER NOT NULL DEFAULT 0,
                failures INTEGER NOT NULL DEFAULT 0,
                last_probe_at INTEGER,
                last_error TEXT,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
             ) STRICT;",
        )?;
        let has_version = conn
            .prepare("SELECT 1 FROM pragma_table_info('instances') WHERE name = 'version'")?
            .exists([])?;
        if !has_version {
            conn.execute_batch("ALTER TABLE instances ADD COLUMN version TEXT;")?;
        }
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(work(&conn)?)
    }

    pub fn insert(&self, instance: &Instance) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO instances (id, user_id, desired, state, port, created_at, updated_at, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
                params![
                    instance.id,
                    instance.user_id,
                    instance.desired.as_str(),
                    instance.state.as_str(),
                    instance.port,
                    instance.created_at,
                    instance.version
                ],
            )
            .map(|_| ())
        })
    }

    pub fn get(&self, id: &str) -> Result<Option<Instance>, StoreError> {
        self.with(|conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM instances WHERE id = ?1"),
                [id],
                from_row,
            )
            .optional()
        })
    }

    /// Every instance not destroyed, oldest first.
    pub fn list(&self) -> Result<Vec<Instance>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM instances WHERE state != 'destroyed' ORDER BY created_at, id"
            ))?;
            stmt.query_map([], from_row)?.collect()
        })
    }

    pub fn set_desired(&self, id: &str, desired: Desired, now: i64) -> Result<bool, StoreError> {
        self.with(|conn| {
            conn.execute(
                "UPDATE instances SET desired = ?2, failures = 0, updated_at = ?3 WHERE id = ?1",
                params![id, desired.as_str(), now],
            )
            .map(|n| n > 0)
        })
    }

    /// Moves an instance to another release (a rollout's step, or its revert).
    pub fn set_version(&self, id: &str, version: &str, now: i64) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "UPDATE instances SET version = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, version, now],
            )
            .map(|_| ())
        })
    }

    /// Records what was observed of an instance.
    pub fn observe(&self, instance: &Instance, now: i64) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "UPDATE instances SET state = ?2, pid = ?3, restarts = ?4, failures = ?5,
                   last_probe_at = ?6, last_error = ?7, updated_at = ?8 WHERE id = ?1",
                params![
                    instance.id,
                    instance.state.as_str(),
                    instance.pid,
                    instance.restarts,
                    instance.failures,
                    instance.last_probe_at,
                    instance.last_error,
                    now
                ],
            )
            .map(|_| ())
        })
    }
}
