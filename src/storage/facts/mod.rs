//! The fact database behind `/api/data` and `/api/profile` (issue 15), in the making. Built
//! so far, each checked against synopsys' own outputs (docs/design/synopsys-ids.md):
//! `reference`, the content-derived ids synopsys clients compute; `position`, the
//! attributes that keep an imported array's members in order; `import`, a JSON object as
//! facts; `query_id`, a stored query's id (over `ordered_json`, JSON with its keys in the
//! order written).

pub mod import;
pub mod ordered_json;
pub mod position;
pub mod query_id;
pub mod reference;
