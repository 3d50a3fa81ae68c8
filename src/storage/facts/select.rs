//! Rows out of frames, merged as synopsys merges them (docs/design/synopsys-queries.md §0.4):
//! rows are the distinct combinations of the selected scalars in first-seen order, and a
//! group `[…]` collects the distinct members of every frame that joins its row.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::query::{Selection, Term};

/// One frame's bindings: a variable's value, `None` while unbound. Values are shared:
/// frames are copied at every step of a join.
pub type Frame = Vec<Option<Arc<Value>>>;

pub fn resolve(term: &Term, frame: &Frame) -> Option<Arc<Value>> {
    match term {
        Term::Const(v) => Some(v.clone()),
        Term::Var(i) => frame.get(*i).cloned().flatten(),
    }
}

/// The rows of `frames`.
pub fn rows(selection: &Selection, frames: &[Frame]) -> Vec<Value> {
    let mut rows: Vec<Value> = Vec::new();
    for frame in frames {
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
    rows
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
