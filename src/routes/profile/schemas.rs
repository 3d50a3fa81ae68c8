//! Request and answer shapes of `/api/profile`, for the OpenAPI document.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::storage::facts::ordered_json::Ordered;

/// The profile document (v1): any JSON object.
#[derive(ToSchema)]
#[allow(dead_code)] // A shape for the document only.
#[schema(value_type = Object, example = json!({"name": "Ada", "interests": ["chess", "math"], "preferences": {"theme": "dark"}}))]
pub struct ProfileDocument(Value);

/// `POST /api/profile/v2/facts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"facts": [
    {"subject": "me", "predicate": "name", "object": "Ada", "source": "onboarding", "confidence": 1.0},
    {"subject": "me", "predicate": "knows", "object": {"key": "alice"}},
    {"subject": {"key": "alice"}, "predicate": "name", "object": "Alice", "source": "chat", "confidence": 0.8}
]}))]
pub struct AddFacts {
    pub facts: Vec<Statement>,
}

/// One statement: `subject predicate object`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// `"me"`, an entity id, `{"/": id}` or `{"key": name}` (a named entity).
    #[schema(value_type = Object)]
    pub subject: Value,
    pub predicate: String,
    /// A string, number, boolean or null; or an entity: `{"/": id}` or `{"key": name}`.
    #[schema(value_type = Object)]
    pub object: Value,
    /// Where the statement came from (kept with every source that said it).
    pub source: Option<String>,
    /// How sure the source is, 0 to 1 (the latest given is kept).
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub confidence: Option<f64>,
    /// Take the statement back instead (its provenance stays, as history).
    #[serde(default)]
    pub retract: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FactsAdded {
    /// The profile graph's revision after the change.
    pub revision: String,
    /// Each statement as stored (entities as links).
    #[schema(value_type = Vec<Object>)]
    pub statements: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntityView {
    #[schema(value_type = Object)]
    pub id: Value,
    /// Its name, for a named entity.
    pub key: Option<String>,
    /// Each predicate's literal values.
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, Value>,
    /// Every statement about it, with provenance.
    pub outgoing: Vec<Edge>,
    /// Every statement pointing at it, with provenance.
    pub incoming: Vec<Edge>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Edge {
    #[schema(value_type = Object)]
    pub subject: Value,
    pub predicate: String,
    #[schema(value_type = Object)]
    pub object: Value,
    pub sources: Vec<String>,
    pub confidence: Option<f64>,
}

/// A query of the profile graph (the language of `/api/data`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "select": {"friend": "?name"},
    "where": [{"Case": [{"/": "baedreif5w4kgdzscu3e5gsabh6ej2dfuvwgqgqfawufrcxq3ghzvhplsve"}, "knows", "?f"]}, {"Case": ["?f", "name", "?name"]}]
}))]
pub struct ProfileQuery {
    #[schema(value_type = Option<Object>)]
    pub select: Option<Ordered>,
    #[serde(rename = "where")]
    #[schema(value_type = Vec<Object>)]
    pub clauses: Ordered,
    /// Row keys to sort by; `-key` descending.
    #[serde(default)]
    pub order: Vec<String>,
    #[serde(default)]
    #[schema(minimum = 0)]
    pub offset: usize,
    #[schema(minimum = 0)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileAnswer {
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
    pub total: usize,
    pub revision: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words, all of which a fact's predicate or value must hold (case-insensitive).
    #[param(min_length = 1, max_length = 200)]
    pub q: String,
    /// At most this many results (default 20).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchAnswer {
    pub results: Vec<SearchHit>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    #[schema(value_type = Object)]
    pub entity: Value,
    pub predicate: String,
    #[schema(value_type = Object)]
    pub value: Value,
}
