//! Tower layers the root app applies to every route: a request id, one log line per
//! request, a time limit, a body-size limit and a panic net.

pub mod body_limit;
pub mod catch_panic;
pub mod logging;
pub mod request_id;
pub mod route_templates;
pub mod timeout;
