//! Rows out of frames, merged as synopsys merges them (docs/design/synopsys-queries.md §0.4):
//! rows are the distinct combinations of the selected scalars in first-seen order, and a
//! group `[…]` collects the distinct members of every frame that joins its row.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::query::{Selection, Term};
use crate::storage::error::StorageError;

/// One frame's bindings: a variable's value, `None` while unbound. Values are shared:
/// frames are copied at every step of a join.
pub type Frame = Vec<Option<Arc<Value>>>;

pub fn resolve(term: &Term, frame: &Frame) -> Option<Arc<Value>> {
    match term {
        Term::Const(v) => Some(v.clone()),
        Term::Var(i) => frame.get(*i).cloned().flatten(),
    }
}

/// The rows of `frames`; fails past `deadline` (merging is quadratic at worst).
pub fn rows(
    selection: &Selection,
    frames: &[Frame],
    deadline: std::time::Instant,
) -> Result<Vec<Value>, StorageError> {
    let mut rows: Vec<Value> = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        if i % 256 == 255 && std::time::Instant::now() > deadline {
            return Err(StorageError::invalid(
                "the query's rows take too long to merge: make it more selective",
            ));
        }
        let mut joined = false;
        for row in rows.iter_mut() {
            if merge(selection, row, frame) {
                joined = true;
            }
        }
        if !joined {
            rows.push(select(selection, frame).unwrap_or(Value::Null));
        }
    }
    Ok(rows)
}

/// The row of one frame (`None` for an unbound variable).
fn select(selection: &Selection, frame: &Frame) -> Option<Value> {
    match selection {
        Selection::Term(term) => resolve(term, frame).map(|v| v.as_ref().clone()),
        Selection::Object(entries) => {
            let mut map = Map::new();
            for (key, member) in entries {
                if let Some(value) = select(member, frame) {
                    map.insert(key.clone(), value);
                }
            }
            Some(Value::Object(map))
        }
        Selection::Group(member) => Some(Value::Array(select(member, frame).into_iter().collect())),
    }
}

/// Joins `frame` into `row` when its scalars equal the row's. Like synopsys, a group met
/// before a differing scalar has already taken the frame's member.
fn merge(selection: &Selection, row: &mut Value, frame: &Frame) -> bool {
    match selection {
        Selection::Term(term) => resolve(term, frame).is_some_and(|v| *row == *v),
        Selection::Group(member) => {
            append(row, select(member, frame));
            true
        }
        Selection::Object(entries) => {
            let Value::Object(map) = row else {
                return false;
            };
            for (key, member) in entries {
                match member {
                    Selection::Group(inner) => {
                        let slot = map
                            .entry(key.clone())
                            .or_insert_with(|| Value::Array(Vec::new()));
                        append(slot, select(inner, frame));
                    }
                    other => {
                        let Some(value) = select(other, frame) else {
                            return false;
                        };
                        if map.get(key) != Some(&value) {
                            return false;
                        }
                    }
                }
            }
            true
        }
    }
}

fn append(group: &mut Value, member: Option<Value>) {
    if let (Value::Array(members), Some(member)) = (group, member)
        && !members.contains(&member)
    {
        members.push(member);
    }
}

/// Sorts rows by their keys in turn (`-key`: descending), for callers that page: missing
/// keys last, numbers by value, strings by code point, other values by kind.
pub fn order_rows(rows: &mut [Value], order: &[String]) {
    if order.is_empty() {
        return;
    }
    let keys: Vec<(&str, bool)> = order
        .iter()
        .map(|k| match k.strip_prefix('-') {
            Some(key) => (key, true),
            None => (k.as_str(), false),
        })
        .collect();
    rows.sort_by(|a, b| {
        keys.iter()
            .map(|(key, descending)| {
                let o = compare(a.get(key), b.get(key));
                if *descending { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn kind(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        // As the comparison operators order, then by kind.
        (Some(x), Some(y)) => super::operators::order(x, y).unwrap_or_else(|| {
            kind(x)
                .cmp(&kind(y))
                .then_with(|| x.to_string().cmp(&y.to_string()))
        }),
    }
}
