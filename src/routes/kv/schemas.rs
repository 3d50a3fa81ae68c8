//! The KV service's request and response bodies (keys in the JSON form of
//! `storage::key_json`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::storage::entry::{Entry, KvValue, format_versionstamp};
use crate::storage::key_json::{KeyJson, KeyPartJson, key_to_json};
use crate::storage::task::TaskSpec;

/// One stored entry.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"key": ["users", "ada"], "value": {"name": "Ada"}, "versionstamp": "00000000000000070000", "encoding": "json", "expires_at": null}))]
pub struct EntryBody {
    /// The key, in the JSON form of typed keys.
    #[schema(value_type = KeyJson)]
    pub key: Value,
    /// The value: JSON as stored, or base64 text when `encoding` is `bytes`.
    #[schema(value_type = Value)]
    pub value: Value,
    /// 20 hex digits, increasing across the whole store.
    pub versionstamp: String,
    /// `json` or `bytes`.
    pub encoding: &'static str,
    /// When the entry expires (ms since the epoch), if it does.
    pub expires_at: Option<i64>,
}

impl From<Entry> for EntryBody {
    fn from(entry: Entry) -> Self {
        let (value, encoding) = match entry.value {
            KvValue::Json(v) => (v, "json"),
            KvValue::Bytes(b) => (Value::from(STANDARD.encode(b)), "bytes"),
        };
        EntryBody {
            key: key_to_json(&entry.key),
            value,
            versionstamp: format_versionstamp(entry.versionstamp),
            encoding,
            expires_at: entry.expires_at,
        }
    }
}

/// `PUT /api/kv/entries/{key}` with `application/json`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"value": {"name": "Ada"}, "expire_in_ms": 60000}))]
pub struct PutEntry {
    /// Any JSON value.
    #[schema(value_type = Value)]
    pub value: Value,
    /// Remove the entry after this many milliseconds (at most 10 years).
    #[schema(minimum = 1, maximum = 315_360_000_000_u64)]
    pub expire_in_ms: Option<u64>,
}

/// The versionstamp of a commit.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"versionstamp": "00000000000000070000"}))]
pub struct Versionstamp {
    pub versionstamp: String,
}

/// Query of `GET /api/kv/list`. A key parameter is `/`-separated string parts, each
/// percent-encoded on its own, or (when it starts with `[`) the JSON form of a typed key,
/// e.g. `["users",{"int":7}]`. Give a prefix, a prefix and a start, a prefix and an end, or a
/// start and an end (none lists every key).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// The key parameters are here for the document; the handler reads them from the raw query
// so that `%2F` stays inside its part.
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Keys under this prefix (the prefix key itself is not listed).
    pub prefix: Option<String>,
    /// Inclusive start key; with a prefix, it must lie under the prefix.
    pub start: Option<String>,
    /// Exclusive end key; with a prefix, it must lie under the prefix.
    pub end: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Last key first.
    pub reverse: Option<bool>,
    /// From the previous page's `cursor`.
    pub cursor: Option<String>,
}

/// `POST /api/kv/list`: the same selection with keys in their JSON form (any part type).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"prefix": ["users", {"int": 7}], "limit": 10}))]
pub struct ListBody {
    /// Keys under this prefix (the prefix key itself is not listed).
    #[schema(value_type = Option<Vec<KeyPartJson>>)]
    pub prefix: Option<Value>,
    /// Inclusive start key; with a prefix, it must lie under the prefix.
    #[schema(value_type = Option<Vec<KeyPartJson>>)]
    pub start: Option<Value>,
    /// Exclusive end key; with a prefix, it must lie under the prefix.
    #[schema(value_type = Option<Vec<KeyPartJson>>)]
    pub end: Option<Value>,
    /// Entries per page, 1 to 1000 (default 100).
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Last key first.
    pub reverse: Option<bool>,
    /// From the previous page's `cursor`.
    pub cursor: Option<String>,
}

/// A page of a listing.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"entries": [{"key": ["users", "ada"], "value": {"name": "Ada"}, "versionstamp": "00000000000000070000", "encoding": "json", "expires_at": null}], "cursor": null}))]
pub struct ListPage {
    pub entries: Vec<EntryBody>,
    /// Pass as `cursor` to get the next page; `null` when this is the last.
    pub cursor: Option<String>,
}

/// `POST /api/kv/get-many`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"keys": [["users", "ada"], ["counters", {"int": 1}]]}))]
pub struct GetMany {
    /// Up to 1000 keys, each in the JSON form of typed keys.
    #[schema(value_type = Vec<KeyJson>, max_items = 1000)]
    pub keys: Vec<Value>,
}

/// One slot per key asked, `null` where absent.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManyEntries {
    pub entries: Vec<Option<EntryBody>>,
}

/// A condition: the key has this versionstamp, or (`null`) is absent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    #[schema(value_type = KeyJson)]
    pub key: Value,
    pub versionstamp: Option<String>,
}

/// A change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum MutationBody {
    /// Set the key to a JSON value.
    Set {
        #[schema(value_type = KeyJson)]
        key: Value,
        #[schema(value_type = Value)]
        value: Value,
        /// Remove the entry after this many milliseconds (at most 10 years).
        #[schema(minimum = 1, maximum = 315_360_000_000_u64)]
        expire_in_ms: Option<u64>,
    },
    /// Remove the key.
    Delete {
        #[schema(value_type = KeyJson)]
        key: Value,
    },
    /// Add to an integer value (absent counts as 0).
    Sum {
        #[schema(value_type = KeyJson)]
        key: Value,
        value: i64,
    },
    /// Keep the smaller integer.
    Min {
        #[schema(value_type = KeyJson)]
        key: Value,
        value: i64,
    },
    /// Keep the larger integer.
    Max {
        #[schema(value_type = KeyJson)]
        key: Value,
        value: i64,
    },
}

/// `POST /api/kv/atomic`: all applied together, or nothing when a check fails.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "checks": [{"key": ["users", "ada"], "versionstamp": null}],
    "mutations": [
        {"type": "set", "key": ["users", "ada"], "value": {"name": "Ada"}},
        {"type": "sum", "key": ["stats", "users"], "value": 1}
    ],
    "enqueues": [{"kind": "http", "payload": {"method": "GET", "path": "/api/health"}}]
}))]
pub struct AtomicBody {
    #[serde(default)]
    pub checks: Vec<CheckBody>,
    #[serde(default)]
    pub mutations: Vec<MutationBody>,
    /// Tasks enqueued by the same commit (the fields of `POST /api/queue/tasks`).
    #[serde(default)]
    pub enqueues: Vec<TaskSpec>,
}

/// The outcome of an atomic operation (409 with `{"ok": false}` when a check failed).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"ok": true, "versionstamp": "00000000000000080000", "task_ids": []}))]
pub struct AtomicResult {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versionstamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_ids: Option<Vec<i64>>,
}
