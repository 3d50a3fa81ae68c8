//! Keys written in URLs. In a path (`/api/kv/entries/users/ada`) a key is `/`-separated
//! string parts, each percent-decoded on its own, so `a%2Fb` is the one part `a/b` and a
//! trailing `/` ends with an empty part (`users/` is `["users", ""]`). In a query
//! (`?prefix=…`) a value that starts with `[` is the JSON form of a typed key
//! (`["users",{"int":7}]`); any other value is `/`-separated string parts, as in a path.

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::platform::error::AppError;
use crate::storage::key::{Key, KeyPart};
use crate::storage::key_json::key_from_json;

/// The key a raw (still percent-encoded) path names.
pub fn key_from_raw_path(raw: &str) -> Result<Key, AppError> {
    if raw.is_empty() {
        return Err(AppError::bad_request(
            "the key is empty: write it after /api/kv/entries/",
        ));
    }
    raw.split('/').map(|part| decode(part, false)).collect()
}

/// The key a raw query value names (`prefix`, `start`, `end`); an empty value is the empty
/// key (every key has it as a prefix).
pub fn key_from_raw_query(name: &str, raw: &str) -> Result<Key, AppError> {
    let decoded = decode_text(raw, true)
        .map_err(|()| AppError::bad_request(format!("{name} is not valid UTF-8 once decoded")))?;
    if decoded.starts_with('[') {
        let json: Value = serde_json::from_str(&decoded).map_err(|e| {
            AppError::bad_request(format!("{name} starts with [ but is not a JSON array: {e}"))
        })?;
        return key_from_json(&json).map_err(|e| AppError::bad_request(format!("{name}: {e}")));
    }
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    raw.split('/').map(|part| decode(part, true)).collect()
}

/// The raw value of `name` in a query string, if present (the last one wins).
pub fn raw_query_value<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
        .next_back()
}

fn decode(part: &str, plus_is_space: bool) -> Result<KeyPart, AppError> {
    decode_text(part, plus_is_space)
        .map(KeyPart::String)
        .map_err(|()| {
            AppError::bad_request(format!("key part {part:?} is not valid UTF-8 once decoded"))
        })
}

/// Percent-decodes; in a query, `+` is a space (form encoding).
fn decode_text(raw: &str, plus_is_space: bool) -> Result<String, ()> {
    let spaced;
    let raw = if plus_is_space && raw.contains('+') {
        spaced = raw.replace('+', " ");
        spaced.as_str()
    } else {
        raw
    };
    percent_decode_str(raw)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(parts: &[&str]) -> Key {
        parts.iter().map(|p| KeyPart::String((*p).into())).collect()
    }

    #[test]
    fn an_encoded_slash_stays_in_its_part_and_a_trailing_slash_is_an_empty_part() {
        assert_eq!(key_from_raw_path("a%2Fb").expect("key"), strings(&["a/b"]));
        assert_eq!(
            key_from_raw_path("users/").expect("key"),
            strings(&["users", ""])
        );
        assert_eq!(
            key_from_raw_path("users/ada%20l").expect("key"),
            strings(&["users", "ada l"])
        );
        assert_eq!(key_from_raw_path("a+b").expect("key"), strings(&["a+b"]));
        assert!(key_from_raw_path("").is_err());
        assert!(key_from_raw_path("%FF").is_err());
    }

    #[test]
    fn query_keys_are_json_or_slash_separated() {
        assert_eq!(
            key_from_raw_query("prefix", "%5B%22users%22%2C%7B%22int%22%3A7%7D%5D").expect("key"),
            vec![KeyPart::String("users".into()), KeyPart::Int(7)]
        );
        assert_eq!(
            key_from_raw_query("prefix", "a%2Fb/c+d").expect("key"),
            strings(&["a/b", "c d"])
        );
        assert_eq!(key_from_raw_query("prefix", "").expect("key"), Vec::new());
        assert!(key_from_raw_query("prefix", "[1,").is_err());
        assert_eq!(
            raw_query_value(Some("a=1&prefix=x%2Fy&b"), "prefix"),
            Some("x%2Fy")
        );
        assert_eq!(raw_query_value(Some("b"), "b"), Some(""));
        assert_eq!(raw_query_value(None, "b"), None);
    }
}
