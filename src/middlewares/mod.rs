//! Tower layers the root app wraps once around the whole router: a request id, one log line
//! per request (with the route table that names each request's route), a panic net, a time
//! limit and a body-size limit.

pub mod body_limit;
pub mod catch_panic;
pub mod logging;
pub mod request_id;
pub mod route_templates;
pub mod timeout;
