//! Where the control plane's state lives: one SQLite file in its data directory (the
//! default), or a PostgreSQL database that two control planes share. The store's queries
//! are written once, with `?N` parameters, and run on either; rows come back as [`Cell`]s.
//!
//! Leadership: only one control plane acts on instances. With SQLite it is the one holding
//! the lock on `controlplane.lock` beside the database; with PostgreSQL the one holding a
//! session advisory lock, released by the server when that session ends.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::StoreError;

/// The advisory lock's key: "toolshed" in ASCII.
const LEADER_KEY: i64 = 0x746f_6f6c_7368_6564;
/// The key that serializes two control planes creating the schema at once.
const SCHEMA_KEY: i64 = LEADER_KEY + 1;
/// A PostgreSQL call that takes longer ends the session: a leader that cannot reach its
/// store cannot know it still leads.
const POSTGRES_TIMEOUT: Duration = Duration::from_secs(10);

/// A query parameter, bound alike on either database.
pub enum Param {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

impl Param {
    fn sqlite(&self) -> &dyn rusqlite::ToSql {
        match self {
            Param::Text(v) => v,
            Param::OptText(v) => v,
            Param::Int(v) => v,
            Param::OptInt(v) => v,
        }
    }

    fn postgres(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        match self {
            Param::Text(v) => v,
            Param::OptText(v) => v,
            Param::Int(v) => v,
            Param::OptInt(v) => v,
        }
    }
}

/// A column's value as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

impl Cell {
    pub fn int(&self) -> i64 {
        match self {
            Cell::Int(v) => *v,
            _ => 0,
        }
    }

    pub fn opt_int(&self) -> Option<i64> {
        match self {
            Cell::Int(v) => Some(*v),
            _ => None,
        }
    }

    pub fn text(&self) -> String {
        self.opt_text().unwrap_or_default()
    }

    pub fn opt_text(&self) -> Option<String> {
        match self {
            Cell::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub enum Backend {
    Sqlite {
        conn: Arc<Mutex<rusqlite::Connection>>,
        /// `controlplane.lock`, locked while this control plane leads.
        lock: Arc<std::fs::File>,
    },
    Postgres {
        client: Arc<tokio_postgres::Client>,
        /// Cancelled when the session (and with it any advisory lock) is gone.
        lost: CancellationToken,
    },
}

const SQLITE_SCHEMA: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
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
    ) STRICT;
    CREATE TABLE IF NOT EXISTS rollouts (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        body TEXT NOT NULL
    ) STRICT;";

/// Columns added after the first release of the table, added to older files at open.
const SQLITE_ADDED: [(&str, &str); 2] = [("version", "TEXT"), ("spec", "TEXT")];

const POSTGRES_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS instances (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        desired TEXT NOT NULL,
        state TEXT NOT NULL,
        port BIGINT NOT NULL,
        pid BIGINT,
        restarts BIGINT NOT NULL DEFAULT 0,
        failures BIGINT NOT NULL DEFAULT 0,
        last_probe_at BIGINT,
        last_error TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        version TEXT,
        spec TEXT
    );
    CREATE TABLE IF NOT EXISTS rollouts (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        body TEXT NOT NULL
    );";

impl Backend {
    pub fn open_sqlite(dir: &Path) -> Result<Backend, StoreError> {
        let conn = rusqlite::Connection::open(dir.join("controlplane.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SQLITE_SCHEMA)?;
        // In one write transaction: two control planes opening an older file at once.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for (column, kind) in SQLITE_ADDED {
            let has = conn
                .prepare("SELECT 1 FROM pragma_table_info('instances') WHERE name = ?1")?
                .exists([column])?;
            if !has {
                conn.execute_batch(&format!(
                    "ALTER TABLE instances ADD COLUMN {column} {kind};"
                ))?;
            }
        }
        conn.execute_batch("COMMIT")?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("controlplane.lock"))
            .map_err(StoreError::Lock)?;
        Ok(Backend::Sqlite {
            conn: Arc::new(Mutex::new(conn)),
            lock: Arc::new(lock),
        })
    }

    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`, no TLS: a
    /// database on this host or a private network) and creates the tables if missing.
    pub async fn connect_postgres(url: &str) -> Result<Backend, StoreError> {
        let mut config: tokio_postgres::Config = url.parse()?;
        // A server or link gone silent must end the session (and the lead) in seconds, not
        // at the kernel's two hours.
        config
            .connect_timeout(POSTGRES_TIMEOUT)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3);
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        let lost = CancellationToken::new();
        let on_end = lost.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!(error = %e, "the control plane's PostgreSQL session ended");
            }
            on_end.cancel();
        });
        client
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_KEY}); {POSTGRES_SCHEMA} COMMIT;"
            ))
            .await?;
        Ok(Backend::Postgres {
            client: Arc::new(client),
            lost,
        })
    }

    /// Runs a statement; the rows it changed.
    pub async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        match self {
            Backend::Sqlite { conn, .. } => {
                let conn = conn
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let bound: Vec<&dyn rusqlite::ToSql> = params.iter().map(Param::sqlite).collect();
                Ok(conn.execute(sql, bound.as_slice())? as u64)
            }
            Backend::Postgres { client, lost } => {
                let bound: Vec<_> = params.iter().map(Param::postgres).collect();
                Ok(within(lost, client.execute(&dollars(sql), &bound)).await??)
            }
        }
    }

    /// Runs a query; its rows.
    pub async fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Vec<Cell>>, StoreError> {
        match self {
            Backend::Sqlite { conn, .. } => {
                let conn = conn
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let bound: Vec<&dyn rusqlite::ToSql> = params.iter().map(Param::sqlite).collect();
                let mut stmt = conn.prepare(sql)?;
                let width = stmt.column_count();
                let rows = stmt.query_map(bound.as_slice(), |row| {
                    (0..width)
                        .map(|i| {
                            Ok(match row.get_ref(i)? {
                                rusqlite::types::ValueRef::Integer(v) => Cell::Int(v),
                                rusqlite::types::ValueRef::Text(v) => {
                                    Cell::Text(String::from_utf8_lossy(v).into_owned())
                                }
                                _ => Cell::Null,
                            })
                        })
                        .collect::<rusqlite::Result<Vec<Cell>>>()
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            }
            Backend::Postgres { client, lost } => {
                let bound: Vec<_> = params.iter().map(Param::postgres).collect();
                let rows = within(lost, client.query(&dollars(sql), &bound)).await??;
                rows.iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| {
                                let cell = if *row.columns()[i].type_()
                                    == tokio_postgres::types::Type::INT8
                                {
                                    row.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
                                } else {
                                    row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
                                };
                                Ok(cell.unwrap_or(Cell::Null))
                            })
                            .collect()
                    })
                    .collect()
            }
        }
    }

    /// Tries once to become the leader; `true` when this control plane holds the lock (a
    /// second call while holding it is `true` again).
    pub async fn lead(&self) -> Result<bool, StoreError> {
        match self {
            Backend::Sqlite { lock, .. } => match lock.try_lock() {
                Ok(()) => Ok(true),
                Err(std::fs::TryLockError::WouldBlock) => Ok(false),
                Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Lock(e)),
            },
            Backend::Postgres { client, lost } => {
                let sql = format!("SELECT pg_try_advisory_lock({LEADER_KEY})");
                let row = within(lost, client.query_one(&sql, &[])).await??;
                Ok(row.try_get::<_, bool>(0)?)
            }
        }
    }

    /// Resolves when the database is gone for good (and with it the leadership).
    pub async fn lost(&self) {
        match self {
            Backend::Sqlite { .. } => std::future::pending().await,
            Backend::Postgres { lost, .. } => lost.cancelled().await,
        }
    }
}

/// Runs a PostgreSQL call for at most [`POSTGRES_TIMEOUT`]; past it the session counts as
/// lost.
async fn within<T>(
    lost: &CancellationToken,
    call: impl std::future::Future<Output = T>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(POSTGRES_TIMEOUT, call).await {
        Ok(done) => Ok(done),
        Err(_) => {
            lost.cancel();
            Err(StoreError::Timeout(POSTGRES_TIMEOUT))
        }
    }
}

/// `?1` parameters as PostgreSQL writes them (`$1`); the queries hold no other `?`.
fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_renumbered_for_postgres() {
        assert_eq!(
            dollars("UPDATE t SET a = ?2 WHERE id = ?1"),
            "UPDATE t SET a = $2 WHERE id = $1"
        );
    }
}
