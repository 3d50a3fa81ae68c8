//! The JSON form of typed keys, shared by every HTTP face that takes keys.
//!
//! A key is a JSON array of parts: a string is a string part, a JSON number a float part
//! (Deno's `number`), `true`/`false` a boolean, `{"int": 42}` (or `{"int": "42"}`) an
//! integer part (Deno's `bigint`), `{"bytes": "<base64>"}` a bytes part. (How keys are
//! written in URLs is the KV face's business: `routes/kv/key_path.rs`.)

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, schema::SchemaType};

use crate::storage::key::{Key, KeyPart};

/// The OpenAPI schema of one key part in its JSON form: a union, so that clients generated
/// from the document accept every part type. Used as `value_type = Vec<KeyPartJson>`.
pub struct KeyPartJson;

impl utoipa::PartialSchema for KeyPartJson {
    fn schema() -> RefOr<Schema> {
        let typed = |t: Type, description: &str| {
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(t))
                .description(Some(description))
        };
        let tagged = |name: &str, value: RefOr<Schema>, description: &str| {
            ObjectBuilder::new()
                .property(name, value)
                .required(name)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .description(Some(description))
        };
        let int = OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Integer))
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .pattern(Some("^-?[0-9]+$")),
            );
        let bytes = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)));
        OneOfBuilder::new()
            .item(typed(Type::String, "a string part"))
            .item(typed(Type::Number, "a float part (Deno's number)"))
            .item(typed(Type::Boolean, "a boolean part"))
            .item(tagged(
                "int",
                int.into(),
                "an integer part (Deno's bigint), 64-bit, as a JSON integer or its decimal text",
            ))
            .item(tagged("bytes", bytes.into(), "a bytes part, base64"))
            .description(Some(
                "One part of a key: a string, a float, a boolean, {\"int\": n} or {\"bytes\": base64}",
            ))
            .into()
    }
}

impl utoipa::ToSchema for KeyPartJson {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("KeyPart")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            Self::name().into_owned(),
            <Self as utoipa::PartialSchema>::schema(),
        ));
    }
}

/// Parses the JSON form of a key.
pub fn key_from_json(value: &Value) -> Result<Key, String> {
    let parts = value
        .as_array()
        .ok_or_else(|| format!("a key is a JSON array of parts, got {value}"))?;
    parts.iter().map(part_from_json).collect()
}

fn part_from_json(value: &Value) -> Result<KeyPart, String> {
    match value {
        Value::String(s) => Ok(KeyPart::String(s.clone())),
        Value::Bool(b) => Ok(KeyPart::Bool(*b)),
        Value::Number(n) => n
            .as_f64()
            .map(KeyPart::Float)
            .ok_or_else(|| format!("{n} is not a number")),
        Value::Object(map) if map.len() == 1 => {
            if let Some(int) = map.get("int") {
                let parsed = match int {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                };
                return parsed
                    .map(KeyPart::Int)
                    .ok_or_else(|| format!("{{\"int\": {int}}} needs a 64-bit whole number"));
            }
            if let Some(Value::String(b64)) = map.get("bytes") {
                return STANDARD
                    .decode(b64)
                    .map(KeyPart::Bytes)
                    .map_err(|_| "{\"bytes\": …} needs base64 text".to_owned());
            }
            Err(format!("unknown key part {value}"))
        }
        other => Err(format!(
            "a key part is a string, number, boolean, {{\"int\": n}} or {{\"bytes\": base64}}; got {other}"
        )),
    }
}

/// Parses the JSON form of a key found at `at` in a request, naming `at` in the error.
pub fn key_at(value: &Value, at: &str) -> Result<Key, crate::storage::StorageError> {
    key_from_json(value).map_err(|e| crate::storage::StorageError::invalid(format!("{at}: {e}")))
}

/// The JSON form of a key.
pub fn key_to_json(key: &[KeyPart]) -> Value {
    Value::Array(
        key.iter()
            .map(|part| match part {
                KeyPart::String(s) => Value::from(s.as_str()),
                KeyPart::Bool(b) => Value::from(*b),
                KeyPart::Float(f) => serde_json::Number::from_f64(*f)
                    .map(Value::Number)
                    // JSON has no NaN or infinities; spell them as Deno's console does.
                    .unwrap_or_else(|| json!({"float": f.to_string()})),
                KeyPart::Int(n) => json!({"int": n}),
                KeyPart::Bytes(b) => json!({"bytes": STANDARD.encode(b)}),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_json() {
        let json = json!(["users", {"int": 42}, 1.5, true, {"bytes": "AAE="}]);
        let key = key_from_json(&json).expect("parses");
        assert_eq!(
            key,
            vec![
                KeyPart::String("users".into()),
                KeyPart::Int(42),
                KeyPart::Float(1.5),
                KeyPart::Bool(true),
                KeyPart::Bytes(vec![0, 1]),
            ]
        );
        assert_eq!(key_to_json(&key), json);
    }

    #[test]
    fn bad_parts_are_explained() {
        assert!(key_from_json(&json!("users")).is_err());
        assert!(key_from_json(&json!([null])).is_err());
        assert!(key_from_json(&json!([{"int": 1.5}])).is_err());
        assert!(key_from_json(&json!([{"what": 1}])).is_err());
    }
}
