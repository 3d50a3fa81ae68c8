//! JSON read with its objects' keys in the order written: a query's variables are numbered by
//! where they first appear (docs/design/synopsys-ids.md §3), and `serde_json::Value` keeps
//! keys sorted. A repeated key is refused, as synopsys' DAG-JSON reader refuses it.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl Ordered {
    /// The same value as `serde_json` holds it (keys sorted, as hashing wants them anyway).
    pub fn to_value(&self) -> Value {
        match self {
            Ordered::Null => Value::Null,
            Ordered::Bool(b) => Value::Bool(*b),
            Ordered::Number(n) => Value::Number(n.clone()),
            Ordered::String(s) => Value::String(s.clone()),
            Ordered::Array(items) => Value::Array(items.iter().map(Ordered::to_value).collect()),
            Ordered::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// An object's entries in the order JavaScript's `Object.entries` gives them: keys that
    /// are array indices first, ascending, then the others as written.
    pub fn entries_in_js_order(entries: &[(String, Ordered)]) -> Vec<&(String, Ordered)> {
        let index = |key: &str| -> Option<u32> {
            let canonical = key == "0" || (!key.starts_with('0') && !key.is_empty());
            key.parse::<u32>()
                .ok()
                .filter(|n| canonical && *n < u32::MAX)
        };
        let mut indexed: Vec<_> = entries
            .iter()
            .filter_map(|e| index(&e.0).map(|n| (n, e)))
            .collect();
        indexed.sort_by_key(|(n, _)| *n);
        indexed
            .into_iter()
            .map(|(_, e)| e)
            .chain(entries.iter().filter(|e| index(&e.0).is_none()))
            .collect()
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Ordered, E> {
        Ok(Ordered::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Ordered, E> {
        Ok(Ordered::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Ordered, E> {
        Ok(Ordered::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Ordered, E> {
        serde_json::Number::from_f64(n)
            .map(Ordered::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Ordered, E> {
        Ok(Ordered::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Ordered, E> {
        Ok(Ordered::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Ordered::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut entries: Vec<(String, Ordered)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Ordered>()? {
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("found repeat map key {key:?}")));
            }
            entries.push((key, value));
        }
        Ok(Ordered::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_order_and_repeats_are_refused() {
        let read: Ordered =
            serde_json::from_str(r#"{"b":1,"a":[true,null,"x",1.5]}"#).expect("json");
        let Ordered::Object(entries) = &read else {
            panic!("an object")
        };
        assert_eq!(entries[0].0, "b");
        assert_eq!(entries[1].0, "a");
        assert_eq!(
            read.to_value(),
            serde_json::json!({"a": [true, null, "x", 1.5], "b": 1})
        );
        assert!(serde_json::from_str::<Ordered>(r#"{"a":1,"a":2}"#).is_err());
    }

    #[test]
    fn entries_come_in_javascripts_order() {
        let read: Ordered =
            serde_json::from_str(r#"{"b":1,"10":2,"a":3,"2":4,"01":5}"#).expect("json");
        let Ordered::Object(entries) = &read else {
            panic!("an object")
        };
        let keys: Vec<&str> = Ordered::entries_in_js_order(entries)
            .iter()
            .map(|e| e.0.as_str())
            .collect();
        assert_eq!(keys, ["2", "10", "b", "a", "01"]);
    }
}
