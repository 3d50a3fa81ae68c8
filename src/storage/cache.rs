//! Services' caches (LLM answers, url2text pages), in a table of their own: a user's KV
//! keyspace holds only what the user stored, so listing or clearing it never shows or
//! breaks a cache, and a cache can never overwrite a user's key.
//!
//! Keys are namespaced by their service (`llm/…`, `url2text/…`); every entry expires, and
//! expired entries are absent from reads at once and purged in the background.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use crate::storage::db::{Db, now_ms};
use crate::storage::error::Result;

/// One entry to keep.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    pub key: String,
    pub value: Vec<u8>,
    pub ttl: Duration,
}

/// The cache table.
#[derive(Clone)]
pub struct Cache {
    db: Arc<Db>,
}

impl Cache {
    pub fn new(db: Arc<Db>) -> Cache {
        Cache { db }
    }

    /// The live value at `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = key.to_owned();
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT value FROM cache WHERE key = ?1 AND expires_at > ?2")?
                    .query_row(params![key, now_ms()], |r| r.get(0))
                    .optional()?)
            })
            .await
    }

    /// Keeps every entry, in one commit.
    pub async fn put_many(&self, entries: Vec<CacheEntry>) -> Result<()> {
        self.db
            .write(move |ctx| {
                let mut insert = ctx.conn.prepare_cached(
                    "INSERT INTO cache (key, value, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value,
                       expires_at = excluded.expires_at",
                )?;
                for entry in &entries {
                    let ttl_ms = i64::try_from(entry.ttl.as_millis()).unwrap_or(i64::MAX);
                    insert.execute(params![
                        entry.key,
                        entry.value,
                        ctx.now_ms.saturating_add(ttl_ms)
                    ])?;
                }
                Ok(())
            })
            .await
    }

    /// Removes up to `limit` expired entries; answers how many went.
    pub async fn purge_expired(&self, limit: usize) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .write(move |ctx| {
                Ok(ctx
                    .conn
                    .prepare_cached(
                        "DELETE FROM cache WHERE key IN
                         (SELECT key FROM cache WHERE expires_at <= ?1 LIMIT ?2)",
                    )?
                    .execute(params![ctx.now_ms, limit])?)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Store, StoreOptions};

    #[tokio::test]
    async fn entries_live_outside_the_kv_keyspace_and_expire() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
        let entry = |key: &str, ttl_ms| CacheEntry {
            key: key.into(),
            value: key.as_bytes().to_vec(),
            ttl: Duration::from_millis(ttl_ms),
        };
        store
            .cache
            .put_many(vec![entry("llm/a", 60_000), entry("llm/b", 20)])
            .await
            .expect("put");
        assert_eq!(
            store.cache.get("llm/a").await.expect("get"),
            Some(b"llm/a".to_vec())
        );
        let listed = store
            .kv
            .list(
                &crate::storage::kv::Selector::default(),
                &crate::storage::kv::ListOptions {
                    limit: 10,
                    reverse: false,
                    cursor: None,
                },
            )
            .await
            .expect("list");
        assert!(listed.entries.is_empty(), "the KV keyspace has no cache");
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(store.cache.get("llm/b").await.expect("get"), None);
        assert_eq!(store.cache.purge_expired(100).await.expect("purge"), 1);
    }
}
