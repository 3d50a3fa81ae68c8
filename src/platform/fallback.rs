//! The answers for requests no route takes: unknown path (404) and wrong method (405), in
//! the JSON error shape like every other failure.

use axum::http::{Method, StatusCode, Uri};

use crate::platform::error::AppError;

/// Unknown path.
pub async fn not_found(method: Method, uri: Uri) -> AppError {
    AppError::not_found(format!("no route for {method} {}", uri.path()))
}

/// Known path, method not served there.
pub async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
