//! Tower layers of our own: a request id and one log line per request (with the route table
//! that names each request's route), a panic net, access control (tokens, host, rate
//! limit), a time limit, and a route's body limit checked before the body is read; and
//! tower-http's CORS, configured. The root app wraps them, with axum's default body limit,
//! once around the whole router. (Why these are hand-written and that one stock:
//! docs/PERFORMANCE.md, "Stock or hand-written".)

pub mod access;
pub mod body_limit;
pub mod catch_panic;
pub mod cors;
pub mod logging;
pub mod request_id;
pub mod route_templates;
pub mod timeout;
