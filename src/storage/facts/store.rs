//! Facts in SQLite (schema migrations 6 and 7): the lookups the query engine makes and the
//! transactions that change them. A fact row carries the transaction that asserted it and
//! the one that retracted it, so a read can see the database as of any transaction. Its
//! entity and value are ids of their references (`fact_refs`), handed out in order: content
//! hashes are random, and three indexes keyed by them took a random page write each per
//! fact (docs/PERFORMANCE.md, "Facts").

use std::collections::BTreeSet;

use foldhash::{HashMap, HashSet};

use rusqlite::types::Value as SqlValue;
use rusqlite::{CachedStatement, Connection, OptionalExtension};
use serde_json::Value;

use super::import::{self, ImportError};
use super::reference::Reference;
use super::revision::{self, RevisionHasher};
use super::value::{self, ValueError};
use crate::storage::db::WriteCtx;
use crate::storage::error::{Result, StorageError};

/// One stored fact.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub e: Reference,
    pub a: String,
    /// The value's reference (itself for a reference).
    pub v: Reference,
    pub value: Value,
}

/// Which fact database: the user's data (`/api/data`) or the profile graph
/// (`/api/profile`), in tables of their own so a query of one never sees the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Data,
    Profile,
}

impl Space {
    fn facts(self) -> &'static str {
        match self {
            Space::Data => "facts",
            Space::Profile => "profile_facts",
        }
    }

    fn refs(self) -> &'static str {
        match self {
            Space::Data => "fact_refs",
            Space::Profile => "profile_fact_refs",
        }
    }

    fn txs(self) -> &'static str {
        match self {
            Space::Data => "fact_txs",
            Space::Profile => "profile_fact_txs",
        }
    }
}

/// Which state of the database a read sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visible {
    Now,
    /// As it was right after this transaction.
    AsOf(i64),
}

/// `SELECT` of a row with its entity's and value's digests.
fn select_rows(space: Space) -> String {
    format!(
        "SELECT re.digest, f.a, rv.digest, f.value FROM {facts} f \
         JOIN {refs} re ON re.id = f.e JOIN {refs} rv ON rv.id = f.v WHERE ",
        facts = space.facts(),
        refs = space.refs()
    )
}

fn read_rows(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<Row>> {
    let rows = statement.query_map(params, |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (e, a, v, value) = row?;
        out.push(Row {
            e: digest(&e)?,
            a,
            v: digest(&v)?,
            value: serde_json::from_str(&value)
                .map_err(|err| StorageError::Corrupt(format!("a fact's value: {err}")))?,
        });
    }
    Ok(out)
}

/// The facts with these parts, in no particular order (the engine orders them).
pub fn scan(
    conn: &Connection,
    space: Space,
    e: Option<&Reference>,
    a: Option<&str>,
    v: Option<&Reference>,
    at: Visible,
) -> Result<Vec<Row>> {
    let (sql, params) = scan_sql(space, e, a, v, at);
    let mut statement = conn.prepare_cached(&sql)?;
    read_rows(&mut statement, rusqlite::params_from_iter(params))
}

/// The condition on a refs table that a reference's digest, parameter `n`, finds by the
/// index on its first 8 bytes (migration 8): the expression must be the index's own.
fn digest_is(n: usize) -> String {
    format!("substr(digest, 1, 8) = substr(?{n}, 1, 8) AND digest = ?{n}")
}

/// The statement `scan` runs, and its parameters.
fn scan_sql(
    space: Space,
    e: Option<&Reference>,
    a: Option<&str>,
    v: Option<&Reference>,
    at: Visible,
) -> (String, Vec<SqlValue>) {
    let mut sql = select_rows(space);
    let mut params: Vec<SqlValue> = Vec::with_capacity(4);
    let refs = space.refs();
    let by_digest = |n: usize| format!("(SELECT id FROM {refs} WHERE {})", digest_is(n));
    if let Some(e) = e {
        params.push(SqlValue::Blob(e.digest().to_vec()));
        sql.push_str(&format!("f.e = {} AND ", by_digest(params.len())));
    }
    if let Some(a) = a {
        params.push(SqlValue::Text(a.to_owned()));
        sql.push_str(&format!("f.a = ?{} AND ", params.len()));
    }
    if let Some(v) = v {
        params.push(SqlValue::Blob(v.digest().to_vec()));
        sql.push_str(&format!("f.v = {} AND ", by_digest(params.len())));
    }
    match at {
        Visible::Now => sql.push_str("f.removed IS NULL"),
        Visible::AsOf(tx) => {
            params.push(SqlValue::Integer(tx));
            let n = params.len();
            sql.push_str(&format!(
                "f.added <= ?{n} AND (f.removed IS NULL OR f.removed > ?{n})"
            ));
        }
    }
    (sql, params)
}

/// Current facts whose attribute or value holds every one of `words` (case-insensitive for
/// ASCII), up to `limit`: a scan, fine for a profile-sized graph.
pub fn search(
    conn: &Connection,
    space: Space,
    words: &[String],
    hidden: Option<&str>,
    limit: usize,
) -> Result<Vec<Row>> {
    let mut sql = select_rows(space);
    sql.push_str("f.removed IS NULL");
    let mut params: Vec<SqlValue> = words.iter().map(|w| SqlValue::Text(w.clone())).collect();
    if let Some(prefix) = hidden {
        params.push(SqlValue::Text(prefix.to_owned()));
        sql.push_str(&format!(
            " AND substr(f.a, 1, length(?{n})) != ?{n}",
            n = params.len()
        ));
    }
    for i in 1..=words.len() {
        sql.push_str(&format!(
            " AND (instr(lower(f.a), lower(?{i})) > 0 OR instr(lower(f.value), lower(?{i})) > 0)"
        ));
    }
    sql.push_str(&format!(" ORDER BY f.id LIMIT {limit}"));
    let mut statement = conn.prepare_cached(&sql)?;
    read_rows(&mut statement, rusqlite::params_from_iter(params))
}

fn digest(bytes: &[u8]) -> Result<Reference> {
    let digest: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StorageError::Corrupt("a fact's reference is not 32 bytes".into()))?;
    Ok(Reference::from_digest(digest))
}

/// The latest transaction and the revision it made (0 and the empty id on a new database).
pub fn head(conn: &Connection, space: Space) -> Result<(i64, String)> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT id, revision FROM {} ORDER BY id DESC LIMIT 1",
            space.txs()
        ))?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or_else(|| (0, revision::EMPTY.to_owned())))
}

/// The revision transaction `tx` made.
pub fn revision_of(conn: &Connection, space: Space, tx: i64) -> Result<Option<String>> {
    if tx == 0 {
        return Ok(Some(revision::EMPTY.to_owned()));
    }
    Ok(conn
        .prepare_cached(&format!(
            "SELECT revision FROM {} WHERE id = ?1",
            space.txs()
        ))?
        .query_row([tx], |r| r.get(0))
        .optional()?)
}

/// The transaction a read sees, and its revision id: the latest, or the one `as_of` names
/// (`NotFound` when no transaction made it).
pub fn resolve(
    conn: &Connection,
    space: Space,
    as_of: Option<super::AsOf>,
) -> Result<(i64, String)> {
    let (head, head_revision) = head(conn, space)?;
    match as_of {
        None => Ok((head, head_revision)),
        Some(super::AsOf::Revision(id)) => match transaction_of(conn, space, &id)? {
            Some(tx) => Ok((tx, id)),
            None => Err(StorageError::NotFound(format!(
                "no transaction made revision {id:?}"
            ))),
        },
        Some(super::AsOf::Transaction(tx)) => match revision_of(conn, space, tx)? {
            Some(revision) if tx <= head => Ok((tx, revision)),
            _ => Err(StorageError::NotFound(format!(
                "no transaction {tx} (the latest is {head})"
            ))),
        },
    }
}

/// The transaction that made `revision`.
pub fn transaction_of(conn: &Connection, space: Space, revision: &str) -> Result<Option<i64>> {
    if revision == revision::EMPTY {
        return Ok(Some(0));
    }
    Ok(conn
        .prepare_cached(&format!(
            "SELECT id FROM {} WHERE revision = ?1",
            space.txs()
        ))?
        .query_row([revision], |r| r.get(0))
        .optional()?)
}

/// `[e, a, v]` of an instruction, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct FactIn {
    pub e: Reference,
    pub a: String,
    pub value: Value,
}

/// One instruction of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Instruction {
    Assert(FactIn),
    Retract(FactIn),
    /// Retracts the entity's other values of the attribute, then asserts.
    Upsert(FactIn),
    Import(Value),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InstructionError {
    #[error(
        "instruction {0}: an instruction is one of {{\"Assert\"|\"Retract\"|\"Upsert\": [entity, attribute, value]}} or {{\"Import\": {{…}}}}"
    )]
    Shape(usize),
    #[error("instruction {0}: unknown instruction {1:?} (Assert, Retract, Upsert or Import)")]
    Unknown(usize, String),
    #[error("instruction {0}: the entity is a link {{\"/\": \"baedrei…\"}}: {1}")]
    Entity(usize, String),
    #[error("instruction {0}: the attribute is a non-empty string")]
    Attribute(usize),
    #[error("instruction {0}: {1}")]
    Value(usize, ValueError),
    #[error("instruction {0}: {1}")]
    Import(usize, ImportError),
    #[error("a transaction is a JSON array of instructions")]
    NotAnArray,
}

/// A fact ready for the writer: its value's reference and JSON computed beforehand, so the
/// one writer thread spends its time on SQLite only.
#[derive(Debug, Clone)]
pub struct Ready {
    e: Reference,
    a: String,
    v: Reference,
    text: String,
}

impl Ready {
    fn new(e: Reference, a: String, value: &Value) -> Result<Ready> {
        let v = Reference::of(value).map_err(|err| StorageError::invalid(err.to_string()))?;
        let text = serde_json::to_string(value)
            .map_err(|err| StorageError::invalid(format!("a fact's value: {err}")))?;
        Ok(Ready { e, a, v, text })
    }
}

/// An instruction ready for the writer (an `Import` expanded into its facts).
#[derive(Debug, Clone)]
pub enum Prepared {
    Assert(Ready),
    Retract(Ready),
    Upsert(Ready),
    Import { root: Reference, facts: Vec<Ready> },
}

/// `instructions` in `n` runs of about equal length, in order (for `prepare` to run side
/// by side: the writer waits for it, and hashing a load's imports took a sixth of its time).
pub fn shares(mut instructions: Vec<Instruction>, n: usize) -> Vec<Vec<Instruction>> {
    let share = instructions.len().div_ceil(n.max(1)).max(1);
    let mut out = Vec::with_capacity(n);
    while instructions.len() > share {
        let tail = instructions.split_off(share);
        out.push(instructions);
        instructions = tail;
    }
    out.push(instructions);
    out
}

/// Hashes, serializes and expands `instructions` (off the writer thread).
pub fn prepare(instructions: Vec<Instruction>) -> Result<Vec<Prepared>> {
    let ready = |f: FactIn| Ready::new(f.e, f.a, &f.value);
    instructions
        .into_iter()
        .map(|instruction| {
            Ok(match instruction {
                Instruction::Assert(f) => Prepared::Assert(ready(f)?),
                Instruction::Retract(f) => Prepared::Retract(ready(f)?),
                Instruction::Upsert(f) => Prepared::Upsert(ready(f)?),
                Instruction::Import(source) => {
                    let (root, facts) = import::import(&source)
                        .map_err(|e| StorageError::invalid(format!("Import: {e}")))?;
                    let facts = facts
                        .into_iter()
                        .map(|fact| {
                            let value = value::normalize(fact.value)
                                .map_err(|e| StorageError::invalid(format!("Import: {e}")))?;
                            Ready::new(fact.entity, fact.attribute, &value)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Prepared::Import { root, facts }
                }
            })
        })
        .collect()
}

/// A transaction as synopsys takes it: an array of single-key instruction objects.
pub fn parse_transaction(body: &Value) -> Result<Vec<Instruction>, InstructionError> {
    let items = body.as_array().ok_or(InstructionError::NotAnArray)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let map = item.as_object().ok_or(InstructionError::Shape(i))?;
        if map.len() != 1 {
            return Err(InstructionError::Shape(i));
        }
        let Some((kind, body)) = map.iter().next() else {
            return Err(InstructionError::Shape(i));
        };
        let instruction = match kind.as_str() {
            "Import" => {
                // Checked now, so a bad import fails the transaction before anything runs.
                import::check(body).map_err(|e| InstructionError::Import(i, e))?;
                Instruction::Import(body.clone())
            }
            "Assert" => Instruction::Assert(fact_in(i, body)?),
            "Retract" => Instruction::Retract(fact_in(i, body)?),
            "Upsert" => Instruction::Upsert(fact_in(i, body)?),
            other => return Err(InstructionError::Unknown(i, other.to_owned())),
        };
        out.push(instruction);
    }
    Ok(out)
}

fn fact_in(i: usize, body: &Value) -> Result<FactIn, InstructionError> {
    let Some([e, a, v]) = body.as_array().map(Vec::as_slice) else {
        return Err(InstructionError::Shape(i));
    };
    let e = value::as_reference(e)
        .ok_or_else(|| InstructionError::Entity(i, format!("got {}", truncate(&e.to_string()))))?;
    let a = a
        .as_str()
        .filter(|a| !a.is_empty())
        .ok_or(InstructionError::Attribute(i))?
        .to_owned();
    let value = value::normalize(v.clone()).map_err(|e| InstructionError::Value(i, e))?;
    Ok(FactIn { e, a, value })
}

fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

/// What a committed transaction did.
#[derive(Debug, Clone)]
pub struct Commit {
    pub tx: i64,
    pub before: String,
    pub after: String,
    /// Every attribute a fact was asserted or retracted under.
    pub attributes: BTreeSet<String>,
    /// Every fact asserted or retracted, or `None` when there were more than
    /// `MAX_CHANGES_KEPT` (live queries then go by `attributes`).
    pub changes: Option<Vec<Change>>,
    /// The entity of each `Import`, in order.
    pub imported: Vec<Reference>,
}

/// A fact a transaction asserted or retracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub e: Reference,
    pub a: String,
    pub v: Reference,
}

/// Past this many changes a commit keeps only their attributes (a bulk load need not carry
/// a copy of itself to the live queries).
pub const MAX_CHANGES_KEPT: usize = 20_000;

const ASSERTED: u8 = 1;
const RETRACTED: u8 = 2;

/// Applies `instructions` in the writer's transaction (all of them or, on error, none: the
/// job's savepoint is rolled back).
pub fn transact(ctx: &mut WriteCtx<'_>, space: Space, instructions: &[Prepared]) -> Result<Commit> {
    let (last, before) = head(ctx.conn, space)?;
    let tx = last + 1;
    let mut applying = Applying {
        conn: ctx.conn,
        sql: Statements::prepare(ctx.conn, space)?,
        ids: HashMap::default(),
        fresh: HashSet::default(),
        inserted: HashSet::default(),
        tx,
        hasher: RevisionHasher::new(&before, tx, ctx.now_ms),
        attributes: BTreeSet::new(),
        changes: Some(Vec::new()),
    };
    // Every reference an assertion needs, looked up or added in hash order: the index from
    // hash to id is then walked once from one end to the other, each page read and written
    // once, instead of pages being thrown out of the cache and read back as random hashes
    // come (docs/PERFORMANCE.md, "Facts").
    let mut needed: Vec<&Reference> = Vec::new();
    for instruction in instructions {
        match instruction {
            Prepared::Assert(f) | Prepared::Upsert(f) => needed.extend([&f.e, &f.v]),
            Prepared::Import { facts, .. } => {
                needed.extend(facts.iter().flat_map(|f| [&f.e, &f.v]));
            }
            Prepared::Retract(_) => {}
        }
    }
    needed.sort_unstable();
    needed.dedup();
    for reference in needed {
        applying.id_or_new(reference)?;
    }
    let mut imported = Vec::new();
    for instruction in instructions {
        match instruction {
            Prepared::Assert(f) => applying.assert(f)?,
            Prepared::Retract(f) => applying.retract(f)?,
            Prepared::Upsert(f) => {
                applying.retract_others(f)?;
                applying.assert(f)?;
            }
            Prepared::Import { root, facts } => {
                for fact in facts {
                    applying.assert(fact)?;
                }
                imported.push(*root);
            }
        }
    }
    let Applying {
        hasher,
        attributes,
        changes,
        ..
    } = applying;
    let after = hasher.finish();
    ctx.conn
        .prepare_cached(&format!(
            "INSERT INTO {} (id, at, revision) VALUES (?1, ?2, ?3)",
            space.txs()
        ))?
        .execute(rusqlite::params![tx, ctx.now_ms, after])?;
    Ok(Commit {
        tx,
        before,
        after,
        attributes,
        changes,
        imported,
    })
}

/// The writer's statements for one space, taken from the statement cache once per
/// transaction rather than once per fact (the cache looks a statement up by its text).
struct Statements<'c> {
    id: CachedStatement<'c>,
    insert_ref: CachedStatement<'c>,
    present: CachedStatement<'c>,
    insert: CachedStatement<'c>,
    retract: CachedStatement<'c>,
    retract_others: CachedStatement<'c>,
}

impl<'c> Statements<'c> {
    fn prepare(conn: &'c Connection, space: Space) -> Result<Statements<'c>> {
        let (table, refs) = (space.facts(), space.refs());
        Ok(Statements {
            id: conn.prepare_cached(&format!("SELECT id FROM {refs} WHERE {}", digest_is(1)))?,
            insert_ref: conn.prepare_cached(&format!("INSERT INTO {refs} (digest) VALUES (?1)"))?,
            present: conn.prepare_cached(&format!(
                "SELECT 1 FROM {table} WHERE e = ?1 AND a = ?2 AND v = ?3 AND removed IS NULL"
            ))?,
            insert: conn.prepare_cached(&format!(
                "INSERT INTO {table} (e, a, v, value, added) VALUES (?1, ?2, ?3, ?4, ?5)"
            ))?,
            retract: conn.prepare_cached(&format!(
                "UPDATE {table} SET removed = ?4 WHERE e = ?1 AND a = ?2 AND v = ?3 AND removed IS NULL"
            ))?,
            retract_others: conn.prepare_cached(&format!(
                "UPDATE {table} SET removed = ?4 WHERE e = ?1 AND a = ?2 AND v != ?3 AND removed IS NULL \
                 RETURNING (SELECT digest FROM {refs} WHERE id = v)"
            ))?,
        })
    }
}

struct Applying<'a> {
    conn: &'a Connection,
    sql: Statements<'a>,
    /// Reference ids met in this transaction (an imported entity has several facts).
    /// These maps take a lookup or two per fact: foldhash (seeded at random, as std's
    /// maps are) rather than SipHash, which showed in the writer's profile.
    ids: HashMap<Reference, i64>,
    /// Ids first given in this transaction: no stored fact has such an entity, so its
    /// facts are checked for repeats here, not with a query each.
    fresh: HashSet<i64>,
    /// The facts of fresh entities inserted in this transaction.
    inserted: HashSet<(i64, String, i64)>,
    tx: i64,
    hasher: RevisionHasher,
    attributes: BTreeSet<String>,
    changes: Option<Vec<Change>>,
}

impl Applying<'_> {
    /// The id of a reference, if the database has met it.
    fn id(&mut self, reference: &Reference) -> Result<Option<i64>> {
        if let Some(id) = self.ids.get(reference) {
            return Ok(Some(*id));
        }
        let id: Option<i64> = self
            .sql
            .id
            .query_row([reference.digest()], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            self.ids.insert(*reference, id);
        }
        Ok(id)
    }

    /// The id of a reference, given one if it has none: ids are handed out in order, so a
    /// load's new entities and values go at the end of the indexes, not all over them.
    fn id_or_new(&mut self, reference: &Reference) -> Result<i64> {
        if let Some(id) = self.id(reference)? {
            return Ok(id);
        }
        self.sql.insert_ref.execute([reference.digest()])?;
        let id = self.conn.last_insert_rowid();
        self.fresh.insert(id);
        self.ids.insert(*reference, id);
        Ok(id)
    }

    fn assert(&mut self, fact: &Ready) -> Result<()> {
        let Ready { e, a, v, text } = fact;
        let (e_id, v_id) = (self.id_or_new(e)?, self.id_or_new(v)?);
        let present = if self.fresh.contains(&e_id) {
            !self.inserted.insert((e_id, a.clone(), v_id))
        } else {
            self.sql.present.exists(rusqlite::params![e_id, a, v_id])?
        };
        if present {
            return Ok(());
        }
        self.sql
            .insert
            .execute(rusqlite::params![e_id, a, v_id, text, self.tx])?;
        self.hasher.change(ASSERTED, e.digest(), a, v.digest());
        self.note(e, a, v);
        Ok(())
    }

    fn retract(&mut self, fact: &Ready) -> Result<()> {
        let Ready { e, a, v, .. } = fact;
        let (Some(e_id), Some(v_id)) = (self.id(e)?, self.id(v)?) else {
            return Ok(());
        };
        // Its facts may now be retracted ones: ask the table from here on.
        self.fresh.remove(&e_id);
        let changed = self
            .sql
            .retract
            .execute(rusqlite::params![e_id, a, v_id, self.tx])?;
        if changed > 0 {
            self.hasher.change(RETRACTED, e.digest(), a, v.digest());
            self.note(e, a, v);
        }
        Ok(())
    }

    /// Retracts every value of `[e, a]` but the fact's own.
    fn retract_others(&mut self, fact: &Ready) -> Result<()> {
        let Ready { e, a, v: keep, .. } = fact;
        let Some(e_id) = self.id(e)? else {
            return Ok(());
        };
        self.fresh.remove(&e_id);
        let keep_id = self.id(keep)?.unwrap_or(0);
        let gone: Vec<Vec<u8>> = self
            .sql
            .retract_others
            .query_map(rusqlite::params![e_id, a, keep_id, self.tx], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for v in &gone {
            self.hasher.change(RETRACTED, e.digest(), a, v);
            self.note(e, a, &digest(v)?);
        }
        Ok(())
    }

    fn note(&mut self, e: &Reference, a: &str, v: &Reference) {
        if !self.attributes.contains(a) {
            self.attributes.insert(a.to_owned());
        }
        if let Some(changes) = &mut self.changes {
            if changes.len() < MAX_CHANGES_KEPT {
                changes.push(Change {
                    e: *e,
                    a: a.to_owned(),
                    v: *v,
                });
            } else {
                self.changes = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_keep_the_order_and_every_instruction() {
        let entity = Reference::of_bytes(b"e").to_json();
        let body = Value::Array(
            (0..7)
                .map(|i| serde_json::json!({"Assert": [entity, "n", i]}))
                .collect(),
        );
        let instructions = parse_transaction(&body).expect("transaction");
        let numbers = |shares: Vec<Vec<Instruction>>| -> Vec<Vec<String>> {
            shares
                .into_iter()
                .map(|share| {
                    share
                        .into_iter()
                        .map(|i| match i {
                            Instruction::Assert(f) => f.value.to_string(),
                            other => format!("{other:?}"),
                        })
                        .collect()
                })
                .collect()
        };
        assert_eq!(
            numbers(shares(instructions.clone(), 2)),
            [vec!["0", "1", "2", "3"], vec!["4", "5", "6"]]
        );
        assert_eq!(numbers(shares(instructions.clone(), 3)).len(), 3);
        assert_eq!(numbers(shares(instructions.clone(), 1)).concat().len(), 7);
        assert_eq!(numbers(shares(Vec::new(), 2)), [Vec::<String>::new()]);
    }

    #[test]
    fn bound_positions_are_index_searches() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = crate::storage::db::Db::open(
            &dir.path().join("t.db"),
            crate::storage::db::Durability::Normal,
        )
        .expect("open");
        drop(db);
        let conn = Connection::open(dir.path().join("t.db")).expect("connection");
        let plan = |e: bool, a: bool, v: bool| -> String {
            let r = Reference::of_bytes(b"x");
            let (sql, params) = scan_sql(
                Space::Data,
                e.then_some(&r),
                a.then_some("name"),
                v.then_some(&r),
                Visible::Now,
            );
            let mut statement = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("plan");
            let lines: Vec<String> = statement
                .query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>(3)
                })
                .expect("rows")
                .map(|r| r.expect("row"))
                .collect();
            // A reference's id is found by its hash's prefix, not by reading every one.
            let scans = lines.iter().filter(|l| l.starts_with("SCAN")).count();
            assert_eq!(scans, usize::from(!(e || a || v)), "{lines:?}");
            let by_prefix = lines.iter().any(|l| {
                l.starts_with("SEARCH fact_refs USING INDEX fact_refs_prefix")
                    || l.starts_with("SEARCH fact_refs USING COVERING INDEX fact_refs_prefix")
            });
            assert_eq!(by_prefix, e || v, "{lines:?}");
            lines
                .into_iter()
                .find(|l| l.contains(" f ") || l.ends_with(" f"))
                .unwrap_or_default()
        };
        let search = |e: bool, a: bool, v: bool| {
            let plan = plan(e, a, v);
            let bound = [("e=?", e), ("a=?", a), ("v=?", v)];
            assert!(plan.starts_with("SEARCH f USING INDEX facts_"), "{plan}");
            // Searched by bound positions only, and by all of them when an index has them
            // as its prefix (e and v alone have none: by v, then e is checked per row).
            for (part, is_bound) in bound {
                assert!(is_bound || !plan.contains(part), "{plan}");
            }
            let used = bound.iter().filter(|(part, _)| plan.contains(part)).count();
            let wanted = bound.iter().filter(|(_, b)| *b).count();
            assert!(used == wanted || (e && v && !a && used == 1), "{plan}");
        };
        for e in [true, false] {
            for a in [true, false] {
                for v in [true, false] {
                    if e || a || v {
                        search(e, a, v);
                    }
                }
            }
        }
        assert!(
            plan(false, false, false).starts_with("SCAN f"),
            "only a fully open pattern scans"
        );
    }
}
