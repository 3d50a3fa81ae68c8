//! The fact database behind `/api/data` and `/api/profile`: synopsys' data model (facts
//! `[entity, attribute, value]`, content-derived ids) and query language, embedded. Each
//! part is checked against synopsys' own outputs (docs/design/synopsys-ids.md and
//! synopsys-queries.md): `reference` (ids), `position` and `import` (a JSON object as facts),
//! `query_id` (a stored query's id, over `ordered_json`), `revision` (revision ids);
//! `store` keeps facts in SQLite with their history, `query`, `operators`, `evaluate` and
//! `select` answer queries, `live` wakes the subscriptions a transaction affects.

pub mod evaluate;
pub mod import;
pub mod live;
pub mod operators;
pub mod ordered_json;
pub mod position;
pub mod query;
pub mod query_id;
pub mod reference;
pub mod revision;
pub mod select;
pub mod store;
pub mod value;

#[cfg(test)]
mod naive_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use crate::storage::db::Db;
use crate::storage::error::{Result, StorageError};
use evaluate::Source;
use query::Query;
use reference::Reference;
use store::{Commit, Instruction, Row, Space, Visible};

/// Which state a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOf {
    /// After this transaction (0 = the empty database).
    Transaction(i64),
    /// After the transaction that made this revision id.
    Revision(String),
}

/// How to cut a query's answer into a page.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    /// Row keys to sort by, in turn; `-key` descending (see `select::order_rows`).
    pub order: Vec<String>,
    pub offset: usize,
    pub limit: Option<usize>,
}

/// A page of a query's answer, and the revision it was read at.
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<Value>,
    /// Rows before paging.
    pub total: usize,
    pub revision: String,
}

/// The fact database's handle, cheap to clone.
#[derive(Clone)]
pub struct Facts {
    db: Arc<Db>,
    space: Space,
    live: Arc<live::Live>,
}

impl std::fmt::Debug for Facts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Facts").field("space", &self.space).finish()
    }
}

struct SqlSource<'a> {
    conn: &'a Connection,
    space: Space,
    at: Visible,
}

impl Source for SqlSource<'_> {
    fn scan(
        &self,
        e: Option<&Reference>,
        a: Option<&str>,
        v: Option<&Reference>,
    ) -> Result<Vec<Row>> {
        store::scan(self.conn, self.space, e, a, v, self.at)
    }
}

/// A source that notes every lookup made through it.
struct Recording<'a> {
    inner: SqlSource<'a>,
    lookups: std::cell::RefCell<Vec<live::Lookup>>,
}

impl Source for Recording<'_> {
    fn scan(
        &self,
        e: Option<&Reference>,
        a: Option<&str>,
        v: Option<&Reference>,
    ) -> Result<Vec<Row>> {
        self.lookups.borrow_mut().push(live::Lookup {
            e: e.copied(),
            a: a.map(str::to_owned),
            v: v.copied(),
        });
        self.inner.scan(e, a, v)
    }
}

impl Facts {
    pub fn new(db: Arc<Db>, space: Space) -> Facts {
        Facts {
            db,
            space,
            live: Arc::new(live::Live::default()),
        }
    }

    pub fn live(&self) -> &live::Live {
        &self.live
    }

    /// Applies a transaction, all of it or nothing, then wakes the live queries it affects.
    pub async fn transact(&self, instructions: Vec<Instruction>) -> Result<Commit> {
        let space = self.space;
        // Hashing a large transaction takes a while: not on the threads serving requests.
        let large = instructions.len() > 64
            || instructions
                .iter()
                .any(|i| matches!(i, Instruction::Import(_)));
        let prepared = if large {
            // Side by side on the blocking pool's threads, which live on between requests
            // (new threads each time left the allocator holding memory in more arenas).
            let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            let running: Vec<_> = store::shares(instructions, threads)
                .into_iter()
                .map(|share| tokio::task::spawn_blocking(move || store::prepare(share)))
                .collect();
            let mut prepared = Vec::new();
            for share in running {
                prepared.extend(share.await.map_err(|e| {
                    StorageError::Internal(format!("preparing a transaction: {e}"))
                })??);
            }
            prepared
        } else {
            store::prepare(instructions)?
        };
        // Committed and announced as one task: a caller that goes away once the write is
        // queued must not leave the live queries unwoken.
        let (db, live) = (self.db.clone(), self.live.clone());
        tokio::spawn(async move {
            let commit = db
                .write(move |ctx| store::transact(ctx, space, &prepared))
                .await?;
            live.committed(&commit);
            Ok(commit)
        })
        .await
        .map_err(|e| StorageError::Internal(format!("a transaction's task failed: {e}")))?
    }

    /// The latest transaction and its revision id.
    pub async fn head(&self) -> Result<(i64, String)> {
        let space = self.space;
        self.db.read(move |conn| store::head(conn, space)).await
    }

    /// The answer to `query`, now or as of a past transaction.
    pub async fn query(&self, query: Arc<Query>, as_of: Option<AsOf>) -> Result<Vec<Value>> {
        let space = self.space;
        self.db
            .read(move |conn| {
                // One transaction for every lookup of the query, even if one lands meanwhile.
                let (tx, _) = store::resolve(conn, space, as_of)?;
                let at = Visible::AsOf(tx);
                evaluate::evaluate(&SqlSource { conn, space, at }, &query)
            })
            .await
    }

    /// `select` and `where` as a query, answered at one revision (now, or `as_of`), sorted
    /// and paged. A bad query is `Invalid`, a revision or transaction not made `NotFound`.
    pub async fn query_page(
        &self,
        select: Option<ordered_json::Ordered>,
        clauses: ordered_json::Ordered,
        as_of: Option<AsOf>,
        paging: Paging,
    ) -> Result<Page> {
        let mut entries = Vec::with_capacity(2);
        if let Some(select) = select {
            entries.push(("select".to_owned(), select));
        }
        entries.push(("where".to_owned(), clauses));
        let query = query::parse(&ordered_json::Ordered::Object(entries), &[])
            .map_err(|e| StorageError::invalid(e.to_string()))?;
        if !paging.order.is_empty() {
            let query::Selection::Object(selected) = &query.select else {
                return Err(StorageError::invalid(
                    "order: only rows selected as an object {key: …} are ordered by their keys",
                ));
            };
            for key in &paging.order {
                let key = key.strip_prefix('-').unwrap_or(key);
                if !selected.iter().any(|(k, _)| k == key) {
                    return Err(StorageError::invalid(format!(
                        "order: {key:?} is not a key of select"
                    )));
                }
            }
        }
        let space = self.space;
        self.db
            .read(move |conn| {
                // One transaction for rows and revision alike, even if one lands meanwhile.
                let (tx, revision) = store::resolve(conn, space, as_of)?;
                let source = SqlSource {
                    conn,
                    space,
                    at: Visible::AsOf(tx),
                };
                let mut rows = evaluate::evaluate(&source, &query)?;
                select::order_rows(&mut rows, &paging.order);
                let total = rows.len();
                let rows = rows
                    .into_iter()
                    .skip(paging.offset)
                    .take(paging.limit.unwrap_or(usize::MAX))
                    .collect();
                Ok(Page {
                    rows,
                    total,
                    revision,
                })
            })
            .await
    }

    /// A live query's answer now, with the lookups that made it and the transaction it is
    /// as of (for `live::Live::record`).
    pub async fn query_recorded(
        &self,
        query: Arc<Query>,
    ) -> Result<(Vec<Value>, Vec<live::Lookup>, i64)> {
        let space = self.space;
        self.db
            .read(move |conn| {
                let (tx, _) = store::head(conn, space)?;
                let source = Recording {
                    inner: SqlSource {
                        conn,
                        space,
                        at: Visible::AsOf(tx),
                    },
                    lookups: std::cell::RefCell::new(Vec::new()),
                };
                let rows = evaluate::evaluate(&source, &query)?;
                Ok((rows, source.lookups.into_inner(), tx))
            })
            .await
    }

    /// Every current fact of `entity` and every current fact pointing at it.
    pub async fn entity(&self, entity: Reference) -> Result<(Vec<Row>, Vec<Row>)> {
        let space = self.space;
        self.db
            .read(move |conn| {
                let out = store::scan(conn, space, Some(&entity), None, None, Visible::Now)?;
                let incoming = store::scan(conn, space, None, None, Some(&entity), Visible::Now)?;
                Ok((out, incoming))
            })
            .await
    }

    /// Current facts mentioning every word (attribute or value), up to `limit`, but those
    /// whose attribute starts with `hidden`.
    pub async fn search(
        &self,
        words: Vec<String>,
        hidden: Option<&'static str>,
        limit: usize,
    ) -> Result<Vec<Row>> {
        let space = self.space;
        self.db
            .read(move |conn| store::search(conn, space, &words, hidden, limit))
            .await
    }

    /// Keeps a query's text under its id (a stored query).
    pub async fn save_query(&self, id: String, text: String) -> Result<()> {
        self.db
            .write(move |ctx| {
                ctx.conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO fact_queries (id, query) VALUES (?1, ?2)",
                    )?
                    .execute([id, text])?;
                Ok(())
            })
            .await
    }

    pub async fn load_query(&self, id: String) -> Result<Option<String>> {
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT query FROM fact_queries WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?)
            })
            .await
    }

    pub async fn save_blob(
        &self,
        id: String,
        content_type: String,
        bytes: bytes::Bytes,
    ) -> Result<()> {
        self.db
            .write(move |ctx| {
                ctx.conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO fact_blobs (id, content_type, bytes) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(rusqlite::params![id, content_type, bytes.as_ref()])?;
                Ok(())
            })
            .await
    }

    /// A blob's type and bytes.
    pub async fn load_blob(&self, id: String) -> Result<Option<(String, Vec<u8>)>> {
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT content_type, bytes FROM fact_blobs WHERE id = ?1")?
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?)
            })
            .await
    }
}
