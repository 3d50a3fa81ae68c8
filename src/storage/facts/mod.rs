//! The fact database behind `/api/data` and `/api/profile` (issue 15), in the making. Built
//! so far: `reference`, the content-derived ids synopsys clients compute
//! (docs/design/synopsys-ids.md).

pub mod reference;
