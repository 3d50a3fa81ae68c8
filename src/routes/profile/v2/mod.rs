//! `/api/profile/v2` (the breaking rewrite, beside v1): the profile as a knowledge graph. A
//! statement `subject predicate object` is a fact; its provenance (who said it, how sure,
//! when) sits on a statement entity of its own (`toolshed/subject`, `toolshed/predicate`,
//! `toolshed/object`, `toolshed/source`, `toolshed/confidence`, `toolshed/at`), so the
//! plain fact stays queryable as any other.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::entities::{self, KEY, RESERVED};
use super::schemas::{
    AddFacts, Edge, EntityView, FactsAdded, ProfileAnswer, ProfileQuery, SearchAnswer, SearchHit,
    SearchParams,
};
use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::{AppJson, AppPath, AppQuery};
use crate::platform::state::AppState;
use crate::storage::db::now_ms;
use crate::storage::facts::reference::Reference;
use crate::storage::facts::store::{FactIn, Instruction, Row};
use crate::storage::facts::{Facts, Page, Paging, value};

const MAX_STATEMENTS: usize = 1000;
/// Words in one search.
const MAX_WORDS: usize = 8;

fn statement_entity(subject: &Reference, predicate: &str, object: &Value) -> Reference {
    Reference::of(&json!({"toolshed/statement": [subject.to_json(), predicate, object]}))
        .unwrap_or_else(|_| Reference::of_bytes(predicate.as_bytes()))
}

/// An object: an entity when written as one (`{"/": …}`, `{"key": …}`), else a literal.
fn object_of(value: &Value, at: &str) -> Result<(Value, Option<String>), AppError> {
    if let Value::Object(map) = value
        && map.len() == 1
        && let Some(Value::String(key)) = map.get("key")
    {
        return Ok((entities::named(key).to_json(), Some(key.clone())));
    }
    value::normalize(value.clone())
        .map(|v| (v, None))
        .map_err(|e| {
            AppError::bad_request(format!("{at}.object: {e}")).with_param(format!("{at}.object"))
        })
}

fn assert(e: Reference, a: &str, value: Value) -> Instruction {
    Instruction::Assert(FactIn {
        e,
        a: a.to_owned(),
        value,
    })
}

fn upsert(e: Reference, a: &str, value: Value) -> Instruction {
    Instruction::Upsert(FactIn {
        e,
        a: a.to_owned(),
        value,
    })
}

/// Add (or take back) statements, with their provenance, in one transaction.
#[utoipa::path(
    post,
    path = "/api/profile/v2/facts",
    operation_id = "profile_v2_add_facts",
    tag = "profile",
    request_body = AddFacts,
    responses(
        (status = 200, description = "Stored", body = FactsAdded),
        (status = 400, description = "A statement that cannot be stored (the message names it)", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Fields missing or of the wrong type", body = ErrorBody),
    )
)]
pub async fn add_facts(
    State(state): State<AppState>,
    AppJson(body): AppJson<AddFacts>,
) -> Result<Json<FactsAdded>, AppError> {
    if body.facts.len() > MAX_STATEMENTS {
        return Err(AppError::bad_request(format!(
            "at most {MAX_STATEMENTS} statements at once"
        )));
    }
    let mut instructions = Vec::new();
    let mut statements = Vec::new();
    let now = now_ms();
    for (i, s) in body.facts.iter().enumerate() {
        let at = format!("facts[{i}]");
        let subject = entities::parse(&s.subject).map_err(|e| {
            AppError::bad_request(format!("{at}.subject: {e}")).with_param(format!("{at}.subject"))
        })?;
        if s.predicate.is_empty() || s.predicate.starts_with(RESERVED) {
            return Err(AppError::bad_request(format!(
                "{at}.predicate: a non-empty name not starting with {RESERVED}"
            ))
            .with_param(format!("{at}.predicate")));
        }
        let (object, object_key) = object_of(&s.object, &at)?;
        if let Some(c) = s.confidence
            && !(0.0..=1.0).contains(&c)
        {
            return Err(
                AppError::bad_request(format!("{at}.confidence: from 0 to 1"))
                    .with_param(format!("{at}.confidence")),
            );
        }
        let fact = FactIn {
            e: subject,
            a: s.predicate.clone(),
            value: object.clone(),
        };
        statements.push(
            json!({"subject": subject.to_json(), "predicate": s.predicate, "object": object}),
        );
        if s.retract {
            instructions.push(Instruction::Retract(fact));
            // Its provenance goes with it: said again later, it starts afresh.
            let st = statement_entity(&subject, &s.predicate, &object);
            let (said, _) = state.store.profile.entity(st).await?;
            instructions.extend(said.into_iter().map(|row| {
                Instruction::Retract(FactIn {
                    e: row.e,
                    a: row.a,
                    value: row.value,
                })
            }));
            continue;
        }
        instructions.push(Instruction::Assert(fact));
        for (entity, key) in [
            (Some(subject), subject_key(&s.subject)),
            (value::as_reference(&object), object_key),
        ] {
            if let (Some(entity), Some(key)) = (entity, key) {
                instructions.push(assert(entity, KEY, Value::String(key)));
            }
        }
        let st = statement_entity(&subject, &s.predicate, &object);
        instructions.push(assert(st, "toolshed/subject", subject.to_json()));
        instructions.push(assert(
            st,
            "toolshed/predicate",
            Value::String(s.predicate.clone()),
        ));
        instructions.push(assert(st, "toolshed/object", object));
        if let Some(source) = &s.source {
            instructions.push(assert(st, "toolshed/source", Value::String(source.clone())));
        }
        if let Some(c) = s.confidence.and_then(value::number) {
            instructions.push(upsert(st, "toolshed/confidence", c));
        }
        instructions.push(upsert(st, "toolshed/at", Value::from(now)));
    }
    let commit = state.store.profile.transact(instructions).await?;
    Ok(Json(FactsAdded {
        revision: commit.after,
        statements,
    }))
}

fn subject_key(subject: &Value) -> Option<String> {
    match subject {
        Value::String(s) if s == "me" => Some("me".into()),
        Value::Object(map) => map.get("key").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

async fn provenance(facts: &Facts, row: &Row) -> Result<(Vec<String>, Option<f64>), AppError> {
    let st = statement_entity(&row.e, &row.a, &row.value);
    let (rows, _) = facts.entity(st).await?;
    let sources = rows
        .iter()
        .filter(|r| r.a == "toolshed/source")
        .filter_map(|r| r.value.as_str().map(str::to_owned))
        .collect();
    let confidence = rows
        .iter()
        .find(|r| r.a == "toolshed/confidence")
        .and_then(|r| r.value.as_f64());
    Ok((sources, confidence))
}

/// One entity with its statements and the statements pointing at it.
#[utoipa::path(
    get,
    path = "/api/profile/v2/entities/{id}",
    operation_id = "profile_v2_entity",
    tag = "profile",
    params(("id" = String, Path, description = "`me`, an entity id (`baedrei…`), or a named entity's name")),
    responses(
        (status = 200, description = "The entity", body = EntityView),
        (status = 404, description = "Nothing is known about it", body = ErrorBody),
    )
)]
pub async fn entity(
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<Json<EntityView>, AppError> {
    let facts = &state.store.profile;
    let entity = match id.as_str() {
        "me" => entities::me(),
        other => Reference::parse(other).unwrap_or_else(|_| entities::named(other)),
    };
    let (out, incoming) = facts.entity(entity).await?;
    if out.is_empty() && incoming.is_empty() && entity != entities::me() {
        return Err(AppError::not_found(format!("nothing is known about {id}")));
    }
    let key = out
        .iter()
        .find(|r| r.a == KEY)
        .and_then(|r| r.value.as_str().map(str::to_owned));
    let mut attributes = serde_json::Map::new();
    let mut outgoing = Vec::new();
    for row in out.iter().filter(|r| !r.a.starts_with(RESERVED)) {
        if value::as_reference(&row.value).is_none()
            && let Value::Array(values) = attributes
                .entry(row.a.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
        {
            values.push(row.value.clone());
        }
        let (sources, confidence) = provenance(facts, row).await?;
        outgoing.push(Edge {
            subject: row.e.to_json(),
            predicate: row.a.clone(),
            object: row.value.clone(),
            sources,
            confidence,
        });
    }
    let mut edges_in = Vec::new();
    for row in incoming.iter().filter(|r| !r.a.starts_with(RESERVED)) {
        let (sources, confidence) = provenance(facts, row).await?;
        edges_in.push(Edge {
            subject: row.e.to_json(),
            predicate: row.a.clone(),
            object: row.value.clone(),
            sources,
            confidence,
        });
    }
    Ok(Json(EntityView {
        id: entity.to_json(),
        key,
        attributes,
        outgoing,
        incoming: edges_in,
    }))
}

/// Query the profile graph in `/api/data`'s language (only the profile's facts are seen).
#[utoipa::path(
    post,
    path = "/api/profile/v2/query",
    operation_id = "profile_v2_query",
    tag = "profile",
    request_body = ProfileQuery,
    responses(
        (status = 200, description = "The rows", body = ProfileAnswer),
        (status = 400, description = "A bad query (the message names the clause)", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Fields of the wrong type", body = ErrorBody),
    )
)]
pub async fn query(
    State(state): State<AppState>,
    AppJson(request): AppJson<ProfileQuery>,
) -> Result<Json<ProfileAnswer>, AppError> {
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
        .profile
        .query_page(request.select, request.clauses, None, paging)
        .await?;
    Ok(Json(ProfileAnswer {
        rows,
        total,
        revision,
    }))
}

/// Find statements whose predicate or value holds every word of `q`.
#[utoipa::path(
    get,
    path = "/api/profile/v2/search",
    operation_id = "profile_v2_search",
    tag = "profile",
    params(SearchParams),
    responses(
        (status = 200, description = "Matching statements, oldest first", body = SearchAnswer),
        (status = 400, description = "No words, or a limit out of range", body = ErrorBody),
    )
)]
pub async fn search(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<SearchParams>,
) -> Result<Json<SearchAnswer>, AppError> {
    let words: Vec<String> = params.q.split_whitespace().map(str::to_owned).collect();
    if words.is_empty() || words.len() > MAX_WORDS || params.q.chars().count() > 200 {
        return Err(AppError::bad_request(format!(
            "q: 1 to {MAX_WORDS} words in at most 200 characters"
        ))
        .with_param("q"));
    }
    let limit = params.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(AppError::bad_request("limit: 1 to 200").with_param("limit"));
    }
    let rows = state
        .store
        .profile
        .search(words, Some(RESERVED), limit)
        .await?;
    let results = rows
        .into_iter()
        .map(|r| SearchHit {
            entity: r.e.to_json(),
            predicate: r.a,
            value: r.value,
        })
        .collect();
    Ok(Json(SearchAnswer { results }))
}
