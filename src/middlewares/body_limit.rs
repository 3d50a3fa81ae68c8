//! The default body-size limit, applied only to requests that can carry a body.
//!
//! axum's `DefaultBodyLimit` stores the limit in the request's extensions, where the body
//! extractors read it. Beside the three entries axum's router adds to every request, that
//! fourth one makes the extension map grow (another allocation and a rehash): for a `GET`
//! with no body it was the most expensive thing the common layers did. A request whose
//! body is known to be empty has nothing to limit, so it skips the insert; every other
//! request (a length, or chunked with none) gets the limit from axum's own layer. Routes
//! still raise or lower it with their own `DefaultBodyLimit`, which runs after this one.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use axum::extract::{DefaultBodyLimit, Request};
use axum::response::Response;
use http_body::Body as _;
use tower::{Layer, Service};

/// Limits request bodies to `max` bytes unless a route says otherwise.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimitLayer {
    pub max: usize,
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit {
            inner,
            stamp: DefaultBodyLimit::max(self.max).layer(HandBack),
        }
    }
}

/// Hands the request back: behind axum's `DefaultBodyLimit`, which stamps the limit on the
/// request on its way in, it makes a stamp that does not own a copy of the route.
#[derive(Debug, Clone, Copy)]
struct HandBack;

impl Service<Request> for HandBack {
    type Response = Request;
    type Error = Infallible;
    type Future = Ready<Result<Request, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        ready(Ok(request))
    }
}

/// The service: stamps the limit on requests that may carry a body, then calls the route.
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    inner: S,
    stamp: <DefaultBodyLimit as Layer<HandBack>>::Service,
}

impl<S> Service<Request> for BodyLimit<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let request = if request.body().size_hint().exact() == Some(0) {
            request
        } else {
            match self.stamp.call(request).into_inner() {
                Ok(stamped) => stamped,
                Err(never) => match never {},
            }
        };
        self.inner.call(request)
    }
}
