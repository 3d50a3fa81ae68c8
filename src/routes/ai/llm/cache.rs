//! The answer cache: identical requests (same resolved models, same prompt and parameters)
//! are answered from the embedded KV store until the TTL passes, without calling a
//! provider. Streamed and whole answers share entries: an entry keeps the deltas, so a
//! cached stream replays as a stream and a whole answer is their concatenation.
//!
//! Writes happen after the answer is sent, gathered for a few milliseconds into one
//! transaction (a commit per answer would cost more than the rest of the gateway); until a
//! write is committed its entry is served from memory, so a repeat that arrives at once is
//! still a hit.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::storage::Store;
use crate::storage::key::KeyPart;
use crate::storage::kv::{Atomic, KvValue, Mutation};

/// How long writes gather before they are committed together.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// Most writes in one transaction.
const BATCH_MAX: usize = 256;

/// What is kept per answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedAnswer {
    /// The model that answered (gateway id).
    pub model: String,
    /// The text as it was streamed (the prefill first, when there was one).
    pub deltas: Vec<String>,
    pub finish_reason: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl CachedAnswer {
    pub fn text(&self) -> String {
        self.deltas.concat()
    }
}

/// The key of a normalized request (a JSON value whose serialization is deterministic:
/// our own structs, fields in a fixed order), 128 bits.
pub fn key_of(normalized: &Value) -> String {
    crate::platform::hash::stable_key(&normalized.to_string())
}

fn kv_key(key: &str) -> Vec<KeyPart> {
    vec![
        KeyPart::String("llm".into()),
        KeyPart::String("cache".into()),
        KeyPart::String(key.into()),
    ]
}

/// Entries being written, by key.
fn pending() -> &'static Mutex<HashMap<String, CachedAnswer>> {
    static PENDING: OnceLock<Mutex<HashMap<String, CachedAnswer>>> = OnceLock::new();
    PENDING.get_or_init(Mutex::default)
}

/// A cached answer, if there is a live one. Store failures count as misses.
pub fn get(store: &Store, key: &str) -> Option<CachedAnswer> {
    if let Some(answer) = pending().lock().ok().and_then(|p| p.get(key).cloned()) {
        return Some(answer);
    }
    match store.kv.get(&kv_key(key)) {
        Ok(Some(entry)) => match entry.value {
            KvValue::Json(value) => serde_json::from_value(value).ok(),
            KvValue::Bytes(_) => None,
        },
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "llm cache read failed");
            None
        }
    }
}

/// One answer to keep.
struct Write {
    key: String,
    answer: CachedAnswer,
    ttl_ms: u64,
}

/// The background writer of this process, started on first use.
fn writer(store: &Store) -> &'static tokio::sync::mpsc::UnboundedSender<Write> {
    static WRITER: OnceLock<tokio::sync::mpsc::UnboundedSender<Write>> = OnceLock::new();
    WRITER.get_or_init(|| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(write_loop(store.clone(), rx));
        tx
    })
}

/// Keeps an answer for `ttl_ms`, writing it in the background.
pub fn put_later(store: &Store, key: String, answer: CachedAnswer, ttl_ms: u64) {
    if let Ok(mut p) = pending().lock() {
        p.insert(key.clone(), answer.clone());
    }
    let write = Write {
        key,
        answer,
        ttl_ms,
    };
    if let Err(failed) = writer(store).send(write) {
        if let Ok(mut p) = pending().lock() {
            p.remove(&failed.0.key);
        }
    }
}

fn mutation(write: &Write) -> Option<Mutation> {
    Some(Mutation::Set {
        key: kv_key(&write.key),
        value: KvValue::Json(serde_json::to_value(&write.answer).ok()?),
        expire_in_ms: Some(write.ttl_ms),
    })
}

/// Commits gathered writes; failures are logged, never a caller's problem.
async fn write_loop(store: Store, mut writes: tokio::sync::mpsc::UnboundedReceiver<Write>) {
    while let Some(first) = writes.recv().await {
        tokio::time::sleep(BATCH_WINDOW).await;
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match writes.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let op = Atomic {
            mutations: batch.iter().filter_map(mutation).collect(),
            ..Default::default()
        };
        if let Err(e) = store.kv.atomic(op).await {
            // One bad entry (too large, say) must not lose the others: one by one.
            tracing::debug!(error = %e, "llm cache batch failed, writing one by one");
            for write in &batch {
                let Some(m) = mutation(write) else { continue };
                let op = Atomic {
                    mutations: vec![m],
                    ..Default::default()
                };
                if let Err(e) = store.kv.atomic(op).await {
                    tracing::warn!(error = %e, "llm cache write failed");
                }
            }
        }
        if let Ok(mut p) = pending().lock() {
            for write in &batch {
                p.remove(&write.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_stable_and_sensitive() {
        let a = key_of(&json!({"m": "x", "p": "hi"}));
        assert_eq!(a, key_of(&json!({"m": "x", "p": "hi"})));
        assert_ne!(a, key_of(&json!({"m": "x", "p": "hi!"})));
        assert_eq!(a.len(), 32);
    }
}
