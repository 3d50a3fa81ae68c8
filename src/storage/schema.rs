//! The tables of the store, created or upgraded when the database opens.

use rusqlite::Connection;

use crate::storage::error::Result;

/// Each entry is one schema version; append, never edit, so existing data dirs upgrade.
const MIGRATIONS: &[&str] = &[
    // 1: bookkeeping.
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v ANY) STRICT;",
    // 2: the key-value store and the task queue.
    "CREATE TABLE kv (
        key BLOB PRIMARY KEY,
        value BLOB NOT NULL,
        encoding INTEGER NOT NULL,
        versionstamp INTEGER NOT NULL,
        expires_at INTEGER
     ) STRICT, WITHOUT ROWID;
     CREATE INDEX kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
     CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        backoff_ms TEXT NOT NULL,
        keys_if_undelivered TEXT NOT NULL,
        timeout_ms INTEGER NOT NULL,
        run_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        lease INTEGER,
        lease_until INTEGER,
        last_error TEXT,
        result TEXT
     ) STRICT;
     CREATE INDEX tasks_due ON tasks (kind, run_at) WHERE status IN ('pending', 'retrying');
     CREATE INDEX tasks_by_status ON tasks (status, id);
     CREATE INDEX tasks_running ON tasks (lease_until) WHERE status = 'running';",
    // 3: services' caches, outside the user's KV keyspace.
    "CREATE TABLE cache (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        expires_at INTEGER NOT NULL
     ) STRICT, WITHOUT ROWID;
     CREATE INDEX cache_expiry ON cache (expires_at);",
    // 4: who enqueued a task (the fingerprint of the caller's API token; NULL on an
    // instance without tokens): the task runs with that caller's rights.
    "ALTER TABLE tasks ADD COLUMN created_by TEXT;",
    // 5: schedules that enqueue a task at each cron tick.
    "CREATE TABLE schedules (
        name TEXT PRIMARY KEY,
        cron TEXT NOT NULL,
        timezone TEXT NOT NULL,
        task TEXT NOT NULL,
        catch_up INTEGER NOT NULL,
        created_by TEXT,
        next_run_at INTEGER NOT NULL,
        last_run_at INTEGER,
        last_task_id INTEGER,
        runs INTEGER NOT NULL,
        skipped INTEGER NOT NULL,
        missed INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX schedules_due ON schedules (next_run_at);",
    // 6: the fact database (storage/facts). A fact row lives from the transaction that
    // asserted it (`added`) until the one that retracted it (`removed`), so any past state
    // can be read. `e` and `v` are ids of merkle references (`fact_refs`; a value's is the
    // reference of the value), `value` the value as JSON; the three indexes are Datomic's
    // EAV, AEV and VAE.
    "CREATE TABLE fact_txs (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        revision TEXT NOT NULL UNIQUE
     ) STRICT;
     CREATE TABLE fact_refs (
        id INTEGER PRIMARY KEY,
        digest BLOB NOT NULL UNIQUE
     ) STRICT;
     CREATE TABLE facts (
        id INTEGER PRIMARY KEY,
        e INTEGER NOT NULL,
        a TEXT NOT NULL,
        v INTEGER NOT NULL,
        value TEXT NOT NULL,
        added INTEGER NOT NULL,
        removed INTEGER
     ) STRICT;
     CREATE INDEX facts_eav ON facts (e, a, v);
     CREATE INDEX facts_aev ON facts (a, e);
     CREATE INDEX facts_vae ON facts (v, a);
     CREATE TABLE fact_queries (
        id TEXT PRIMARY KEY,
        query TEXT NOT NULL
     ) STRICT, WITHOUT ROWID;
     CREATE TABLE fact_blobs (
        id TEXT PRIMARY KEY,
        content_type TEXT NOT NULL,
        bytes BLOB NOT NULL
     ) STRICT;",
    // 7: the profile graph (routes/profile), a fact database of its own, shaped as 6's.
    "CREATE TABLE profile_fact_txs (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        revision TEXT NOT NULL UNIQUE
     ) STRICT;
     CREATE TABLE profile_fact_refs (
        id INTEGER PRIMARY KEY,
        digest BLOB NOT NULL UNIQUE
     ) STRICT;
     CREATE TABLE profile_facts (
        id INTEGER PRIMARY KEY,
        e INTEGER NOT NULL,
        a TEXT NOT NULL,
        v INTEGER NOT NULL,
        value TEXT NOT NULL,
        added INTEGER NOT NULL,
        removed INTEGER
     ) STRICT;
     CREATE INDEX profile_facts_eav ON profile_facts (e, a, v);
     CREATE INDEX profile_facts_aev ON profile_facts (a, e);
     CREATE INDEX profile_facts_vae ON profile_facts (v, a);",
    // 8: a reference's id is found by the first 8 bytes of its hash instead of all 32 (the
    // writer then checks the whole hash). Hashes are random, so a load's new references
    // land all over this index and each transaction writes every page it touched: with
    // entries 2.5 times smaller there are 2.5 times fewer (docs/PERFORMANCE.md, "Facts").
    // A UNIQUE constraint cannot be dropped, so both tables are copied.
    "CREATE TABLE fact_refs_v8 (
        id INTEGER PRIMARY KEY,
        digest BLOB NOT NULL
     ) STRICT;
     INSERT INTO fact_refs_v8 (id, digest) SELECT id, digest FROM fact_refs;
     DROP TABLE fact_refs;
     ALTER TABLE fact_refs_v8 RENAME TO fact_refs;
     CREATE INDEX fact_refs_prefix ON fact_refs (substr(digest, 1, 8));
     CREATE TABLE profile_fact_refs_v8 (
        id INTEGER PRIMARY KEY,
        digest BLOB NOT NULL
     ) STRICT;
     INSERT INTO profile_fact_refs_v8 (id, digest) SELECT id, digest FROM profile_fact_refs;
     DROP TABLE profile_fact_refs;
     ALTER TABLE profile_fact_refs_v8 RENAME TO profile_fact_refs;
     CREATE INDEX profile_fact_refs_prefix ON profile_fact_refs (substr(digest, 1, 8));",
];

/// Brings the schema up to date inside one transaction.
pub fn migrate(conn: &Connection) -> Result<()> {
    migrate_to(conn, MIGRATIONS.len())
}

fn migrate_to(conn: &Connection, version: usize) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    if current >= version {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(version).skip(current) {
        if let Err(e) = conn.execute_batch(sql) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_keep_their_ids_through_the_prefix_index() {
        let conn = Connection::open_in_memory().expect("database");
        migrate_to(&conn, 7).expect("version 7");
        for table in ["fact_refs", "profile_fact_refs"] {
            conn.execute(
                &format!("INSERT INTO {table} (id, digest) VALUES (3, ?1), (9, ?2)"),
                [[1u8; 32], [2u8; 32]],
            )
            .expect("references");
        }
        migrate(&conn).expect("latest");
        for table in ["fact_refs", "profile_fact_refs"] {
            let id: i64 = conn
                .query_row(
                    &format!(
                        "SELECT id FROM {table} WHERE substr(digest, 1, 8) = substr(?1, 1, 8) AND digest = ?1"
                    ),
                    [[2u8; 32]],
                    |r| r.get(0),
                )
                .expect("found by prefix");
            assert_eq!(id, 9);
            let next: i64 = conn
                .query_row(
                    &format!("INSERT INTO {table} (digest) VALUES (?1) RETURNING id"),
                    [[4u8; 32]],
                    |r| r.get(0),
                )
                .expect("insert");
            assert_eq!(next, 10, "ids go on after the copied ones");
        }
    }
}
