//! A route's own body limit, checked before the body is read.
//!
//! The default limit is axum's `DefaultBodyLimit`, wrapped once around the router
//! (`app.rs`): the body extractors hold a body to it as it arrives. A route that takes more
//! or less uses [`RouteBodyLimit`] instead of its own `DefaultBodyLimit`, which also answers
//! a request whose declared `Content-Length` is over the limit at once, with 413 JSON,
//! before reading a byte: a client that announces 1 GB and then stalls gets its answer
//! straight away instead of holding a connection until the request timeout.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use tower::{Layer, Service};

use crate::platform::error::AppError;

/// A route's own body limit (instead of axum's `DefaultBodyLimit` on the route): a request
/// that declares a `Content-Length` over it is answered 413 at once, before a byte of its
/// body is read; a body of unknown length is held to it as it arrives and refused as soon
/// as it passes it.
#[derive(Debug, Clone, Copy)]
pub struct RouteBodyLimit(pub usize);

impl<S> Layer<S> for RouteBodyLimit {
    type Service = RouteBodyLimitService<S>;

    fn layer(&self, inner: S) -> RouteBodyLimitService<S> {
        RouteBodyLimitService {
            max: self.0,
            inner: DefaultBodyLimit::max(self.0).layer(inner),
        }
    }
}

/// The service of [`RouteBodyLimit`].
#[derive(Debug, Clone)]
pub struct RouteBodyLimitService<S> {
    max: usize,
    inner: <DefaultBodyLimit as Layer<S>>::Service,
}

impl<S> Service<Request> for RouteBodyLimitService<S>
where
    <DefaultBodyLimit as Layer<S>>::Service:
        Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        Ready<Result<Response, Infallible>>,
        <<DefaultBodyLimit as Layer<S>>::Service as Service<Request>>::Future,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max as u64) {
            let refused = AppError::payload_too_large(format!(
                "the request body is {} bytes; this route takes at most {}",
                declared.unwrap_or_default(),
                self.max
            ));
            return Either::Left(ready(Ok(refused.into_response())));
        }
        Either::Right(self.inner.call(request))
    }
}
