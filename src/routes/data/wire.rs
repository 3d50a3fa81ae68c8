//! synopsys' HTTP protocol at `/api/data` (REFERENCE.md, "synopsys"): what a synopsys
//! client sends, and what it expects back, down to the error shape `{"error":{"message"}}`.
//! synopsys answers `Access-Control-Allow-Origin: *`; here the instance's CORS setting
//! (`TOOLSHED_CORS_ORIGINS`, `*` to answer as synopsys does) decides, as for every route: a
//! token-less instance must not be readable by any web page the user opens. Where synopsys
//! 5.1.1 has bugs we do not copy them: a query is checked when it is stored (400, not a crash later), media
//! types compare case-insensitively without parameters, `Range` ends are inclusive.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{blob, live};
use crate::platform::error::AppError;
use crate::platform::extract::{AppBytes, media_type};
use crate::platform::state::AppState;
use crate::storage::StorageError;
use crate::storage::facts::ordered_json::Ordered;
use crate::storage::facts::reference::Reference;
use crate::storage::facts::store::{self, Commit, Instruction};
use crate::storage::facts::{query, query_id};

pub const QUERY_MEDIA: &str = "application/synopsys-query+json";

/// A synopsys error answer: `{"error": {"message": …}}`.
pub fn failure(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let body = json!({"error": {"message": message.to_string()}});
    (status, axum::Json(body)).into_response()
}

fn storage_failure(e: StorageError) -> Response {
    let error = AppError::from(e);
    failure(error.status, error.message)
}

fn commit_body(commit: &Commit) -> Value {
    json!({"ok": {"before": {"id": commit.before}, "after": {"id": commit.after}}})
}

async fn apply(state: &AppState, instructions: Vec<Instruction>) -> Response {
    match state.store.facts.transact(instructions).await {
        Ok(commit) => axum::Json(commit_body(&commit)).into_response(),
        Err(e) => storage_failure(e),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))
}

/// Transact: a JSON array of `Assert`, `Retract`, `Upsert` and `Import` instructions, all
/// applied or none.
#[utoipa::path(
    patch,
    path = "/api/data",
    operation_id = "data_transact_wire",
    tag = "data",
    request_body(content = crate::routes::data::schemas::Transaction, content_type = "application/json"),
    responses(
        (status = 200, description = "Committed: the revision before and after", body = crate::routes::data::schemas::WireCommit),
        (status = 400, description = "Not a transaction (the message names the instruction)", body = crate::routes::data::schemas::WireError),
        (status = 413, description = "Body over the limit", body = crate::platform::error::ErrorBody),
    )
)]
pub async fn transact(State(state): State<AppState>, AppBytes(body): AppBytes) -> Response {
    let value = match parse_json(&body) {
        Ok(value) => value,
        Err(message) => return failure(StatusCode::BAD_REQUEST, message),
    };
    match store::parse_transaction(&value) {
        Ok(instructions) => apply(&state, instructions).await,
        Err(e) => failure(StatusCode::BAD_REQUEST, e),
    }
}

/// Store a query (`application/synopsys-query+json`: 303 to its id), import a JSON object
/// (`application/json`: 200 with the commit), or store any other body as a blob (303 to its
/// id).
#[utoipa::path(
    put,
    path = "/api/data",
    operation_id = "data_put",
    tag = "data",
    request_body(content(
        (crate::routes::data::schemas::WireQuery = "application/synopsys-query+json"),
        (Object = "application/json"),
        (crate::platform::openapi::Binary = "application/octet-stream"),
    )),
    responses(
        (status = 200, description = "The JSON was imported", body = crate::routes::data::schemas::WireCommit),
        (status = 303, description = "Stored; `Location` is `/api/data/<id>`"),
        (status = 400, description = "A bad query or JSON (the message says where)", body = crate::routes::data::schemas::WireError),
        (status = 413, description = "Body over the limit", body = crate::platform::error::ErrorBody),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppBytes(body): AppBytes,
) -> Response {
    let media = media_type(&headers);
    if media == QUERY_MEDIA {
        return put_query(&state, &body).await;
    }
    if media == "application/json" {
        let value = match parse_json(&body) {
            Ok(value) => value,
            Err(message) => return failure(StatusCode::BAD_REQUEST, message),
        };
        return match store::parse_transaction(&json!([{"Import": value}])) {
            Ok(instructions) => apply(&state, instructions).await,
            Err(e) => failure(StatusCode::BAD_REQUEST, e),
        };
    }
    let id = Reference::of_bytes(&body).to_url_form();
    let media = if media.is_empty() {
        "application/octet-stream".to_owned()
    } else {
        media
    };
    match state.store.facts.save_blob(id.clone(), media, body).await {
        Ok(()) => see_other(&id),
        Err(e) => storage_failure(e),
    }
}

async fn put_query(state: &AppState, body: &Bytes) -> Response {
    let ordered: Ordered = match serde_json::from_slice(body) {
        Ok(ordered) => ordered,
        Err(e) => return failure(StatusCode::BAD_REQUEST, format!("Invalid query: {e}")),
    };
    if let Err(e) = query::parse(&ordered, &[]) {
        return failure(StatusCode::BAD_REQUEST, format!("Invalid query, {e}"));
    }
    let id = match query_id::query_id(&ordered) {
        Ok(id) => id.to_url_form(),
        Err(e) => return failure(StatusCode::BAD_REQUEST, format!("Invalid query, {e}")),
    };
    let text = String::from_utf8_lossy(body).into_owned();
    match state.store.facts.save_query(id.clone(), text).await {
        Ok(()) => see_other(&id),
        Err(e) => storage_failure(e),
    }
}

fn see_other(id: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/data/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// A stored query's answer (`Accept: application/json`), its live subscription
/// (`Accept: text/event-stream`), or a stored blob (with `Range`).
#[utoipa::path(
    get,
    path = "/api/data/{id}",
    operation_id = "data_get",
    tag = "data",
    params(
        ("id" = String, Path, description = "A query or blob id (`ba4jc…`), from a PUT's `Location`"),
        ("Last-Event-ID" = Option<String>, Header, description = "With text/event-stream: the id of the last result seen; the first event is skipped when it is still the current one"),
        ("Range" = Option<String>, Header, description = "For a blob: `bytes=first-last`, `bytes=first-` or `bytes=-suffix`"),
    ),
    responses(
        (status = 200, description = "The selection (a JSON array shaped like `select`), an event stream of `change` events (`id` the selection's id, `data` the selection), or the blob with its own type", content(
            ([Object] = "application/json"),
            (String = "text/event-stream"),
            (crate::platform::openapi::Binary = "application/octet-stream"),
        )),
        (status = 206, description = "The asked range of a blob"),
        (status = 400, description = "Not an id", body = crate::routes::data::schemas::WireError),
        (status = 404, description = "No query or blob has this id", body = crate::routes::data::schemas::WireError),
        (status = 416, description = "The range is outside the blob"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    // Either form of a reference names the same query or blob.
    let id = match Reference::parse(&id) {
        Ok(reference) => reference.to_url_form(),
        Err(_) => {
            return failure(
                StatusCode::BAD_REQUEST,
                format!("{id:?} is not a query or blob id (ba4jc…)"),
            );
        }
    };
    let stored = match state.store.facts.load_query(id.clone()).await {
        Ok(stored) => stored,
        Err(e) => return storage_failure(e),
    };
    let Some(text) = stored else {
        return match state.store.facts.load_blob(id.clone()).await {
            Ok(Some((media, bytes))) => blob::serve(&media, bytes, &headers),
            Ok(None) => failure(StatusCode::NOT_FOUND, format!("Query {id} was not found")),
            Err(e) => storage_failure(e),
        };
    };
    let parsed = serde_json::from_str::<Ordered>(&text)
        .map_err(|e| e.to_string())
        .and_then(|o| query::parse(&o, &[]).map_err(|e| e.to_string()));
    let query = match parsed {
        Ok(query) => Arc::new(query),
        Err(e) => {
            return failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("a stored query no longer reads: {e}"),
            );
        }
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if accept.contains("text/event-stream") {
        let last = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        return live::subscribe(state.store.facts.clone(), query, last).await;
    }
    match state.store.facts.query(query, None).await {
        Ok(rows) => axum::Json(Value::Array(rows)).into_response(),
        Err(e) => storage_failure(e),
    }
}

/// 204 with the methods; which origins may call is `TOOLSHED_CORS_ORIGINS`' to say (its
/// layer answers a browser's preflight before this route).
fn preflight(allow: &'static str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// CORS preflight: 204.
#[utoipa::path(options, path = "/api/data", operation_id = "data_preflight", tag = "data", responses((status = 204, description = "The methods allowed (`Allow`)")))]
pub async fn options_root() -> Response {
    preflight("PUT, PATCH, OPTIONS")
}

/// CORS preflight: 204.
#[utoipa::path(options, path = "/api/data/{id}", operation_id = "data_preflight_item", tag = "data",
    params(("id" = String, Path, description = "A query or blob id")),
    responses((status = 204, description = "The methods allowed (`Allow`)")))]
pub async fn options_item() -> Response {
    preflight("GET, HEAD, OPTIONS")
}
