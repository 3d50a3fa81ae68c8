//! JSON conveniences beside synopsys' protocol, in the house's shapes (`{"error": "…"}`):
//! a transaction that answers with its number and imported entities, a query that can be
//! ordered, paged and asked of the past, and one entity with its edges.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::schemas::{
    AsOfParam, EntityAnswer, IncomingEdge, QueryAnswer, QueryRequest, TransactAnswer,
    TransactRequest,
};
use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::{AppJson, AppPath};
use crate::platform::state::AppState;
use crate::storage::facts::reference::Reference;
use crate::storage::facts::store;
use crate::storage::facts::{AsOf, Page, Paging};

/// Apply a transaction (the same instructions as `PATCH /api/data`), all or nothing.
#[utoipa::path(
    post,
    path = "/api/data/transact",
    operation_id = "data_transact",
    tag = "data",
    request_body = TransactRequest,
    responses(
        (status = 200, description = "Committed", body = TransactAnswer),
        (status = 400, description = "Not a transaction (the message names the instruction)", body = ErrorBody),
        (status = 413, description = "Body over `TOOLSHED_DATA_MAX_BODY_BYTES`", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "No `instructions` array, or another field", body = ErrorBody),
    )
)]
pub async fn transact(
    State(state): State<AppState>,
    AppJson(body): AppJson<TransactRequest>,
) -> Result<Json<TransactAnswer>, AppError> {
    let instructions = store::parse_transaction(&body.instructions)
        .map_err(|e| AppError::bad_request(e.to_string()))?;
    let commit = state.store.facts.transact(instructions).await?;
    Ok(Json(TransactAnswer {
        transaction: commit.tx,
        before: commit.before,
        after: commit.after,
        imported: commit.imported.iter().map(Reference::to_json).collect(),
    }))
}

/// Answer a query, optionally ordered, paged, or as of a past transaction.
#[utoipa::path(
    post,
    path = "/api/data/query",
    operation_id = "data_query",
    tag = "data",
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The rows", body = QueryAnswer),
        (status = 400, description = "A bad query (the message names the clause)", body = ErrorBody),
        (status = 404, description = "`as_of` names no transaction", body = ErrorBody),
        (status = 413, description = "Body over `TOOLSHED_DATA_MAX_BODY_BYTES`", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Fields of the wrong type", body = ErrorBody),
    )
)]
pub async fn query(
    State(state): State<AppState>,
    AppJson(request): AppJson<QueryRequest>,
) -> Result<Json<QueryAnswer>, AppError> {
    let as_of = request.as_of.map(|as_of| match as_of {
        AsOfParam::Revision(revision) => AsOf::Revision(revision),
        AsOfParam::Transaction(tx) => AsOf::Transaction(i64::try_from(tx).unwrap_or(i64::MAX)),
    });
    let paging = Paging {
        order: request.order,
        offset: request.offset,
        limit: request.limit,
    };
    let Page {
        rows,
        total,
        revision,
    } = state
        .store
        .facts
        .query_page(request.select, request.clauses, as_of, paging)
        .await?;
    Ok(Json(QueryAnswer {
        rows,
        total,
        revision,
    }))
}

/// One entity: every attribute with its values, and the facts that point at it.
#[utoipa::path(
    get,
    path = "/api/data/entities/{id}",
    operation_id = "data_entity",
    tag = "data",
    params(("id" = String, Path, description = "The entity (`baedrei…`, as in `{\"/\": …}`)")),
    responses(
        (status = 200, description = "The entity", body = EntityAnswer),
        (status = 400, description = "Not an entity id", body = ErrorBody),
        (status = 404, description = "No fact is about this entity or points at it", body = ErrorBody),
    )
)]
pub async fn entity(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Json<EntityAnswer>, AppError> {
    let entity = Reference::parse(&id).map_err(|e| AppError::bad_request(e.to_string()))?;
    let (out, incoming) = state.store.facts.entity(entity).await?;
    if out.is_empty() && incoming.is_empty() {
        return Err(AppError::not_found(format!("no fact is about {id}")));
    }
    let mut attributes = serde_json::Map::new();
    for row in out {
        if let Value::Array(values) = attributes
            .entry(row.a)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            values.push(row.value);
        }
    }
    Ok(Json(EntityAnswer {
        id: entity.to_json(),
        attributes,
        incoming: incoming
            .into_iter()
            .map(|row| IncomingEdge {
                entity: row.e.to_json(),
                attribute: row.a,
            })
            .collect(),
    }))
}
