//! `{"Import": {…}}`: a JSON object becomes facts as synopsys makes them
//! (docs/design/synopsys-ids.md §2). The object's entity is its merkle reference, so the
//! same object imported twice is the same entity with the same facts; a nested object is an
//! entity of its own; an array is an entity whose members sit under position attributes.

use serde_json::Value;

use super::position::{self, PositionsExhausted};
use super::reference::{Reference, ReferenceError};

/// One fact: a value is a JSON constant or a link `{"/": …}` (a reference, or bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub entity: Reference,
    pub attribute: String,
    pub value: Value,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    #[error("Import takes a JSON object (or array), not {0}")]
    NotAnObject(&'static str),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Positions(#[from] PositionsExhausted),
}

/// A constant: stored as itself, not as an entity (links included).
fn is_constant(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.len() == 1 && map.contains_key("/"),
        Value::Array(_) => false,
        _ => true,
    }
}

/// Whether `source` can be imported, without hashing it: the shape, and every link in it.
pub fn check(source: &Value) -> Result<(), ImportError> {
    fn links(value: &Value) -> Result<(), ImportError> {
        match value {
            Value::Object(map) if is_constant(value) && map.contains_key("/") => {
                Reference::of(value)?;
                Ok(())
            }
            Value::Object(map) => map.values().try_for_each(links),
            Value::Array(items) => items.iter().try_for_each(links),
            _ => Ok(()),
        }
    }
    shape(source)?;
    links(source)
}

fn shape(source: &Value) -> Result<(), ImportError> {
    match source {
        Value::Array(_) => {}
        Value::Object(_) if !is_constant(source) => {}
        Value::Object(_) => return Err(ImportError::NotAnObject("a link")),
        Value::Null => return Err(ImportError::NotAnObject("null")),
        Value::Bool(_) => return Err(ImportError::NotAnObject("a boolean")),
        Value::Number(_) => return Err(ImportError::NotAnObject("a number")),
        Value::String(_) => return Err(ImportError::NotAnObject("a string")),
    }
    Ok(())
}

/// The facts of `source`, in synopsys' order, and its entity.
pub fn import(source: &Value) -> Result<(Reference, Vec<Fact>), ImportError> {
    shape(source)?;
    let mut facts = Vec::new();
    let entity = iterate(source, &mut facts)?;
    Ok((entity, facts))
}

/// An object's (or an array's, by index) entries, as facts of its entity.
fn iterate(source: &Value, facts: &mut Vec<Fact>) -> Result<Reference, ImportError> {
    let entity = Reference::of(source)?;
    let entries: Vec<(String, &Value)> = match source {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    for (attribute, value) in entries {
        let value = if is_constant(value) {
            value.clone()
        } else if let Value::Array(members) = value {
            let array = Reference::of(value)?;
            let mut at: Option<String> = None;
            for member in members {
                let (element, stored) = if is_constant(member) {
                    (Reference::of(member)?, member.clone())
                } else {
                    let child = iterate(member, facts)?;
                    (child, child.to_json())
                };
                let position = position::next(at.as_deref(), &element)?;
                facts.push(Fact {
                    entity: array,
                    attribute: position.clone(),
                    value: stored,
                });
                at = Some(position);
            }
            array.to_json()
        } else {
            iterate(value, facts)?.to_json()
        };
        facts.push(Fact {
            entity,
            attribute,
            value,
        });
    }
    Ok(entity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn listed(facts: &[Fact]) -> Vec<(String, String, Value)> {
        facts
            .iter()
            .map(|f| (f.entity.to_url_form(), f.attribute.clone(), f.value.clone()))
            .collect()
    }

    fn link(url_form: &str) -> Value {
        Reference::parse(url_form).expect("reference").to_json()
    }

    /// synopsys 5.1.1's own facts (docs/design/synopsys-ids.md §2.2).
    #[test]
    fn an_import_gives_the_facts_synopsys_gives() {
        let (entity, facts) = import(&json!({"a": 1, "b": [true, null]})).expect("import");
        let object = "ba4jcb5w3wns7ku2mgjr7kkygdllktobne64qanjmmcw75vi67r46n7wx";
        let array = "ba4jca34mwnu67o2li3l24netlorxzjejxwjeauonjsni6fh6rbwbga3s";
        assert_eq!(entity.to_url_form(), object);
        let mut got = listed(&facts);
        got.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let mut want = vec![
            (object.to_owned(), "a".to_owned(), json!(1)),
            (array.to_owned(), "a4yjg2Y".to_owned(), json!(true)),
            (array.to_owned(), "a54C5qrZ".to_owned(), json!(null)),
            (object.to_owned(), "b".to_owned(), link(array)),
        ];
        want.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        assert_eq!(got, want);
    }

    #[test]
    fn objects_in_arrays_are_entities_and_duplicates_keep_their_places() {
        let (entity, facts) =
            import(&json!({"items": [{"v": 1}, {"v": 2}, {"v": 1}]})).expect("import");
        assert_eq!(
            entity.to_url_form(),
            "ba4jcamjypknssipn6s4nkogwz34wajoobbhw4i7imds4rmhwnrudsnw7"
        );
        let one = "ba4jcb2clx6fj6w6l6oy6zxpx5y6tafq6p2t4v3vcqlntqn5egimbeju6";
        let two = "ba4jca6tyzpm4olu7hcwh4bygapgjqyyfddlx5eux5bxgw64fadnuqmdy";
        let array = "ba4jcb7dvntj5yl7hr4amhbvhmqu26rnrwazn3lhitpe4uo3lznehwf3d";
        let got = listed(&facts);
        let positions: Vec<(&str, Value)> = got
            .iter()
            .filter(|f| f.0 == array)
            .map(|f| (f.1.as_str(), f.2.clone()))
            .collect();
        assert_eq!(
            positions,
            [
                ("arktWe", link(one)),
                ("as40YsGY", link(two)),
                ("atrktWe", link(one))
            ]
        );
        assert!(got.contains(&(one.to_owned(), "v".to_owned(), json!(1))));
        assert!(got.contains(&(two.to_owned(), "v".to_owned(), json!(2))));

        let (tags, facts) = import(&json!({"tags": ["a", "b", "c"]})).expect("import");
        assert_eq!(
            tags.to_url_form(),
            "ba4jcb5ebgvvli4g2a5fpx5xmuvlnynz5iunv5shzxyvpdtag6dygpzug"
        );
        assert_eq!(
            facts.last().map(|f| f.value.clone()),
            Some(link(
                "ba4jcay7if7k66xlzp2dyscqz5je4kzynost6wq53aqsrqd742ugz47re"
            ))
        );
    }

    #[test]
    fn arrays_in_arrays_are_indexed_and_constants_are_refused() {
        let (entity, facts) = import(&json!({"m": [[1, 2], [3]]})).expect("import");
        assert_eq!(
            entity.to_url_form(),
            "ba4jcb3jjcvw5qptwppzm5o5byouoc6pufltib2cldcpeyb3bcz7nkggc"
        );
        let got = listed(&facts);
        let pair = "ba4jcaidz4fd6yitjjb6bsg4b4tr7fwfe2b2wq5jyh4m3w7trfosm7l3r";
        assert!(got.contains(&(pair.to_owned(), "0".to_owned(), json!(1))));
        assert!(got.contains(&(pair.to_owned(), "1".to_owned(), json!(2))));
        assert!(got.iter().any(|f| f.1 == "a317Y8p" && f.2 == link(pair)));
        assert!(got.iter().any(|f| f.1 == "a410R8LY"));
        for constant in [
            json!(1),
            json!("x"),
            json!(null),
            json!({"/": {"bytes": "AQID"}}),
        ] {
            assert!(import(&constant).is_err(), "{constant}");
        }
        let (same, _) = import(&json!({"b": [true, null], "a": 1})).expect("import");
        let (again, _) = import(&json!({"a": 1, "b": [true, null]})).expect("import");
        assert_eq!(same, again, "the same object is the same entity");
    }
}
