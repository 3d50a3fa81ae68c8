//! A query's id, as synopsys gives it when a query is stored (docs/design/synopsys-ids.md
//! §3): its variables renumbered by first appearance (`select` read before `where`), each
//! written `{"?": {"id": n}}`, and the merkle reference of the result. Renaming variables, or
//! reordering clauses in a way that keeps their first appearances, keeps the id.

use serde_json::{Value, json};

use super::ordered_json::Ordered;
use super::reference::{Reference, ReferenceError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryIdError {
    #[error("a query is a JSON object with \"select\" and \"where\"")]
    NotAnObject,
    #[error("a query's \"where\" is an array of clauses")]
    WhereNotArray,
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

/// The names of the variables seen so far, in order: a name's id is its place plus one.
struct Scope(Vec<String>);

impl Scope {
    fn id(&mut self, name: String) -> usize {
        match self.0.iter().position(|n| *n == name) {
            Some(at) => at + 1,
            None => {
                self.0.push(name);
                self.0.len()
            }
        }
    }
}

/// `{"?": {"id": n}}`, a variable already numbered.
fn numbered(entries: &[(String, Ordered)]) -> Option<String> {
    match entries {
        [(key, Ordered::Object(inner))] if key == "?" => match inner.as_slice() {
            [(id, Ordered::Number(n))] if id == "id" => Some(format!("${n}")),
            _ => None,
        },
        _ => None,
    }
}

fn rewrite(value: &Ordered, in_select: bool, scope: &mut Scope) -> Value {
    match value {
        Ordered::String(text) if text.starts_with('?') => {
            json!({"?": {"id": scope.id(text[1..].to_owned())}})
        }
        Ordered::Object(entries) => {
            if let Some(name) = numbered(entries) {
                return json!({"?": {"id": scope.id(name)}});
            }
            if entries.len() == 1 && entries[0].0 == "/" {
                // A link (a reference or bytes) is a constant.
                return value.to_value();
            }
            Value::Object(
                Ordered::entries_in_js_order(entries)
                    .into_iter()
                    .map(|(key, v)| (key.clone(), rewrite(v, in_select, scope)))
                    .collect(),
            )
        }
        // In `select`, `[{…}]` groups rows: only its first member counts.
        Ordered::Array(items) if in_select => Value::Array(
            items
                .first()
                .map(|first| rewrite(first, in_select, scope))
                .into_iter()
                .collect(),
        ),
        Ordered::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| rewrite(item, in_select, scope))
                .collect(),
        ),
        other => other.to_value(),
    }
}

/// The id of `query` (read with its keys in order).
pub fn query_id(query: &Ordered) -> Result<Reference, QueryIdError> {
    let Ordered::Object(entries) = query else {
        return Err(QueryIdError::NotAnObject);
    };
    let field = |name: &str| entries.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let mut scope = Scope(Vec::new());
    let select = match field("select") {
        Some(select) => rewrite(select, true, &mut scope),
        None => json!({}),
    };
    let clauses = match field("where") {
        Some(Ordered::Array(clauses)) => clauses,
        _ => return Err(QueryIdError::WhereNotArray),
    };
    let clauses: Vec<Value> = clauses
        .iter()
        .map(|clause| rewrite(clause, false, &mut scope))
        .collect();
    Ok(Reference::of(&json!({"select": select, "where": clauses}))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> String {
        let query: Ordered = serde_json::from_str(text).expect("json");
        query_id(&query).expect("id").to_url_form()
    }

    /// synopsys 5.1.1's own query ids (docs/design/synopsys-ids.md §3).
    #[test]
    fn query_ids_are_those_synopsys_gives() {
        let a = "ba4jcbacrvi3zptjppjlwd4ay5uwrxqstds3wp77rzmls5fo3hb5ty2a6";
        assert_eq!(
            id(r#"{"select":{"v":"?v","e":"?e"},"where":[{"Case":["?e","a","?v"]}]}"#),
            a
        );
        assert_eq!(
            id(r#"{"select":{"v":"?y","e":"?x"},"where":[{"Case":["?x","a","?y"]}]}"#),
            a,
            "renamed variables, same first appearances"
        );
        assert_eq!(
            id(r#"{"where":[{"Case":["?x","a","?y"]}],"select":{"v":"?y","e":"?x"}}"#),
            a,
            "select is read first wherever it is written"
        );
        assert_eq!(
            id(r#"{"select":{"e":"?x","v":"?y"},"where":[{"Case":["?x","a","?y"]}]}"#),
            "ba4jcanulw47z7dfhnqwf4m6s7njsoyogdhviyqss336lrc435bxmn753"
        );
        assert_eq!(
            id(
                r#"{"select":{"name":"?name","tags":["?tag"]},"where":[{"Case":["?e","name","?name"]},{"Case":["?e","tags","?list"]},{"Case":["?list","?at","?tag"]},{"Case":["?e","kind",{"/":"baedreibqvxp76ec6hnqsu54yurdkdoc7fg4ufwmk4da2vbv4liupx56544"}]}]}"#
            ),
            "ba4jcbksyf3pkh5cqzgq3kaugxp74ovuezpdf5vva4ynrs4l33wj3azg5"
        );
    }

    #[test]
    fn a_query_without_clauses_has_no_id() {
        let read = |text: &str| serde_json::from_str::<Ordered>(text).expect("json");
        assert_eq!(
            query_id(&read(r#"{"select":{}}"#)),
            Err(QueryIdError::WhereNotArray)
        );
        assert_eq!(query_id(&read("[1]")), Err(QueryIdError::NotAnObject));
    }
}
