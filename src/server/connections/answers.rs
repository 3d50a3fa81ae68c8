//! The services connections run: the app counting a regular connection's answers in
//! progress, and a reserve connection's one answer; and the body that keeps a guard (the
//! count, or a slot) until an answer's last frame is out.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;
use tower::{Service, ServiceExt};

use super::Shared;
use super::tracking::{REAP_EVERY, Tracked};
use crate::app::App;
use crate::platform::error::AppError;

/// An answer whose body is known and at most this large is out as soon as it is handed to
/// hyper (it fits the socket's buffers); a larger or streamed one keeps its guard until its
/// body ends.
const SMALL_BODY: u64 = 64 * 1024;
/// The largest piece of a body handed to hyper at once. hyper queues a whole frame however
/// large (a 20 MB `Bytes` answer is one frame): handed whole, its body would end long before
/// the client had it, and the connection would look idle. In pieces, hyper comes back for
/// the next only when its buffers have room, so the guard lasts until the last piece.
const PIECE: usize = 64 * 1024;
/// The paths a reserve connection answers at once.
const PROBES: [&str; 2] = ["/api/health", "/api/health/ready"];
/// How long a reserve connection's request (other than a probe) waits for a slot.
const RESERVE_WAIT: Duration = Duration::from_secs(5);

/// What an answer holds until its body ends, told about each frame.
pub trait Guard: Send + 'static {
    fn frame_asked(&self) {}
    fn frame_handed(&self) {}
}

impl Guard for OwnedSemaphorePermit {}

/// `response` with `guard` kept until its body ends, or dropped now if the body is small.
fn guarded<G: Guard>(response: Response, guard: G) -> Response {
    let size = http_body::Body::size_hint(response.body()).exact();
    if size.is_some_and(|n| n <= SMALL_BODY) {
        return response;
    }
    response.map(|body| {
        Body::new(GuardedBody {
            inner: body,
            rest: Bytes::new(),
            guard,
        })
    })
}

pin_project_lite::pin_project! {
    /// A body holding its guard until it ends (or is dropped), handed on in pieces.
    struct GuardedBody<G> {
        #[pin]
        inner: Body,
        // What is left of the frame being handed on.
        rest: Bytes,
        guard: G,
    }
}

impl<G: Guard> http_body::Body for GuardedBody<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        this.guard.frame_asked();
        if this.rest.is_empty() {
            match std::task::ready!(this.inner.poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => *this.rest = data,
                    Err(trailers) => {
                        this.guard.frame_handed();
                        return Poll::Ready(Some(Ok(trailers)));
                    }
                },
                other => return Poll::Ready(other),
            }
        }
        let piece = this.rest.split_to(this.rest.len().min(PIECE));
        this.guard.frame_handed();
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(rest));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(rest));
        }
        hint
    }
}

/// The app, counting the connection's answers in progress.
#[derive(Clone)]
pub struct Counted {
    pub app: App,
    pub tracked: Arc<Tracked>,
}

/// One answer in progress until dropped.
struct InProgress(Arc<Tracked>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.end();
    }
}

impl Guard for InProgress {
    fn frame_asked(&self) {
        self.0.frame_asked();
    }

    fn frame_handed(&self) {
        self.0.frame_handed();
    }
}

pin_project_lite::pin_project! {
    /// The app's answer, keeping the count until it is out.
    pub struct CountedFuture<F> {
        #[pin]
        inner: F,
        in_progress: Option<InProgress>,
    }
}

impl<F> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = std::task::ready!(this.inner.poll(cx));
        Poll::Ready(Ok(match this.in_progress.take() {
            Some(in_progress) => guarded(response, in_progress),
            None => response,
        }))
    }
}

impl Service<Request<Incoming>> for Counted {
    type Response = Response;
    type Error = Infallible;
    type Future = CountedFuture<<App as Service<Request>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.app.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        self.tracked.begin();
        CountedFuture {
            in_progress: Some(InProgress(self.tracked.clone())),
            inner: self.app.call(request.map(Body::new)),
        }
    }
}

/// The service of a reserve connection: a probe at once; anything else once a regular slot
/// frees (within `RESERVE_WAIT`), held until its answer is out, else a clear 503.
#[derive(Clone)]
pub struct Reserved {
    pub shared: Shared,
}

impl Service<Request<Incoming>> for Reserved {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move {
            let request = request.map(Body::new);
            if PROBES.contains(&request.uri().path()) {
                return shared.app.oneshot(request).await;
            }
            match regular_slot(&shared, RESERVE_WAIT).await {
                Some(slot) => {
                    let Ok(response) = shared.app.oneshot(request).await;
                    Ok(guarded(response, slot))
                }
                None => Ok(too_many_connections()),
            }
        })
    }
}

/// A regular slot within `wait`, closing idle connections to make room meanwhile.
async fn regular_slot(shared: &Shared, wait: Duration) -> Option<OwnedSemaphorePermit> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        shared.registry.evict_one(shared.clock.now());
        tokio::select! {
            Ok(permit) = shared.regular.clone().acquire_owned() => return Some(permit),
            () = tokio::time::sleep(REAP_EVERY) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
    }
}

fn too_many_connections() -> Response {
    let mut response = AppError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        "the server is serving as many connections as it takes; try again shortly",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
