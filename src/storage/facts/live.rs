//! Live queries: who to wake after a transaction. A subscription names the attributes its
//! patterns can match; a transaction wakes only the subscriptions whose attributes it
//! touched (a pattern with a variable attribute matches any), and the waking happens on
//! the committing side, so an unaffected subscriber's task never runs.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use super::query::{Clause, Query, Term};

struct Entry {
    /// `None`: any attribute.
    attributes: Option<BTreeSet<String>>,
    notify: Weak<Notify>,
}

#[derive(Default)]
pub struct Live {
    entries: Mutex<Vec<Entry>>,
    woken: AtomicU64,
}

impl Live {
    /// Registers `query`; the returned handle is notified after every transaction that may
    /// change its answer, until it is dropped.
    pub fn subscribe(&self, query: &Query) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        let entry = Entry {
            attributes: attributes(query),
            notify: Arc::downgrade(&notify),
        };
        if let Ok(mut entries) = self.entries.lock() {
            entries.push(entry);
        }
        notify
    }

    /// Wakes the subscriptions a transaction that touched `touched` may affect.
    pub fn committed(&self, touched: &BTreeSet<String>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.retain(|entry| {
            let Some(notify) = entry.notify.upgrade() else {
                return false;
            };
            let affected = match &entry.attributes {
                None => !touched.is_empty(),
                Some(names) => names.iter().any(|n| touched.contains(n)),
            };
            if affected {
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
