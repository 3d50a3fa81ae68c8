//! The v1 document as a view of the graph, and back. A key of the document is an attribute
//! of "me"; a scalar is one fact; an array of scalars is several (a set: order and repeats
//! are not kept) and marked so that one member still reads back as an array; an object is
//! an entity of its own (named by its path, `me/preferences`), linked from its key. A link
//! to any other entity (a v2 statement "me knows alice") reads as that entity's document.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::entities::{self, ARRAY, RESERVED};
use crate::platform::error::AppError;
use crate::storage::facts::Facts;
use crate::storage::facts::reference::Reference;
use crate::storage::facts::store::{FactIn, Instruction};
use crate::storage::facts::value;

/// Documents nest at most this deep (a cycle of links reads as a link).
const MAX_DEPTH: usize = 8;

/// The document of `entity`.
pub async fn render(facts: &Facts, entity: Reference) -> Result<Value, AppError> {
    let mut seen = BTreeSet::new();
    Box::pin(render_at(facts, entity, 0, &mut seen)).await
}

async fn render_at(
    facts: &Facts,
    entity: Reference,
    depth: usize,
    seen: &mut BTreeSet<Reference>,
) -> Result<Value, AppError> {
    seen.insert(entity);
    let (rows, _) = facts.entity(entity).await?;
    let arrays: BTreeSet<String> = rows
        .iter()
        .filter(|r| r.a == ARRAY)
        .filter_map(|r| r.value.as_str().map(str::to_owned))
        .collect();
    let mut values: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for row in rows {
        if row.a.starts_with(RESERVED) {
            continue;
        }
        let shown = match value::as_reference(&row.value) {
            Some(child) if depth < MAX_DEPTH && !seen.contains(&child) => {
                Box::pin(render_at(facts, child, depth + 1, seen)).await?
            }
            _ => row.value,
        };
        values.entry(row.a).or_default().push(shown);
    }
    let mut out = Map::new();
    for (key, mut list) in values {
        let value = if list.len() == 1 && !arrays.contains(&key) {
            list.remove(0)
        } else {
            Value::Array(list)
        };
        out.insert(key, value);
    }
    for key in arrays {
        out.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    }
    seen.remove(&entity);
    Ok(Value::Object(out))
}

/// RFC 7396.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, change) in changes {
            if change.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), change);
            }
        }
    }
}

type Triple = (Reference, String, Value);

/// The facts `value` makes under `entity`'s `key` (`path` names nested objects).
pub fn facts_of(
    entity: Reference,
    path: &str,
    key: &str,
    value: &Value,
    out: &mut Vec<Triple>,
) -> Result<(), AppError> {
    if key.starts_with(RESERVED) {
        return Err(AppError::bad_request(format!(
            "{path}/{key}: keys starting with {RESERVED} are the profile's own"
        )));
    }
    match value {
        Value::Null => {}
        // A link (as a cycle or a deep document reads back): the link itself.
        Value::Object(map) if map.len() == 1 && map.contains_key("/") => {
            out.push((entity, key.to_owned(), scalar(value, path, key)?));
        }
        Value::Array(items) => {
            out.push((entity, ARRAY.to_owned(), Value::String(key.to_owned())));
            for item in items {
                if item.is_object() || item.is_array() {
                    return Err(AppError::bad_request(format!(
                        "{path}/{key}: an array holds strings, numbers and booleans in v1 (use /api/profile/v2 for a list of things)"
                    )));
                }
                if !item.is_null() {
                    out.push((entity, key.to_owned(), scalar(item, path, key)?));
                }
            }
        }
        Value::Object(fields) => {
            let child_path = format!("{path}/{key}");
            let child = entities::named(&child_path);
            out.push((entity, key.to_owned(), child.to_json()));
            for (field, inner) in fields {
                facts_of(child, &child_path, field, inner, out)?;
            }
        }
        scalar_value => out.push((entity, key.to_owned(), scalar(scalar_value, path, key)?)),
    }
    Ok(())
}

fn scalar(value: &Value, path: &str, key: &str) -> Result<Value, AppError> {
    value::normalize(value.clone()).map_err(|e| AppError::bad_request(format!("{path}/{key}: {e}")))
}

/// The facts now under `entity`'s `key`, with the nested objects v1 made for it.
pub async fn stored_facts_of(
    facts: &Facts,
    entity: Reference,
    path: &str,
    key: &str,
    out: &mut Vec<Triple>,
) -> Result<(), AppError> {
    let (rows, _) = facts.entity(entity).await?;
    let child_path = format!("{path}/{key}");
    let own_child = entities::named(&child_path);
    for row in rows {
        let marks_key = row.a == ARRAY && row.value.as_str() == Some(key);
        if row.a != key && !marks_key {
            continue;
        }
        if value::as_reference(&row.value) == Some(own_child) {
            let (child_rows, _) = facts.entity(own_child).await?;
            let keys: BTreeSet<String> = child_rows
                .iter()
                .map(|r| match (r.a == ARRAY, r.value.as_str()) {
                    (true, Some(k)) => k.to_owned(),
                    _ => r.a.clone(),
                })
                .collect();
            for child_key in keys {
                Box::pin(stored_facts_of(
                    facts,
                    own_child,
                    &child_path,
                    &child_key,
                    out,
                ))
                .await?;
            }
        }
        out.push((entity, row.a, row.value));
    }
    Ok(())
}

/// The instructions that turn `old` into `new`: retract what went, assert what came.
pub fn changes(old: Vec<Triple>, new: Vec<Triple>) -> Vec<Instruction> {
    let fact = |(e, a, value): &Triple| FactIn {
        e: *e,
        a: a.clone(),
        value: value.clone(),
    };
    let mut out: Vec<Instruction> = old
        .iter()
        .filter(|t| !new.contains(t))
        .map(|t| Instruction::Retract(fact(t)))
        .collect();
    out.extend(
        new.iter()
            .filter(|t| !old.contains(t))
            .map(|t| Instruction::Assert(fact(t))),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The RFC's own example (appendix A's first).
        let mut doc = json!({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}, "tags": ["example", "sample"], "content": "This will be unchanged"});
        merge_patch(
            &mut doc,
            &json!({"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": null}, "tags": ["example"]}),
        );
        assert_eq!(
            doc,
            json!({"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"], "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"})
        );
    }

    #[test]
    fn objects_become_entities_and_arrays_are_marked() {
        let me = entities::me();
        let mut out = Vec::new();
        facts_of(me, "me", "preferences", &json!({"theme": "dark"}), &mut out).expect("facts");
        facts_of(me, "me", "interests", &json!(["chess"]), &mut out).expect("facts");
        let child = entities::named("me/preferences");
        assert_eq!(
            out,
            vec![
                (me, "preferences".to_owned(), child.to_json()),
                (child, "theme".to_owned(), json!("dark")),
                (me, ARRAY.to_owned(), json!("interests")),
                (me, "interests".to_owned(), json!("chess")),
            ]
        );
        assert!(facts_of(me, "me", "x", &json!([{"a": 1}]), &mut out).is_err());
        assert!(facts_of(me, "me", "toolshed/array", &json!(1), &mut out).is_err());
    }
}
