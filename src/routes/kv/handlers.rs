use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::key_path::{key_from_raw_path, key_from_raw_query, raw_query_value};
use super::schemas::{
    AtomicBody, AtomicResult, EntryBody, GetMany, ListBody, ListPage, ListQuery, ManyEntries,
    MutationBody, PutEntry, Versionstamp,
};
use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::{
    AppBytes, AppJson, AppQuery, Caller, is_json, media_type, parse_json,
};
use crate::platform::openapi::Binary;
use crate::platform::state::AppState;
use crate::storage::entry::{KvValue, format_versionstamp, parse_versionstamp};
use crate::storage::key::Key;
use crate::storage::key_json::key_at;
use crate::storage::kv::{Atomic, Check, Commit, ListOptions, Mutation, Selector};

/// Where entry paths start; the rest of the path is the key.
const ENTRIES: &str = "/api/kv/entries/";

/// The key an entry route's path names (see `key_path`).
fn entry_key(uri: &Uri) -> Result<Key, AppError> {
    key_from_raw_path(uri.path().strip_prefix(ENTRIES).unwrap_or_default())
}

const MAX_LIST_LIMIT: usize = 1000;
const MAX_GET_MANY: usize = 1000;

/// Read one entry.
#[utoipa::path(
    get,
    path = "/api/kv/entries/{*key}",
    tag = "kv",
    params(("key" = String, Path, description = "`/`-separated string parts, each percent-encoded on its own (`a%2Fb` is the part `a/b`; a trailing `/` ends with an empty part), e.g. `users/ada`")),
    responses(
        (status = 200, description = "The entry", body = EntryBody),
        (status = 400, description = "An empty key, or a part that is not UTF-8", body = ErrorBody),
        (status = 404, description = "No such key (or it expired)", body = ErrorBody),
    )
)]
pub async fn get_entry(
    State(state): State<AppState>,
    uri: Uri,
) -> Result<Json<EntryBody>, AppError> {
    let key = entry_key(&uri)?;
    match state.store.kv.get(&key).await? {
        Some(entry) => Ok(Json(entry.into())),
        None => Err(AppError::not_found(format!(
            "no entry at {} (the key {})",
            uri.path().strip_prefix(ENTRIES).unwrap_or_default(),
            crate::storage::key_json::key_to_json(&key)
        ))),
    }
}

/// Write one entry.
///
/// `application/json` `{"value": …, "expire_in_ms"?: n}`, or raw bytes with
/// `application/octet-stream` (expiry then from `?expire_in_ms=`).
#[utoipa::path(
    put,
    path = "/api/kv/entries/{*key}",
    tag = "kv",
    params(
        ("key" = String, Path, description = "`/`-separated string parts, each percent-encoded on its own"),
        ("expire_in_ms" = Option<u64>, Query, minimum = 1, maximum = 315_360_000_000_u64, description = "Expiry in ms (at most 10 years), for a body of either kind; not with `expire_in_ms` in a JSON body"),
    ),
    request_body(content(
        (PutEntry = "application/json"),
        (Binary = "application/octet-stream"),
    )),
    responses(
        (status = 200, description = "Stored", body = Versionstamp),
        (status = 400, description = "Malformed body or key", body = ErrorBody),
        (status = 413, description = "Value or key over the limit", body = ErrorBody),
        (status = 415, description = "Neither JSON nor octet-stream", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
    )
)]
pub async fn put_entry(
    State(state): State<AppState>,
    uri: Uri,
    AppQuery(query): AppQuery<ExpiryQuery>,
    headers: HeaderMap,
    AppBytes(body): AppBytes,
) -> Result<Json<Versionstamp>, AppError> {
    let key = entry_key(&uri)?;
    let media = media_type(&headers);
    let (value, expire_in_ms) = match media.as_str() {
        _ if is_json(&headers) => {
            let put: PutEntry = parse_json(&body)?;
            if put.expire_in_ms.is_some() && query.expire_in_ms.is_some() {
                return Err(AppError::bad_request(
                    "expire_in_ms is given in both the body and the query; give it once",
                ));
            }
            (
                KvValue::Json(put.value),
                put.expire_in_ms.or(query.expire_in_ms),
            )
        }
        "application/octet-stream" => (KvValue::Bytes(body.to_vec()), query.expire_in_ms),
        other => {
            return Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "content-type {other:?} is not accepted; send application/json or application/octet-stream"
                ),
            ));
        }
    };
    let versionstamp = state.store.kv.set(key, value, expire_in_ms).await?;
    Ok(Json(Versionstamp {
        versionstamp: format_versionstamp(versionstamp),
    }))
}

/// `?expire_in_ms=` for raw-bytes writes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiryQuery {
    pub expire_in_ms: Option<u64>,
}

/// Delete one entry (deleting an absent key is not an error).
#[utoipa::path(
    delete,
    path = "/api/kv/entries/{*key}",
    tag = "kv",
    params(("key" = String, Path, description = "`/`-separated string parts, each percent-encoded on its own")),
    responses(
        (status = 200, description = "Deleted", body = Versionstamp),
        (status = 400, description = "An empty key, or a part that is not UTF-8", body = ErrorBody),
    )
)]
pub async fn delete_entry(
    State(state): State<AppState>,
    uri: Uri,
) -> Result<Json<Versionstamp>, AppError> {
    let versionstamp = state.store.kv.delete(entry_key(&uri)?).await?;
    Ok(Json(Versionstamp {
        versionstamp: format_versionstamp(versionstamp),
    }))
}

/// List entries by prefix or range, in key order, a page at a time.
#[utoipa::path(
    get,
    path = "/api/kv/list",
    tag = "kv",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of entries", body = ListPage),
        (status = 400, description = "A bad key, limit or cursor; a start or end outside the prefix", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<ListQuery>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ListPage>, AppError> {
    // Key parameters are read from the raw query, so `%2F` stays inside its part. An empty
    // `prefix=` is the empty prefix (every key); an empty `start=`, `end=` or `cursor=` is
    // no bound, as an empty form field is no value.
    let key = |name: &str, empty_is_absent: bool| {
        raw_query_value(raw.as_deref(), name)
            .filter(|value| !(empty_is_absent && value.is_empty()))
            .map(|value| key_from_raw_query(name, value))
            .transpose()
    };
    let selector = Selector {
        prefix: key("prefix", false)?,
        start: key("start", true)?,
        end: key("end", true)?,
    };
    let cursor = query.cursor.filter(|c| !c.is_empty());
    list_page(&state, selector, query.limit, query.reverse, cursor).await
}

/// List entries with typed keys in the body (the JSON form: any part type).
#[utoipa::path(
    post,
    path = "/api/kv/list",
    tag = "kv",
    request_body = ListBody,
    responses(
        (status = 200, description = "A page of entries", body = ListPage),
        (status = 400, description = "A bad key, limit or cursor; a start or end outside the prefix", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
    )
)]
pub async fn list_typed(
    State(state): State<AppState>,
    AppJson(body): AppJson<ListBody>,
) -> Result<Json<ListPage>, AppError> {
    let key = |name: &str, value: &Option<serde_json::Value>| {
        value
            .as_ref()
            .map(|v| key_at(v, name).map_err(AppError::from))
            .transpose()
    };
    let selector = Selector {
        prefix: key("prefix", &body.prefix)?,
        start: key("start", &body.start)?,
        end: key("end", &body.end)?,
    };
    list_page(&state, selector, body.limit, body.reverse, body.cursor).await
}

async fn list_page(
    state: &AppState,
    selector: Selector,
    limit: Option<usize>,
    reverse: Option<bool>,
    cursor: Option<String>,
) -> Result<Json<ListPage>, AppError> {
    let limit = limit.unwrap_or(100);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(AppError::bad_request(format!(
            "limit must be from 1 to {MAX_LIST_LIMIT}"
        )));
    }
    let options = ListOptions {
        limit,
        reverse: reverse.unwrap_or(false),
        cursor,
    };
    let page = state.store.kv.list(&selector, &options).await?;
    Ok(Json(ListPage {
        entries: page.entries.into_iter().map(EntryBody::from).collect(),
        cursor: page.cursor,
    }))
}

/// Read several keys from one snapshot.
#[utoipa::path(
    post,
    path = "/api/kv/get-many",
    tag = "kv",
    request_body = GetMany,
    responses(
        (status = 200, description = "One slot per key, null where absent", body = ManyEntries),
        (status = 400, description = "A bad key", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
    )
)]
pub async fn get_many(
    State(state): State<AppState>,
    AppJson(body): AppJson<GetMany>,
) -> Result<Json<ManyEntries>, AppError> {
    if body.keys.len() > MAX_GET_MANY {
        return Err(AppError::bad_request(format!(
            "at most {MAX_GET_MANY} keys per call"
        )));
    }
    let keys = body
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| key_at(k, &format!("keys[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let entries = state.store.kv.get_many(&keys).await?;
    Ok(Json(ManyEntries {
        entries: entries
            .into_iter()
            .map(|e| e.map(EntryBody::from))
            .collect(),
    }))
}

/// Apply checks, mutations and enqueues together, or nothing.
///
/// When a check fails nothing is applied and the answer is 409 `{"ok": false}`.
#[utoipa::path(
    post,
    path = "/api/kv/atomic",
    tag = "kv",
    request_body = AtomicBody,
    responses(
        (status = 200, description = "Committed", body = AtomicResult),
        (status = 400, description = "A bad key, versionstamp or operand", body = ErrorBody),
        (status = 409, description = "A check failed; nothing was applied", body = AtomicResult,
         example = json!({"ok": false})),
        (status = 413, description = "Over a limit (100 checks, 1000 mutations, value size)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
    )
)]
pub async fn atomic(
    State(state): State<AppState>,
    Caller(caller): Caller,
    AppJson(body): AppJson<AtomicBody>,
) -> Result<Response, AppError> {
    let mut op = Atomic::default();
    for (i, check) in body.checks.iter().enumerate() {
        let versionstamp = match &check.versionstamp {
            None => None,
            Some(text) => Some(parse_versionstamp(text).ok_or_else(|| {
                AppError::bad_request(format!(
                    "checks[{i}].versionstamp must be 20 hex digits or null, got {text:?}"
                ))
            })?),
        };
        op.checks.push(Check {
            key: key_at(&check.key, &format!("checks[{i}].key"))?,
            versionstamp,
        });
    }
    for (i, mutation) in body.mutations.into_iter().enumerate() {
        let at = |what: &str| format!("mutations[{i}].{what}");
        op.mutations.push(match mutation {
            MutationBody::Set {
                key,
                value,
                expire_in_ms,
            } => Mutation::Set {
                key: key_at(&key, &at("key"))?,
                value: KvValue::Json(value),
                expire_in_ms,
            },
            MutationBody::Delete { key } => Mutation::Delete {
                key: key_at(&key, &at("key"))?,
            },
            MutationBody::Sum { key, value } => Mutation::Sum {
                key: key_at(&key, &at("key"))?,
                value,
            },
            MutationBody::Min { key, value } => Mutation::Min {
                key: key_at(&key, &at("key"))?,
                value,
            },
            MutationBody::Max { key, value } => Mutation::Max {
                key: key_at(&key, &at("key"))?,
                value,
            },
        });
    }
    for (i, spec) in body.enqueues.into_iter().enumerate() {
        let task = spec.into_task(&format!("enqueues[{i}]."), caller.clone())?;
        state
            .workers
            .validate(&task.kind, &task.payload)
            .map_err(|e| AppError::bad_request(format!("enqueues[{i}]: {e}")))?;
        op.enqueues.push(task);
    }
    Ok(match state.store.kv.atomic(op).await? {
        Commit::Ok {
            versionstamp,
            task_ids,
        } => Json(AtomicResult {
            ok: true,
            versionstamp: Some(format_versionstamp(versionstamp)),
            task_ids: Some(task_ids),
        })
        .into_response(),
        Commit::CheckFailed => (
            StatusCode::CONFLICT,
            Json(AtomicResult {
                ok: false,
                versionstamp: None,
                task_ids: None,
            }),
        )
            .into_response(),
    })
}
