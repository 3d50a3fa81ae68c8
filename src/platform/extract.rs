//! Request extractors whose rejections are `AppError`s, so bad input always gets the JSON
//! error shape instead of axum's plain-text default.

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;

use crate::platform::error::AppError;

/// `axum::Json`, rejecting with `AppError` (400 malformed, 415 content type, 413 too large,
/// 422 wrong shape).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct AppJson<T>(pub T);

/// `axum::extract::Query`, rejecting with a JSON 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct AppQuery<T>(pub T);

/// `axum::extract::Path`, rejecting with a JSON 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct AppPath<T>(pub T);
