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
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, schema::SchemaType};

use crate::storage::key::{Key, KeyPart};

/// A 64-bit integer's decimal text, as [`int_from_text`] takes it (no sign `+`, no leading
/// zeros, no `-0`), within i64's range: checked against `i64::MIN..=i64::MAX` by a test.
const INT_TEXT_PATTERN: &str = "^(?:0|[1-9][0-9]{0,17}|[1-8][0-9]{18}|9[0-1][0-9]{17}|92[0-1][0-9]{16}|922[0-2][0-9]{15}|9223[0-2][0-9]{14}|92233[0-6][0-9]{13}|922337[0-1][0-9]{12}|92233720[0-2][0-9]{10}|922337203[0-5][0-9]{9}|9223372036[0-7][0-9]{8}|92233720368[0-4][0-9]{7}|922337203685[0-3][0-9]{6}|9223372036854[0-6][0-9]{5}|92233720368547[0-6][0-9]{4}|922337203685477[0-4][0-9]{3}|9223372036854775[0-7][0-9]{2}|922337203685477580[0-6]|9223372036854775807|-(?:[1-9][0-9]{0,17}|[1-8][0-9]{18}|9[0-1][0-9]{17}|92[0-1][0-9]{16}|922[0-2][0-9]{15}|9223[0-2][0-9]{14}|92233[0-6][0-9]{13}|922337[0-1][0-9]{12}|92233720[0-2][0-9]{10}|922337203[0-5][0-9]{9}|9223372036[0-7][0-9]{8}|92233720368[0-4][0-9]{7}|922337203685[0-3][0-9]{6}|9223372036854[0-6][0-9]{5}|92233720368547[0-6][0-9]{4}|922337203685477[0-4][0-9]{3}|9223372036854775[0-7][0-9]{2}|922337203685477580[0-7]|9223372036854775808))$";

/// An integer part's decimal text, in the one spelling the schema's pattern allows.
fn int_from_text(text: &str) -> Option<i64> {
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

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
                    .pattern(Some(INT_TEXT_PATTERN)),
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

/// The OpenAPI schema of a key in its JSON form: at least one part.
pub struct KeyJson;

impl utoipa::PartialSchema for KeyJson {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "KeyPart",
            )))
            .min_items(Some(1))
            .description(Some("A key: an array of at least one part"))
            .into()
    }
}

impl utoipa::ToSchema for KeyJson {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Key")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            Self::name().into_owned(),
            <Self as utoipa::PartialSchema>::schema(),
        ));
        <KeyPartJson as utoipa::ToSchema>::schemas(schemas);
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
                // A whole number written with a fraction (`7.0`) is an integer, as JSON
                // Schema says.
                let parsed = match int {
                    Value::Number(n) => n.as_i64().or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
                            .map(|f| f as i64)
                    }),
                    Value::String(s) => int_from_text(s),
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
    fn integer_text_is_taken_exactly_as_the_schema_pattern_says() {
        let pattern = regex_lite::Regex::new(INT_TEXT_PATTERN).expect("a valid pattern");
        for text in [
            "0",
            "7",
            "-7",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "+7",
            "007",
            "-0",
            "",
            "1e3",
            "99999999999999999999",
            "1000000000000000000",
            "-1000000000000000000",
        ] {
            assert_eq!(
                pattern.is_match(text),
                int_from_text(text).is_some(),
                "{text:?}: the schema and the server disagree"
            );
        }
    }

    #[test]
    fn bad_parts_are_explained() {
        assert!(key_from_json(&json!("users")).is_err());
        assert!(key_from_json(&json!([null])).is_err());
        assert!(key_from_json(&json!([{"int": 1.5}])).is_err());
        assert_eq!(
            key_from_json(&json!([{"int": -7.0}])).expect("integral"),
            vec![KeyPart::Int(-7)]
        );
        assert!(key_from_json(&json!([{"what": 1}])).is_err());
    }
}
