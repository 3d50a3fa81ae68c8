//! The profile graph's entities: "me", named ones (`{"key": "alice"}`) and the nested
//! objects of the v1 document, each a merkle reference of a small marker object, so the
//! same name is always the same entity.

use serde_json::{Value, json};

use crate::storage::facts::reference::Reference;

/// Attributes the profile keeps for itself (provenance, array markers): hidden from the
/// v1 document and the v2 attribute lists.
pub const RESERVED: &str = "toolshed/";
/// `[entity, "toolshed/array", key]`: the key is an array in the v1 document.
pub const ARRAY: &str = "toolshed/array";
/// `[entity, "toolshed/key", name]`: the entity's name.
pub const KEY: &str = "toolshed/key";

pub fn named(key: &str) -> Reference {
    // A string always hashes; the expect cannot fail.
    Reference::of(&json!({"toolshed/profile": key}))
        .unwrap_or_else(|_| Reference::of_bytes(key.as_bytes()))
}

pub fn me() -> Reference {
    named("me")
}

/// An entity written as `"me"`, a link `{"/": "baedrei…"}`, an id, or `{"key": name}`.
pub fn parse(value: &Value) -> Result<Reference, String> {
    match value {
        Value::String(s) if s == "me" => Ok(me()),
        Value::String(s) => Reference::parse(s).map_err(|e| e.to_string()),
        Value::Object(map) if map.len() == 1 => match (map.get("/"), map.get("key")) {
            (Some(Value::String(id)), _) => Reference::parse(id).map_err(|e| e.to_string()),
            (_, Some(Value::String(key))) if !key.is_empty() => Ok(named(key)),
            _ => Err("an entity is \"me\", {\"/\": \"baedrei…\"} or {\"key\": \"name\"}".into()),
        },
        _ => Err("an entity is \"me\", {\"/\": \"baedrei…\"} or {\"key\": \"name\"}".into()),
    }
}
