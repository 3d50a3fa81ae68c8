//! `/api/profile` (v1): the "me" entity as one JSON document, changed with a JSON merge
//! patch (RFC 7396). Only the keys a patch names are rewritten, so statements made through
//! v2 under other keys stay as they are.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::Value;

use super::document::{self, changes, facts_of, merge_patch, stored_facts_of};
use super::entities;
use super::schemas::ProfileDocument;
use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::AppJson;
use crate::platform::state::AppState;

/// Serializes v1 patches (a read-modify-write each); built with the router.
#[derive(Clone, Default)]
pub struct PatchLock(Arc<tokio::sync::Mutex<()>>);

/// The profile as one document.
#[utoipa::path(
    get,
    path = "/api/profile",
    operation_id = "profile_get",
    tag = "profile",
    responses((status = 200, description = "The profile (an empty object before anything is set)", body = ProfileDocument))
)]
pub async fn get(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    Ok(Json(
        document::render(&state.store.profile, entities::me()).await?,
    ))
}

/// Change the profile with a JSON merge patch (RFC 7396): `null` removes a key, an object
/// merges into the object there, anything else replaces.
#[utoipa::path(
    patch,
    path = "/api/profile",
    operation_id = "profile_patch",
    tag = "profile",
    request_body(content(
        (ProfileDocument = "application/merge-patch+json"),
        (ProfileDocument = "application/json"),
    )),
    responses(
        (status = 200, description = "The profile after the patch", body = ProfileDocument),
        (status = 400, description = "A value v1 cannot hold (an array of objects, a key starting with toolshed/)", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Not a JSON object", body = ErrorBody),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    Extension(lock): Extension<PatchLock>,
    AppJson(patch): AppJson<Value>,
) -> Result<Json<Value>, AppError> {
    let facts = &state.store.profile;
    let me = entities::me();
    if let Value::Object(keys) = &patch
        && let Some(key) = keys.keys().find(|k| k.starts_with(entities::RESERVED))
    {
        return Err(AppError::bad_request(format!(
            "{key}: keys starting with {} are the profile's own",
            entities::RESERVED
        ))
        .with_param(key.clone()));
    }
    // One patch at a time: each reads the document, then writes what changed.
    let _one_at_a_time = lock.0.lock().await;
    let mut updated = document::render(facts, me).await?;
    merge_patch(&mut updated, &patch);
    let mut old = Vec::new();
    let mut new = Vec::new();
    if let (Value::Object(keys), Value::Object(doc)) = (&patch, &updated) {
        for key in keys.keys() {
            stored_facts_of(facts, me, "me", key, &mut old).await?;
            if let Some(value) = doc.get(key) {
                facts_of(me, "me", key, value, &mut new)?;
            }
        }
    }
    facts.transact(changes(old, new)).await?;
    Ok(Json(document::render(facts, me).await?))
}
