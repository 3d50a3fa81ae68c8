//! Results kept in the store's cache table for a while, keyed by the SHA-256 of the
//! normalized request (the URL and every option that changes the answer).

use std::time::Duration;

use super::schemas::Url2TextResponse;
use crate::platform::hash::cache_key;
use crate::storage::cache::{Cache, CacheEntry};

fn key_for(request: &str) -> String {
    format!("url2text/{}", cache_key(request))
}

/// A cached answer for exactly this normalized request, if any. A failure to read is a miss.
pub async fn lookup(cache: &Cache, request: &str) -> Option<Url2TextResponse> {
    match cache.get(&key_for(request)).await {
        Ok(found) => serde_json::from_slice(&found?).ok(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a cached url2text result");
            None
        }
    }
}

/// Keeps an answer for `ttl`. A failure to cache is logged, never the caller's problem.
pub async fn store(cache: &Cache, request: &str, response: &Url2TextResponse, ttl: Duration) {
    let Ok(value) = serde_json::to_vec(response) else {
        return;
    };
    let entry = CacheEntry {
        key: key_for(request),
        value,
        ttl,
    };
    if let Err(e) = cache.put_many(vec![entry]).await {
        tracing::warn!(error = %e, "cannot cache a url2text result");
    }
}
