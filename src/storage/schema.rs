//! The tables of the store, created or upgraded when the database opens.

use rusqlite::Connection;

use crate::storage::error::Result;

/// Each entry is one schema version; append, never edit, so existing data dirs upgrade.
const MIGRATIONS: &[&str] = &[
    // 1: bookkeeping.
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v ANY) STRICT;",
];

/// Brings the schema up to date inside one transaction.
pub fn migrate(conn: &Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    if current >= MIGRATIONS.len() {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        if let Err(e) = conn.execute_batch(sql) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}
