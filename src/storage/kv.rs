//! The key-value store: Deno KV's semantics (typed tuple keys, versionstamps, prefix and
//! range listing with cursors, atomic check-and-mutate with enqueues) over one SQLite table.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::params;
use serde_json::Value;

use crate::storage::db::{Db, WriteCtx, now_ms};
use crate::storage::entry::{
    ENTRY_COLUMNS, EncodedValue, Entry, KvValue, Row, read_entry, row, row_to_entry,
    versionstamp_bits, write_entry,
};
use crate::storage::error::{Result, StorageError};
use crate::storage::key::{self, Key, KeyPart};
use crate::storage::task::{NewTask, PreparedTask, QueueSignal, insert_task};

/// At most this many checks in one atomic operation (as in Deno KV).
pub const MAX_CHECKS: usize = 100;
/// At most this many mutations plus enqueues in one atomic operation (as in Deno KV).
pub const MAX_MUTATIONS: usize = 1000;
/// The longest `expire_in_ms` accepted: 10 years.
pub const MAX_EXPIRE_IN_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// Which keys a list covers.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// Keys strictly under this prefix (the prefix key itself is not listed).
    pub prefix: Option<Key>,
    /// Inclusive lower bound.
    pub start: Option<Key>,
    /// Exclusive upper bound.
    pub end: Option<Key>,
}

/// How to list.
#[derive(Debug, Clone)]
pub struct ListOptions {
    pub limit: usize,
    pub reverse: bool,
    /// Opaque: from a previous page of the same selector.
    pub cursor: Option<String>,
}

/// One page of a listing; `cursor` is set when more entries follow.
#[derive(Debug, Clone)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub cursor: Option<String>,
}

/// A condition of an atomic operation.
#[derive(Debug, Clone)]
pub struct Check {
    pub key: Key,
    /// The versionstamp the key must have, as its 80-bit value (see
    /// `entry::parse_versionstamp`); `None` means the key must be absent.
    pub versionstamp: Option<u128>,
}

/// A change in an atomic operation.
#[derive(Debug, Clone)]
pub enum Mutation {
    Set {
        key: Key,
        value: KvValue,
        expire_in_ms: Option<u64>,
    },
    Delete {
        key: Key,
    },
    /// Adds to an integer value (absent counts as 0).
    Sum {
        key: Key,
        value: i64,
    },
    /// Keeps the smaller of the stored integer and this one (absent takes this one).
    Min {
        key: Key,
        value: i64,
    },
    /// Keeps the larger of the stored integer and this one (absent takes this one).
    Max {
        key: Key,
        value: i64,
    },
}

/// Checks, mutations and enqueues applied together or not at all.
#[derive(Debug, Clone, Default)]
pub struct Atomic {
    pub checks: Vec<Check>,
    pub mutations: Vec<Mutation>,
    pub enqueues: Vec<NewTask>,
}

/// The outcome of an atomic operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Commit {
    /// Everything was applied with this versionstamp; `task_ids` are the enqueued tasks.
    Ok {
        versionstamp: u64,
        task_ids: Vec<i64>,
    },
    /// A check did not hold; nothing was applied.
    CheckFailed,
}

/// The key-value store.
#[derive(Clone)]
pub struct Kv {
    db: Arc<Db>,
    max_value_bytes: usize,
    queue: QueueSignal,
}

fn integer_of(entry: Option<&Entry>, op: &str) -> Result<Option<i64>> {
    match entry.map(|e| &e.value) {
        None => Ok(None),
        Some(KvValue::Json(Value::Number(n))) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(_) => Err(StorageError::invalid(format!(
            "{op} needs the stored value to be an integer"
        ))),
    }
}

impl Kv {
    pub fn new(db: Arc<Db>, max_value_bytes: usize, queue: QueueSignal) -> Kv {
        Kv {
            db,
            max_value_bytes,
            queue,
        }
    }

    /// Encodes a value for storage, refusing it over the size limit.
    fn encode_value(&self, value: &KvValue) -> Result<EncodedValue> {
        let encoded = value.encode()?;
        if encoded.raw.len() > self.max_value_bytes {
            return Err(StorageError::TooLarge(format!(
                "value is {} bytes; the limit is {}",
                encoded.raw.len(),
                self.max_value_bytes
            )));
        }
        Ok(encoded)
    }

    /// Reads one key; expired entries are absent.
    pub async fn get(&self, key: &[KeyPart]) -> Result<Option<Entry>> {
        let encoded = key::encode(key)?;
        self.db
            .read(move |conn| read_entry(conn, &encoded, now_ms()))
            .await
    }

    /// Reads several keys in one snapshot.
    pub async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        let encoded = keys
            .iter()
            .map(|k| key::encode(k))
            .collect::<Result<Vec<_>>>()?;
        let now = now_ms();
        self.db
            .read(move |conn| {
                // One read transaction, so all keys come from the same snapshot.
                conn.execute_batch("BEGIN")?;
                let result = encoded.iter().map(|k| read_entry(conn, k, now)).collect();
                conn.execute_batch("COMMIT")?;
                result
            })
            .await
    }

    /// Sets one key; answers the new versionstamp.
    pub async fn set(&self, key: Key, value: KvValue, expire_in_ms: Option<u64>) -> Result<u64> {
        let op = Atomic {
            mutations: vec![Mutation::Set {
                key,
                value,
                expire_in_ms,
            }],
            ..Default::default()
        };
        match self.atomic(op).await? {
            Commit::Ok { versionstamp, .. } => Ok(versionstamp),
            Commit::CheckFailed => Err(StorageError::Conflict("unexpected check failure".into())),
        }
    }

    /// Deletes one key (absent keys are fine); answers the versionstamp of the commit.
    pub async fn delete(&self, key: Key) -> Result<u64> {
        let op = Atomic {
            mutations: vec![Mutation::Delete { key }],
            ..Default::default()
        };
        match self.atomic(op).await? {
            Commit::Ok { versionstamp, .. } => Ok(versionstamp),
            Commit::CheckFailed => Err(StorageError::Conflict("unexpected check failure".into())),
        }
    }

    /// Applies checks, mutations and enqueues together, or nothing if a check fails.
    pub async fn atomic(&self, op: Atomic) -> Result<Commit> {
        if op.checks.len() > MAX_CHECKS {
            return Err(StorageError::TooLarge(format!(
                "{} checks; the limit is {MAX_CHECKS}",
                op.checks.len()
            )));
        }
        let changes = op.mutations.len() + op.enqueues.len();
        if changes > MAX_MUTATIONS {
            return Err(StorageError::TooLarge(format!(
                "{changes} mutations and enqueues; the limit is {MAX_MUTATIONS}"
            )));
        }
        // Validate everything before touching the writer, so bad input costs nothing there.
        let checks = op
            .checks
            .into_iter()
            .map(|c| Ok((key::encode(&c.key)?, c.versionstamp)))
            .collect::<Result<Vec<_>>>()?;
        let mut mutations = Vec::with_capacity(op.mutations.len());
        for m in op.mutations {
            mutations.push(match m {
                Mutation::Set {
                    key,
                    value,
                    expire_in_ms,
                } => {
                    if expire_in_ms.is_some_and(|ms| ms == 0 || ms > MAX_EXPIRE_IN_MS) {
                        return Err(StorageError::invalid(format!(
                            "expire_in_ms must be from 1 to {MAX_EXPIRE_IN_MS}"
                        )));
                    }
                    Change::Set {
                        key: key::encode(&key)?,
                        value: self.encode_value(&value)?,
                        expire_in_ms,
                    }
                }
                Mutation::Delete { key } => Change::Delete {
                    key: key::encode(&key)?,
                },
                Mutation::Sum { key, value } => Change::Combine {
                    key: key::encode(&key)?,
                    op: Combine::Sum,
                    value,
                },
                Mutation::Min { key, value } => Change::Combine {
                    key: key::encode(&key)?,
                    op: Combine::Min,
                    value,
                },
                Mutation::Max { key, value } => Change::Combine {
                    key: key::encode(&key)?,
                    op: Combine::Max,
                    value,
                },
            });
        }
        let enqueues = op
            .enqueues
            .iter()
            .map(|task| task.prepare(self.max_value_bytes))
            .collect::<Result<Vec<_>>>()?;
        let has_enqueues = !enqueues.is_empty();

        let commit = self
            .db
            .write(move |ctx| apply(ctx, &checks, &mutations, &enqueues))
            .await?;
        if has_enqueues && matches!(commit, Commit::Ok { .. }) {
            self.queue.wake();
        }
        Ok(commit)
    }

    /// Lists a page of entries in key order (or reverse).
    pub async fn list(&self, selector: &Selector, options: &ListOptions) -> Result<Page> {
        let (mut lo, mut hi) = bounds(selector)?;
        if let Some(cursor) = &options.cursor {
            let after = URL_SAFE_NO_PAD
                .decode(cursor)
                .map_err(|_| StorageError::invalid("cursor is not valid"))?;
            if after < lo || after >= hi {
                return Err(StorageError::invalid(
                    "cursor does not belong to this selection",
                ));
            }
            if options.reverse {
                hi = after;
            } else {
                lo = after;
                lo.push(0x00);
            }
        }
        let limit = options.limit.max(1);
        let order = if options.reverse { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM kv
             WHERE key >= ?1 AND key < ?2 AND (expires_at IS NULL OR expires_at > ?3)
             ORDER BY key {order} LIMIT ?4"
        );
        let now = now_ms();
        let rows: Vec<Row> = self
            .db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(
                    params![lo, hi, now, i64::try_from(limit + 1).unwrap_or(i64::MAX)],
                    row,
                )?;
                Ok(rows.collect::<rusqlite::Result<Vec<Row>>>()?)
            })
            .await?;
        let more = rows.len() > limit;
        let mut entries = Vec::with_capacity(limit.min(rows.len()));
        let mut last_key = None;
        for row in rows.into_iter().take(limit) {
            last_key = Some(row.0.clone());
            entries.push(row_to_entry(row)?);
        }
        let cursor = if more {
            last_key.map(|k| URL_SAFE_NO_PAD.encode(k))
        } else {
            None
        };
        Ok(Page { entries, cursor })
    }

    /// Removes up to `limit` expired entries; answers how many went.
    pub async fn purge_expired(&self, limit: usize) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .write(move |ctx| {
                let n = ctx
                    .conn
                    .prepare_cached(
                        "DELETE FROM kv WHERE key IN
                         (SELECT key FROM kv WHERE expires_at <= ?1 LIMIT ?2)",
                    )?
                    .execute(params![ctx.now_ms, limit])?;
                Ok(n)
            })
            .await
    }
}

/// The byte range `[lo, hi)` a selector covers, refusing the selectors Deno refuses: a
/// start or end outside the prefix (or equal to it), all three bounds at once, a start
/// after the end.
fn bounds(selector: &Selector) -> Result<(Vec<u8>, Vec<u8>)> {
    let encode = |k: &Option<Key>| k.as_deref().map(key::encode_prefix).transpose();
    let (prefix, start, end) = (
        encode(&selector.prefix)?,
        encode(&selector.start)?,
        encode(&selector.end)?,
    );
    match (prefix, start, end) {
        (Some(_), Some(_), Some(_)) => Err(StorageError::invalid(
            "give a prefix with a start or with an end, or a start and an end, not all three",
        )),
        (Some(prefix), start, end) => {
            let within = |k: &[u8]| k.len() > prefix.len() && k.starts_with(&prefix);
            if start.as_deref().is_some_and(|s| !within(s)) {
                return Err(StorageError::invalid(
                    "start key is not in the keyspace defined by prefix",
                ));
            }
            if end.as_deref().is_some_and(|e| !within(e)) {
                return Err(StorageError::invalid(
                    "end key is not in the keyspace defined by prefix",
                ));
            }
            let lo = start.unwrap_or_else(|| [prefix.as_slice(), &[0x00]].concat());
            let hi = end.unwrap_or_else(|| [prefix.as_slice(), &[0xFF]].concat());
            Ok((lo, hi))
        }
        (None, start, end) => {
            let lo = start.unwrap_or_default();
            let hi = end.unwrap_or_else(|| vec![0xFF]);
            if lo > hi {
                return Err(StorageError::invalid("start key is greater than end key"));
            }
            Ok((lo, hi))
        }
    }
}

/// How an integer mutation combines with the stored integer.
#[derive(Debug, Clone, Copy)]
enum Combine {
    Sum,
    Min,
    Max,
}

/// A mutation checked and encoded before it reaches the writer.
enum Change {
    Set {
        key: Vec<u8>,
        value: EncodedValue,
        expire_in_ms: Option<u64>,
    },
    Delete {
        key: Vec<u8>,
    },
    Combine {
        key: Vec<u8>,
        op: Combine,
        value: i64,
    },
}

fn apply(
    ctx: &mut WriteCtx<'_>,
    checks: &[(Vec<u8>, Option<u128>)],
    changes: &[Change],
    enqueues: &[PreparedTask],
) -> Result<Commit> {
    let now = ctx.now_ms;
    for (encoded, expected) in checks {
        let current =
            read_entry(ctx.conn, encoded, now)?.map(|e| versionstamp_bits(e.versionstamp));
        if current != *expected {
            return Ok(Commit::CheckFailed);
        }
    }
    let version = ctx.version();
    for change in changes {
        match change {
            Change::Set {
                key,
                value,
                expire_in_ms,
            } => {
                let expires_at = expire_in_ms
                    .map(|ms| now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)));
                write_entry(ctx.conn, key, value, version, expires_at)?;
            }
            Change::Delete { key } => {
                ctx.conn
                    .prepare_cached("DELETE FROM kv WHERE key = ?1")?
                    .execute([key])?;
            }
            Change::Combine { key, op, value } => {
                let current = read_entry(ctx.conn, key, now)?;
                let name = match op {
                    Combine::Sum => "sum",
                    Combine::Min => "min",
                    Combine::Max => "max",
                };
                let stored = integer_of(current.as_ref(), name)?;
                let combined = match (op, stored) {
                    (_, None) => Some(*value),
                    (Combine::Sum, Some(c)) => c.checked_add(*value),
                    (Combine::Min, Some(c)) => Some(c.min(*value)),
                    (Combine::Max, Some(c)) => Some(c.max(*value)),
                };
                let combined = combined.ok_or_else(|| {
                    StorageError::invalid(format!("{name} overflows a 64-bit integer"))
                })?;
                // The entry keeps its expiry, as the value changes but not its lifetime.
                let expires_at = current.and_then(|e| e.expires_at);
                let value = KvValue::Json(Value::from(combined)).encode()?;
                write_entry(ctx.conn, key, &value, version, expires_at)?;
            }
        }
    }
    let mut task_ids = Vec::with_capacity(enqueues.len());
    for task in enqueues {
        task_ids.push(insert_task(ctx.conn, now, task)?);
    }
    Ok(Commit::Ok {
        versionstamp: version,
        task_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Store;
    use tempfile::TempDir as Dir;

    fn s(x: &str) -> KeyPart {
        KeyPart::String(x.into())
    }

    fn store(dir: &Dir) -> Store {
        Store::open(dir.path(), crate::storage::StoreOptions::default()).expect("store")
    }

    #[tokio::test]
    async fn set_get_delete_with_increasing_versionstamps() {
        let dir = Dir::new().expect("temp dir");
        let kv = store(&dir).kv;
        let v1 = kv
            .set(vec![s("a")], KvValue::Json(Value::from(1)), None)
            .await
            .expect("set");
        let v2 = kv
            .set(vec![s("a")], KvValue::Json(Value::from(2)), None)
            .await
            .expect("set");
        assert!(v2 > v1);
        let entry = kv.get(&[s("a")]).await.expect("get").expect("present");
        assert_eq!(entry.value, KvValue::Json(Value::from(2)));
        assert_eq!(entry.versionstamp, v2);
        kv.delete(vec![s("a")]).await.expect("delete");
        assert!(kv.get(&[s("a")]).await.expect("get").is_none());
    }

    #[tokio::test]
    async fn atomic_checks_apply_all_or_nothing() {
        let dir = Dir::new().expect("temp dir");
        let kv = store(&dir).kv;
        let v = kv
            .set(vec![s("x")], KvValue::Json(Value::from("old")), None)
            .await
            .expect("set");
        let stale = Atomic {
            checks: vec![Check {
                key: vec![s("x")],
                versionstamp: Some(versionstamp_bits(v + 1)),
            }],
            mutations: vec![Mutation::Set {
                key: vec![s("y")],
                value: KvValue::Json(Value::from(1)),
                expire_in_ms: None,
            }],
            ..Default::default()
        };
        assert_eq!(kv.atomic(stale).await.expect("atomic"), Commit::CheckFailed);
        assert!(
            kv.get(&[s("y")]).await.expect("get").is_none(),
            "nothing applied"
        );

        let fresh = Atomic {
            checks: vec![
                Check {
                    key: vec![s("x")],
                    versionstamp: Some(versionstamp_bits(v)),
                },
                Check {
                    key: vec![s("absent")],
                    versionstamp: None,
                },
            ],
            mutations: vec![
                Mutation::Set {
                    key: vec![s("y")],
                    value: KvValue::Json(Value::from(1)),
                    expire_in_ms: None,
                },
                Mutation::Sum {
                    key: vec![s("n")],
                    value: 5,
                },
                Mutation::Sum {
                    key: vec![s("n")],
                    value: 2,
                },
                Mutation::Max {
                    key: vec![s("m")],
                    value: 3,
                },
                Mutation::Min {
                    key: vec![s("m")],
                    value: -4,
                },
                Mutation::Delete { key: vec![s("x")] },
            ],
            ..Default::default()
        };
        let Commit::Ok { versionstamp, .. } = kv.atomic(fresh).await.expect("atomic") else {
            panic!("checks hold");
        };
        let y = kv.get(&[s("y")]).await.expect("get").expect("y");
        assert_eq!(y.versionstamp, versionstamp, "one versionstamp per commit");
        assert_eq!(
            kv.get(&[s("n")]).await.expect("get").expect("n").value,
            KvValue::Json(Value::from(7))
        );
        assert_eq!(
            kv.get(&[s("m")]).await.expect("get").expect("m").value,
            KvValue::Json(Value::from(-4))
        );
        assert!(kv.get(&[s("x")]).await.expect("get").is_none());
    }

    #[tokio::test]
    async fn a_failing_mutation_rolls_back_the_whole_operation() {
        let dir = Dir::new().expect("temp dir");
        let kv = store(&dir).kv;
        kv.set(
            vec![s("text")],
            KvValue::Json(Value::from("not a number")),
            None,
        )
        .await
        .expect("set");
        let op = Atomic {
            mutations: vec![
                Mutation::Set {
                    key: vec![s("z")],
                    value: KvValue::Json(Value::from(1)),
                    expire_in_ms: None,
                },
                Mutation::Sum {
                    key: vec![s("text")],
                    value: 1,
                },
            ],
            ..Default::default()
        };
        assert!(matches!(kv.atomic(op).await, Err(StorageError::Invalid(_))));
        assert!(kv.get(&[s("z")]).await.expect("get").is_none());
    }

    #[tokio::test]
    async fn expired_entries_vanish_from_reads_at_once_and_are_purged() {
        let dir = Dir::new().expect("temp dir");
        let kv = store(&dir).kv;
        kv.set(vec![s("t")], KvValue::Json(Value::from(1)), Some(30))
            .await
            .expect("set");
        assert!(kv.get(&[s("t")]).await.expect("get").is_some());
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        assert!(kv.get(&[s("t")]).await.expect("get").is_none());
        let page = kv
            .list(
                &Selector::default(),
                &ListOptions {
                    limit: 10,
                    reverse: false,
                    cursor: None,
                },
            )
            .await
            .expect("list");
        assert!(page.entries.is_empty());
        assert_eq!(kv.purge_expired(100).await.expect("purge"), 1);
    }

    #[tokio::test]
    async fn cursors_page_through_a_prefix_both_ways() {
        let dir = Dir::new().expect("temp dir");
        let kv = store(&dir).kv;
        for i in 0..7 {
            kv.set(
                vec![s("p"), KeyPart::Int(i)],
                KvValue::Json(Value::from(i)),
                None,
            )
            .await
            .expect("set");
        }
        kv.set(
            vec![s("p")],
            KvValue::Json(Value::from("the prefix itself")),
            None,
        )
        .await
        .expect("set");
        kv.set(
            vec![s("q"), KeyPart::Int(0)],
            KvValue::Json(Value::from(0)),
            None,
        )
        .await
        .expect("set");
        for reverse in [false, true] {
            let selector = Selector {
                prefix: Some(vec![s("p")]),
                ..Default::default()
            };
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let page = kv
                    .list(
                        &selector,
                        &ListOptions {
                            limit: 3,
                            reverse,
                            cursor: cursor.clone(),
                        },
                    )
                    .await
                    .expect("list");
                seen.extend(page.entries.iter().map(|e| e.key[1].clone()));
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let mut expected: Vec<KeyPart> = (0..7).map(KeyPart::Int).collect();
            if reverse {
                expected.reverse();
            }
            assert_eq!(seen, expected, "reverse = {reverse}");
        }
        let range = Selector {
            start: Some(vec![s("p"), KeyPart::Int(2)]),
            end: Some(vec![s("p"), KeyPart::Int(4)]),
            prefix: None,
        };
        let page = kv
            .list(
                &range,
                &ListOptions {
                    limit: 100,
                    reverse: false,
                    cursor: None,
                },
            )
            .await
            .expect("list");
        assert_eq!(page.entries.len(), 2);
        let foreign = kv
            .list(
                &Selector {
                    prefix: Some(vec![s("q")]),
                    ..Default::default()
                },
                &ListOptions {
                    limit: 100,
                    reverse: false,
                    cursor: Some(
                        URL_SAFE_NO_PAD.encode(key::encode_unchecked(&[s("p"), KeyPart::Int(1)])),
                    ),
                },
            )
            .await;
        assert!(
            foreign.is_err(),
            "a cursor from another selection is refused"
        );
    }

    #[tokio::test]
    async fn limits_are_enforced_with_clear_errors() {
        let dir = Dir::new().expect("temp dir");
        let kv = store(&dir).kv;
        let big = KvValue::Bytes(vec![0; 2 * 1024 * 1024]);
        assert!(matches!(
            kv.set(vec![s("big")], big, None).await,
            Err(StorageError::TooLarge(_))
        ));
        let many = Atomic {
            mutations: (0..=MAX_MUTATIONS as i64)
                .map(|i| Mutation::Delete {
                    key: vec![KeyPart::Int(i)],
                })
                .collect(),
            ..Default::default()
        };
        assert!(matches!(
            kv.atomic(many).await,
            Err(StorageError::TooLarge(_))
        ));
    }
}
