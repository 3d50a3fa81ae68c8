//! A panicking handler answers 500 JSON and the process lives on.

use std::any::Any;

use axum::response::{IntoResponse, Response};

use crate::platform::error::AppError;

/// For `tower_http::catch_panic::CatchPanicLayer::custom`.
pub fn into_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    AppError::internal(format_args!("handler panicked: {detail}")).into_response()
}
