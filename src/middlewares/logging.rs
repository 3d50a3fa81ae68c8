//! One log line per request: request id, method, path, matched route template, status,
//! latency in ms and response size in bytes; and, at the same moment, the request's HTTP
//! metrics (`platform::metrics::HttpMetrics`). This middleware also assigns the request id
//! (see `request_id`) and echoes it in the response: one layer instead of two on every
//! request.
//!
//! The line is written when the response body has been sent, so streamed answers report
//! their true size and duration; a body dropped early (the client went away) is logged with
//! `aborted = true`. Handlers' own log lines carry the request id through the task-local
//! `log_format::REQUEST_ID`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::middlewares::request_id::{self, RequestId};
use crate::middlewares::route_templates::RouteTemplates;
use crate::platform::auth::Fingerprint;
use crate::platform::log_format::{REQUEST_ID, RequestLineSink};
use crate::platform::metrics::HttpMetrics;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tower::{Layer, Service};

/// What the log line says, gathered before the body is sent.
pub struct RequestLine {
    request_id: RequestId,
    method: Method,
    uri: Uri,
    route: Option<Arc<str>>,
    status: StatusCode,
    started: Instant,
    bytes: u64,
    logged: bool,
    sink: RequestLineSink,
    /// The caller's token, when it showed one.
    token: Option<Fingerprint>,
    metrics: Arc<HttpMetrics>,
}

impl RequestLine {
    fn emit(&mut self, aborted: bool) {
        if self.logged {
            return;
        }
        self.logged = true;
        let elapsed = self.started.elapsed();
        self.metrics
            .finished(&self.method, self.route.as_ref(), self.status, elapsed);
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let route = self.route.as_deref().unwrap_or("-");
        let mut token_text = [0u8; 12];
        let token = self.token.map(|t| t.text(&mut token_text));
        // Written after the request's future is done, so the id is a field of its own.
        let fast = self
            .sink
            .write_info_line(module_path!(), "request", |line| {
                // Only the path can hold anything a caller likes; the rest is validated or ours.
                line.raw("request_id", self.request_id.as_str())
                    .raw("method", self.method.as_str())
                    .str("path", self.uri.path())
                    .raw("route", route)
                    .u64("status", u64::from(self.status.as_u16()))
                    .millis("latency_ms", latency_us)
                    .u64("size", self.bytes)
                    .bool("aborted", aborted);
                if let Some(token) = token {
                    line.raw("token", token);
                }
            });
        if !fast {
            let latency_ms = latency_us as f64 / 1000.0;
            tracing::info!(
                request_id = self.request_id.as_str(),
                method = %self.method,
                path = self.uri.path(),
                route,
                status = self.status.as_u16(),
                latency_ms,
                size = self.bytes,
                aborted,
                token,
                "request"
            );
        }
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

/// Adds request ids and request log lines to every request; `routes` names the route
/// template of each path (the layer wraps the router, so it runs before axum matches),
/// `sink` writes the lines (or, when off, `tracing` does).
#[derive(Clone)]
pub struct RequestLogLayer {
    routes: Arc<RouteTemplates>,
    sink: RequestLineSink,
    metrics: Arc<HttpMetrics>,
}

impl RequestLogLayer {
    pub fn new(
        routes: Arc<RouteTemplates>,
        sink: RequestLineSink,
        metrics: Arc<HttpMetrics>,
    ) -> RequestLogLayer {
        RequestLogLayer {
            routes,
            sink,
            metrics,
        }
    }
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> RequestLog<S> {
        RequestLog {
            inner,
            routes: self.routes.clone(),
            sink: self.sink.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// The service: assigns the request id, runs the request with the id in scope for its log
/// lines, echoes the id and writes the request's line. Hand-written rather than
/// `middleware::from_fn` because this runs on every request and `from_fn` boxes twice.
#[derive(Clone)]
pub struct RequestLog<S> {
    inner: S,
    routes: Arc<RouteTemplates>,
    sink: RequestLineSink,
    metrics: Arc<HttpMetrics>,
}

impl<S> Service<Request> for RequestLog<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RequestLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let request_id = request_id::resolve(request.headers());
        self.metrics.started();
        let line = RequestLine {
            method: request.method().clone(),
            uri: request.uri().clone(),
            route: self.routes.find(request.uri().path()),
            // Until the handler answers: if the client goes away first, the line says 499
            // (nginx's "client closed request") with aborted = true.
            status: StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            started,
            bytes: 0,
            logged: false,
            request_id,
            sink: self.sink.clone(),
            token: None,
            metrics: self.metrics.clone(),
        };
        let scoped = REQUEST_ID.scope(line.request_id.0.clone(), self.inner.call(request));
        RequestLogFuture {
            inner: scoped,
            line: Some(line),
        }
    }
}

pin_project_lite::pin_project! {
    /// The request's future, finishing with the id header and the log line.
    pub struct RequestLogFuture<F> {
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<axum::http::HeaderValue, F>,
        line: Option<RequestLine>,
    }
}

impl<F> Future for RequestLogFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = std::task::ready!(this.inner.poll(cx));
        let Some(mut line) = this.line.take() else {
            return Poll::Ready(Ok(response));
        };
        let (mut parts, body) = response.into_parts();
        parts
            .headers
            .insert(request_id::HEADER, line.request_id.0.clone());
        line.status = parts.status;
        line.token = parts.extensions.get::<Fingerprint>().copied();
        // Most answers are whole in memory: log now and skip the body wrapper.
        if let Some(size) = http_body::Body::size_hint(&body).exact() {
            line.bytes = size;
            line.emit(false);
            return Poll::Ready(Ok(Response::from_parts(parts, body)));
        }
        Poll::Ready(Ok(Response::from_parts(
            parts,
            Body::new(LoggedBody { inner: body, line }),
        )))
    }
}
