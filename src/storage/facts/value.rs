//! A fact's value as the engine holds it: JSON written as synopsys writes it (scalars, and
//! links `{"/": …}` for references and bytes), with numbers as JavaScript sees them.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::reference::Reference;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    #[error(
        "a fact's value is a string, number, boolean, null or a link {{\"/\": …}}, not {0} (Import takes objects and arrays)"
    )]
    NotScalar(&'static str),
    #[error("{0}")]
    Link(String),
}

/// `value` with integral numbers written as integers (`1.0` is `1` to JavaScript, and to the
/// hash) and a reference in its one link form (`baedrei…`; `ba4jc…` names the same), checked
/// to be a value a fact can hold: equal values are then equal JSON.
pub fn normalize(value: Value) -> Result<Value, ValueError> {
    match value {
        Value::Number(n) => Ok(Value::Number(normalize_number(n))),
        Value::Object(ref map) if map.len() == 1 && map.contains_key("/") => {
            let reference = Reference::of(&value).map_err(|e| ValueError::Link(e.to_string()))?;
            match map.get("/") {
                Some(Value::String(_)) => Ok(reference.to_json()),
                _ => Ok(value),
            }
        }
        Value::Object(_) => Err(ValueError::NotScalar("an object")),
        Value::Array(_) => Err(ValueError::NotScalar("an array")),
        other => Ok(other),
    }
}

/// A number as JavaScript would print it back: integral doubles within 64 bits as integers.
pub fn normalize_number(n: Number) -> Number {
    match n.as_f64() {
        Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
            // Exact: |f| < 2^53.
            Number::from(f as i64)
        }
        _ => n,
    }
}

/// A float as a JSON number, integral ones as integers (JavaScript has one number type).
pub fn number(f: f64) -> Option<Value> {
    Number::from_f64(f).map(|n| Value::Number(normalize_number(n)))
}

/// The reference a link value names, if it is one (not bytes).
pub fn as_reference(value: &Value) -> Option<Reference> {
    match value.as_object()?.get("/")? {
        Value::String(text) => Reference::parse(text).ok(),
        _ => None,
    }
}

/// The order synopsys keeps attributes in: by their dag-cbor encoding, whose header holds
/// the length, so by length, then bytes.
pub fn attribute_order(a: &str, b: &str) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// datalogia's `data/type` names.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::String(_) => "string",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int32",
        Value::Number(_) => "float32",
        Value::Object(map) => match map.get("/") {
            Some(Value::String(_)) => "reference",
            _ => "bytes",
        },
        Value::Array(_) => "array",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integral_numbers_become_integers() {
        assert_eq!(normalize(json!(1.0)), Ok(json!(1)));
        assert_eq!(normalize(json!(1.5)), Ok(json!(1.5)));
        assert_eq!(normalize(json!(-3.0)), Ok(json!(-3)));
        assert_eq!(
            normalize(json!({"a": 1})),
            Err(ValueError::NotScalar("an object"))
        );
        assert!(normalize(json!({"/": "nope"})).is_err());
        let link = "baedreibc2zyxfii55ollky4pzjnqhb3c3xttdr5jnpsesrvrrdbgoml6za";
        let url_form = Reference::parse(link).expect("ref").to_url_form();
        assert_eq!(normalize(json!({"/": url_form})), Ok(json!({"/": link})));
    }

    #[test]
    fn attributes_order_as_dag_cbor_does() {
        let long = "x".repeat(30);
        let mut names = ["title", "id", "a", "completed", &long, "b"];
        names.sort_by(|a, b| attribute_order(a, b));
        assert_eq!(names[..5], ["a", "b", "id", "title", "completed"]);
    }
}
