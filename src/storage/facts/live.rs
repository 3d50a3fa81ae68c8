//! Live queries: who to wake after a transaction. Each evaluation of a live query records
//! the index lookups it made; its answer is a function of what those lookups returned, so a
//! transaction can change it only if one of its changed facts falls inside one of them.
//! Only those subscriptions are woken, on the committing side: an unaffected subscriber's
//! task never runs. Until its first evaluation is recorded (and after a bulk transaction
//! too large to list its changes), a subscription goes by the attributes its patterns name.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use super::query::{Clause, Query, Term};
use super::reference::Reference;
use super::store::{Change, Commit};

/// One index lookup: the parts it was bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lookup {
    pub e: Option<Reference>,
    pub a: Option<String>,
    pub v: Option<Reference>,
}

/// What a subscription's last evaluation read.
#[derive(Debug, Default)]
struct Recorded {
    lookups: Option<HashSet<Lookup>>,
}

/// Whether some lookup in `lookups` covers `change`: each of the eight ways a lookup can
/// bind the change's parts is one probe, however many lookups there are.
fn covered(lookups: &HashSet<Lookup>, change: &Change) -> bool {
    (0u8..8).any(|bound| {
        lookups.contains(&Lookup {
            e: (bound & 1 != 0).then_some(change.e),
            a: (bound & 2 != 0).then(|| change.a.clone()),
            v: (bound & 4 != 0).then_some(change.v),
        })
    })
}

struct Entry {
    /// `None`: any attribute.
    attributes: Option<BTreeSet<String>>,
    recorded: Arc<Mutex<Recorded>>,
    notify: Weak<Notify>,
}

impl Entry {
    fn affected_by(&self, commit: &Commit) -> bool {
        let by_attribute = || match &self.attributes {
            None => !commit.attributes.is_empty(),
            Some(names) => names.iter().any(|n| commit.attributes.contains(n)),
        };
        let Ok(recorded) = self.recorded.lock() else {
            return true;
        };
        match (&recorded.lookups, &commit.changes) {
            (Some(lookups), Some(changes)) => changes.iter().any(|c| covered(lookups, c)),
            _ => by_attribute(),
        }
    }
}

#[derive(Default)]
pub struct Live {
    entries: Mutex<Vec<Entry>>,
    woken: AtomicU64,
    /// The latest transaction committed.
    committed: AtomicI64,
}

/// A subscriber's handle: its wake-up, and where its evaluations are recorded.
pub struct Subscription {
    pub notify: Arc<Notify>,
    recorded: Arc<Mutex<Recorded>>,
}

impl Live {
    /// Registers `query`; its handle is notified after every transaction that may change
    /// its answer, until it is dropped.
    pub fn subscribe(&self, query: &Query) -> Subscription {
        let notify = Arc::new(Notify::new());
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let entry = Entry {
            attributes: attributes(query),
            recorded: recorded.clone(),
            notify: Arc::downgrade(&notify),
        };
        if let Ok(mut entries) = self.entries.lock() {
            entries.push(entry);
        }
        Subscription { notify, recorded }
    }

    /// Keeps the lookups of an evaluation made as of transaction `tx`; if a later
    /// transaction committed meanwhile (checked against the older lookups), wakes the
    /// subscriber to look again.
    pub fn record(&self, subscription: &Subscription, lookups: Vec<Lookup>, tx: i64) {
        if let Ok(mut recorded) = subscription.recorded.lock() {
            recorded.lookups = Some(lookups.into_iter().collect());
        }
        if self.committed.load(Ordering::SeqCst) > tx {
            subscription.notify.notify_one();
        }
    }

    /// Wakes the subscriptions `commit` may affect.
    pub fn committed(&self, commit: &Commit) {
        self.committed.fetch_max(commit.tx, Ordering::SeqCst);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.retain(|entry| {
            let Some(notify) = entry.notify.upgrade() else {
                return false;
            };
            if entry.affected_by(commit) {
                self.woken.fetch_add(1, Ordering::Relaxed);
                notify.notify_one();
            }
            true
        });
    }

    /// Open subscriptions.
    pub fn count(&self) -> usize {
        self.entries
            .lock()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e.notify.strong_count() > 0)
                    .count()
            })
            .unwrap_or(0)
    }

    /// Subscriptions woken since start.
    pub fn woken(&self) -> u64 {
        self.woken.load(Ordering::Relaxed)
    }
}

/// The attributes `query`'s patterns name, or `None` when one can match any attribute.
pub fn attributes(query: &Query) -> Option<BTreeSet<String>> {
    fn walk(
        clause: &Clause,
        query: &Query,
        seen: &mut Vec<usize>,
        out: &mut BTreeSet<String>,
    ) -> bool {
        match clause {
            Clause::Case([_, Term::Const(a), _]) => match a.as_str() {
                Some(a) => {
                    out.insert(a.to_owned());
                    true
                }
                None => true,
            },
            Clause::Case(_) => false,
            Clause::And(cs) | Clause::Or(cs) => cs.iter().all(|c| walk(c, query, seen, out)),
            Clause::Not(c) => walk(c, query, seen, out),
            Clause::Is(..) | Clause::Match { .. } => true,
            Clause::Rule { rule, .. } => {
                if seen.contains(rule) {
                    return true;
                }
                seen.push(*rule);
                query
                    .rules
                    .get(*rule)
                    .is_none_or(|r| walk(&r.body, query, seen, out))
            }
        }
    }
    let mut out = BTreeSet::new();
    let mut seen = Vec::new();
    query
        .clauses
        .iter()
        .all(|c| walk(c, query, &mut seen, &mut out))
        .then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::facts::ordered_json::Ordered;
    use crate::storage::facts::query;

    fn subscribe(live: &Live, text: &str) -> Subscription {
        let parsed: Ordered = serde_json::from_str(text).expect("json");
        live.subscribe(&query::parse(&parsed, &[]).expect("query"))
    }

    fn commit(tx: i64, changes: Option<Vec<Change>>, attributes: &[&str]) -> Commit {
        Commit {
            tx,
            before: String::new(),
            after: String::new(),
            attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
            changes,
            imported: Vec::new(),
        }
    }

    fn entity(n: u8) -> Reference {
        Reference::of_bytes(&[n])
    }

    #[test]
    fn before_its_first_answer_a_subscription_goes_by_attributes() {
        let live = Live::default();
        let names = subscribe(&live, r#"{"where":[{"Case":["?e","name","?n"]}]}"#);
        let _scores = subscribe(
            &live,
            r#"{"where":[{"Or":[{"Case":["?e","score","?s"]},{"Not":{"Case":["?e","rank","?s"]}}]}]}"#,
        );
        let any = subscribe(&live, r#"{"where":[{"Case":["?e","?a","?v"]}]}"#);
        live.committed(&commit(1, None, &["name"]));
        assert_eq!(live.woken(), 2, "the name query and the open one");
        live.committed(&commit(2, None, &["rank"]));
        assert_eq!(
            live.woken(),
            4,
            "the score query (through its Not) and the open one"
        );
        live.committed(&commit(3, Some(Vec::new()), &[]));
        assert_eq!(live.woken(), 4, "an empty transaction wakes nobody");
        drop(names);
        drop(any);
        assert_eq!(live.count(), 1);
        live.committed(&commit(4, None, &["name"]));
        assert_eq!(live.woken(), 4, "dropped subscriptions are gone");
    }

    #[test]
    fn after_an_answer_only_changes_inside_its_lookups_wake_it() {
        let live = Live::default();
        let s = subscribe(&live, r#"{"where":[{"Case":["?e","name","?n"]}]}"#);
        live.record(
            &s,
            vec![Lookup {
                e: Some(entity(1)),
                a: Some("name".into()),
                v: None,
            }],
            0,
        );
        let change = |e: u8, a: &str| Change {
            e: entity(e),
            a: a.into(),
            v: entity(9),
        };
        live.committed(&commit(1, Some(vec![change(2, "name")]), &["name"]));
        assert_eq!(live.woken(), 0, "another entity's name");
        live.committed(&commit(2, Some(vec![change(1, "age")]), &["age"]));
        assert_eq!(live.woken(), 0, "another attribute of the entity");
        live.committed(&commit(3, Some(vec![change(1, "name")]), &["name"]));
        assert_eq!(live.woken(), 1);
        // A bulk commit without its changes: by attribute.
        live.committed(&commit(4, None, &["name"]));
        assert_eq!(live.woken(), 2);
        // An evaluation older than the latest commit looks again.
        let s2 = subscribe(&live, r#"{"where":[{"Case":["?e","name","?n"]}]}"#);
        live.record(&s2, Vec::new(), 3);
        assert!(
            futures_util::FutureExt::now_or_never(s2.notify.notified()).is_some(),
            "woken to look again"
        );
    }
}
