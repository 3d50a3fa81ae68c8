//! Results kept in the embedded store for a while, keyed by a hash of the normalized request
//! (the URL and every option that changes the answer).

use serde_json::Value;

use super::schemas::Url2TextResponse;
use crate::platform::hash::stable_key;
use crate::storage::key::{Key, KeyPart};
use crate::storage::kv::{Kv, KvValue};

/// The stored request is compared on a hit, so a hash collision can never serve the wrong
/// page.
fn key_for(request: &str) -> Key {
    vec![
        KeyPart::String("cache".into()),
        KeyPart::String("url2text".into()),
        KeyPart::String(stable_key(request)),
    ]
}

/// A cached answer for exactly this normalized request, if any.
pub fn lookup(kv: &Kv, request: &str) -> Option<Url2TextResponse> {
    let entry = kv.get(&key_for(request)).ok()??;
    let KvValue::Json(value) = entry.value else {
        return None;
    };
    if value.get("request").and_then(Value::as_str) != Some(request) {
        return None;
    }
    serde_json::from_value(value.get("response")?.clone()).ok()
}

/// Keeps an answer for `ttl_ms`. A failure to cache is logged, never the caller's problem.
pub async fn store(kv: &Kv, request: &str, response: &Url2TextResponse, ttl_ms: u64) {
    let value = serde_json::json!({"request": request, "response": response});
    if let Err(e) = kv
        .set(key_for(request), KvValue::Json(value), Some(ttl_ms))
        .await
    {
        tracing::warn!(error = %e, "cannot cache a url2text result");
    }
}
