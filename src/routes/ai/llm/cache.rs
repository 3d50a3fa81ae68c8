//! The answer cache: identical requests (same resolved models, same prompt and parameters)
//! are answered from the store's cache table until the TTL passes, without calling a
//! provider. Streamed and whole answers share entries: an entry keeps the deltas, so a
//! cached stream replays as a stream and a whole answer is their concatenation.
//!
//! Writes happen after the answer is sent, gathered for a few milliseconds into one
//! transaction (a commit per answer would cost more than the rest of the gateway); until a
//! write is committed its entry is served from memory, so a repeat that arrives at once is
//! still a hit. The writer is one background task of the app: it stops with the server,
//! after writing what it still holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::providers::{ToolCall, Usage};
use crate::platform::state::AppState;
use crate::storage::cache::{Cache, CacheEntry};

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
    /// The tool calls the answer asked for, whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl CachedAnswer {
    pub fn text(&self) -> String {
        self.deltas.concat()
    }

    pub fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
        }
    }
}

/// Entries written but not yet committed, by key.
type Pending = Arc<Mutex<HashMap<String, CachedAnswer>>>;

/// The cache of one app: its table, its pending entries and its writer.
#[derive(Clone)]
pub struct AnswerCache {
    table: Cache,
    pending: Pending,
    writes: mpsc::UnboundedSender<CacheEntry>,
    ttl: Duration,
}

/// Where a plan's key lives in the cache table.
fn table_key(key: &str) -> String {
    format!("llm/{key}")
}

impl AnswerCache {
    /// The cache, with its writer started among the app's background tasks.
    pub fn start(app: &AppState) -> AnswerCache {
        let (writes, queued) = mpsc::unbounded_channel();
        let pending = Pending::default();
        app.background.spawn(write_loop(
            app.store.cache.clone(),
            queued,
            pending.clone(),
            app.drained.clone(),
        ));
        AnswerCache {
            table: app.store.cache.clone(),
            pending,
            writes,
            ttl: app.config.llm_cache_ttl_s,
        }
    }

    /// A cached answer, if there is a live one. Store failures count as misses.
    pub async fn get(&self, key: &str) -> Option<CachedAnswer> {
        let key = table_key(key);
        if let Some(answer) = self.pending.lock().ok().and_then(|p| p.get(&key).cloned()) {
            return Some(answer);
        }
        match self.table.get(&key).await {
            Ok(found) => serde_json::from_slice(&found?).ok(),
            Err(e) => {
                tracing::warn!(error = %e, "llm cache read failed");
                None
            }
        }
    }

    /// Keeps an answer for the TTL, writing it in the background.
    pub fn put_later(&self, key: String, answer: CachedAnswer) {
        let Ok(value) = serde_json::to_vec(&answer) else {
            return;
        };
        let key = table_key(&key);
        if let Ok(mut p) = self.pending.lock() {
            p.insert(key.clone(), answer);
        }
        let entry = CacheEntry {
            key,
            value,
            ttl: self.ttl,
        };
        if let Err(failed) = self.writes.send(entry) {
            // The writer has stopped (the server is shutting down): not cached.
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&failed.0.key);
            }
        }
    }
}

/// Commits gathered writes until the server has drained, then what is still queued;
/// failures are logged, never a caller's problem.
async fn write_loop(
    table: Cache,
    mut queued: mpsc::UnboundedReceiver<CacheEntry>,
    pending: Pending,
    drained: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            biased;
            write = queued.recv() => write,
            () = drained.cancelled() => None,
        };
        let Some(first) = first else { break };
        tokio::select! {
            () = tokio::time::sleep(BATCH_WINDOW) => {}
            () = drained.cancelled() => {}
        }
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match queued.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        commit(&table, batch, &pending).await;
    }
    queued.close();
    let mut rest = Vec::new();
    while let Ok(write) = queued.try_recv() {
        rest.push(write);
    }
    if !rest.is_empty() {
        commit(&table, rest, &pending).await;
    }
}

async fn commit(table: &Cache, batch: Vec<CacheEntry>, pending: &Pending) {
    let keys: Vec<String> = batch.iter().map(|w| w.key.clone()).collect();
    if let Err(e) = table.put_many(batch).await {
        tracing::warn!(error = %e, "llm cache write failed");
    }
    if let Ok(mut p) = pending.lock() {
        for key in &keys {
            p.remove(key);
        }
    }
}
