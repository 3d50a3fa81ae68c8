//! One log line per request: request id, method, path, matched route template, status,
//! latency in ms and response size in bytes.
//!
//! The line is written when the response body has been sent, so streamed answers report
//! their true size and duration; a body dropped early (the client went away) is logged with
//! `aborted = true`. Handlers' own log lines carry the request id through the span.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tracing::{Instrument, Span};

use crate::middlewares::request_id::RequestId;

/// What the log line says, gathered before the body is sent.
struct RequestLine {
    span: Span,
    method: Method,
    path: String,
    route: Option<MatchedPath>,
    status: StatusCode,
    started: Instant,
    bytes: u64,
    logged: bool,
}

impl RequestLine {
    fn emit(&mut self, aborted: bool) {
        if self.logged {
            return;
        }
        self.logged = true;
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let route = self.route.as_ref().map_or("-", |r| r.as_str());
        self.span.in_scope(|| {
            tracing::info!(
                method = %self.method,
                path = %self.path,
                route,
                status = self.status.as_u16(),
                latency_ms = (latency_ms * 1000.0).round() / 1000.0,
                size = self.bytes,
                aborted,
                "request"
            );
        });
    }
}

impl Drop for RequestLine {
    fn drop(&mut self) {
        self.emit(true);
    }
}

pin_project_lite::pin_project! {
    /// The response body, counting bytes and logging the line at its end.
    struct LoggedBody {
        #[pin]
        inner: Body,
        line: RequestLine,
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.line.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => this.line.emit(false),
            Poll::Ready(Some(Err(_))) => this.line.emit(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The middleware. Runs inside `request_id::assign`, so the id is known.
pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map_or("-", RequestId::as_str);
    let span = tracing::info_span!("request", request_id);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request.extensions().get::<MatchedPath>().cloned();

    let response = next.run(request).instrument(span.clone()).await;
    let (parts, body) = response.into_parts();
    let mut line = RequestLine {
        span,
        method,
        path,
        route,
        status: parts.status,
        started,
        bytes: 0,
        logged: false,
    };
    // Most answers are whole in memory: log now and skip the wrapper.
    if let Some(size) = http_body::Body::size_hint(&body).exact() {
        line.bytes = size;
        line.emit(false);
        return Response::from_parts(parts, body);
    }
    Response::from_parts(parts, Body::new(LoggedBody { inner: body, line }))
}
