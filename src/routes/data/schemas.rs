//! Request and answer shapes of `/api/data`, for the OpenAPI document.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::storage::facts::ordered_json::Ordered;

/// A transaction: instructions applied all together or not at all. Each is one of
/// `{"Assert": [entity, attribute, value]}`, `{"Retract": […]}`, `{"Upsert": […]}` (replaces
/// the attribute's other values) or `{"Import": {…}}` (a JSON object as entities and facts).
/// An entity is a link `{"/": "baedrei…"}`.
#[derive(ToSchema)]
#[allow(dead_code)] // A shape for the document only.
#[schema(value_type = Vec<Object>, example = json!([
    {"Import": {"name": "Groceries", "todo": [{"title": "Milk"}]}},
    {"Assert": [{"/": "baedreibc2zyxfii55ollky4pzjnqhb3c3xttdr5jnpsesrvrrdbgoml6za"}, "name", "Groceries"]}
]))]
pub struct Transaction(Vec<Value>);

/// synopsys' answer to a transaction.
#[derive(ToSchema)]
#[allow(dead_code)] // A shape for the document only.
#[schema(value_type = Object, example = json!({"ok": {"before": {"id": "NcuV3vKyQgcxiZDMdE37fv"}, "after": {"id": "HZBoaPC3NE3AvcZ4enTWqC"}}}))]
pub struct WireCommit(Value);

/// synopsys' error shape.
#[derive(ToSchema)]
#[allow(dead_code)] // A shape for the document only.
#[schema(value_type = Object, example = json!({"error": {"message": "instruction 0: unknown instruction \"Asert\""}}))]
pub struct WireError(Value);

/// A query in synopsys' language.
#[derive(ToSchema)]
#[allow(dead_code)] // A shape for the document only.
#[schema(value_type = Object, example = json!({
    "select": {"name": "?name"},
    "where": [{"Case": ["?person", "name", "?name"]}]
}))]
pub struct WireQuery(Value);

/// A query, with what synopsys' language lacks: paging, ordering and the past.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "select": {"name": "?name", "age": "?age"},
    "where": [{"Case": ["?p", "name", "?name"]}, {"Case": ["?p", "age", "?age"]}, {"Match": [["?age", 30], ">="]}],
    "order": ["-age", "name"], "limit": 10
}))]
pub struct QueryRequest {
    /// `{key: "?variable" | [member]}` or `["?variable"]`.
    #[schema(value_type = Option<Object>)]
    pub select: Option<Ordered>,
    /// Clauses: `Case`, `And`, `Or`, `Not`, `Is`, `Match`, `Rule`.
    #[serde(rename = "where")]
    #[schema(value_type = Vec<Object>)]
    pub clauses: Ordered,
    /// Row keys to sort by, in order; `-key` sorts that key descending. Without it rows come in
    /// synopsys' order.
    #[serde(default)]
    pub order: Vec<String>,
    /// Rows skipped (after ordering).
    #[serde(default)]
    #[schema(minimum = 0)]
    pub offset: usize,
    /// The most rows returned.
    #[schema(minimum = 0)]
    pub limit: Option<usize>,
    /// Read the database as it was after this transaction: its revision id, or its number.
    pub as_of: Option<AsOfParam>,
}

/// A past transaction: its revision id, or its number (0 is the empty database).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AsOfParam {
    #[schema(example = json!("HZBoaPC3NE3AvcZ4enTWqC"))]
    Revision(String),
    Transaction(u64),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueryAnswer {
    /// The rows (after `offset` and `limit`).
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
    /// Rows before `offset` and `limit`.
    pub total: usize,
    /// The revision answered from.
    pub revision: String,
}

/// `POST /api/data/transact`: the instructions of one transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"instructions": [{"Import": {"name": "Alice", "age": 30}}]}))]
pub struct TransactRequest {
    /// As `PATCH /api/data` takes them: `Assert`, `Retract`, `Upsert`, `Import`.
    #[schema(value_type = Vec<Object>)]
    pub instructions: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactAnswer {
    /// The transaction's number (for `as_of`).
    pub transaction: i64,
    /// Revision ids before and after.
    pub before: String,
    pub after: String,
    /// The entity of each `Import`, in order (`{"/": "baedrei…"}`).
    #[schema(value_type = Vec<Object>)]
    pub imported: Vec<Value>,
}

/// One entity: its attributes and what points at it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntityAnswer {
    #[schema(value_type = Object)]
    pub id: Value,
    /// Each attribute's values.
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, Value>,
    /// Facts whose value is this entity.
    pub incoming: Vec<IncomingEdge>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncomingEdge {
    #[schema(value_type = Object)]
    pub entity: Value,
    pub attribute: String,
}
