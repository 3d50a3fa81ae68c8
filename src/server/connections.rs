//! Accepting and serving connections with the limits an exposed server needs.
//!
//! - **Header timeout**: a client has `TOOLSHED_HEADER_TIMEOUT_S` to send a request's
//!   headers, counted from when the connection opens or its previous answer ends — so the
//!   same limit closes a half-sent request (slowloris) and an idle keep-alive connection.
//! - **Connection cap**: at most `TOOLSHED_MAX_CONNECTIONS` connections are served at once.
//!   When a new one finds the cap reached, the oldest connection that has had nothing in
//!   flight for a second (an idle keep-alive one, or one still sending its headers) is
//!   closed to make room, as nginx drains its keep-alive connections when it runs short. (A
//!   connection idle for less is likely to be reused at once: closing it would race its next
//!   request.) Meanwhile a small reserve of connections gets one answer each: a health probe
//!   at once, anything else as soon as a slot frees (503 JSON if none does within a few
//!   seconds). Past the reserve too, new connections wait in the kernel's backlog. So idle or
//!   slow clients can neither exhaust the process's file descriptors nor take `/api/health`
//!   offline.
//!
//! Both are kept by one reaper task that looks at every connection four times a second,
//! rather than by a timer per request (hyper's `header_read_timeout` armed and cancelled a
//! timer for every request, which cost about a tenth of the throughput on `/api/health`).
//! A connection is "busy" from the moment its request's headers are in until its answer is
//! out (for a streamed or large body, until the body ends), so a reaped or evicted
//! connection never loses an answer. axum's `serve` has no such settings, so connections are
//! served with hyper directly (as axum's own `serve-with-hyper` example does).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};

use crate::app::App;
use crate::platform::error::AppError;

/// One-answer connections past the cap.
const RESERVE: usize = 32;
/// How long a reserve connection may take to send its one request's headers.
const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reserve connection's request (other than a probe) waits for a slot.
const RESERVE_WAIT: Duration = Duration::from_secs(5);
/// The paths a reserve connection answers at once.
const PROBES: [&str; 2] = ["/api/health", "/api/health/ready"];
/// A connection must have been idle this long to be closed to make room.
const EVICT_AFTER_IDLE_MS: u64 = 1000;
/// How often the reaper looks at the connections (and how often the coarse clock ticks).
const REAP_EVERY: Duration = Duration::from_millis(250);
/// An answer whose body is known and at most this large is out as soon as it is handed to
/// hyper (it fits the socket's buffers); a larger or streamed one keeps its connection busy
/// until its body ends.
const SMALL_BODY: u64 = 64 * 1024;

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Milliseconds since the server started, updated by the reaper: a clock read per request
/// would cost more than everything else this module does per request.
#[derive(Clone)]
struct CoarseClock {
    now_ms: Arc<AtomicU64>,
    epoch: Instant,
}

impl CoarseClock {
    fn new() -> CoarseClock {
        CoarseClock {
            now_ms: Arc::default(),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    fn tick(&self) -> u64 {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.now_ms.store(now, Ordering::Relaxed);
        now
    }
}

/// A regular connection, as the reaper and the accept loop see it.
struct Tracked {
    /// Answers in progress: from the request's headers in to the answer out.
    busy: AtomicUsize,
    /// When the connection opened or its last answer went out (coarse ms).
    idle_since: AtomicU64,
    /// Stops the connection's task, closing its socket.
    abort: OnceLock<AbortHandle>,
    clock: CoarseClock,
}

impl Tracked {
    /// How long it has had nothing in flight, if it has nothing in flight.
    fn idle_for(&self, now: u64) -> Option<u64> {
        (self.busy.load(Ordering::Acquire) == 0)
            .then(|| now.saturating_sub(self.idle_since.load(Ordering::Acquire)))
    }

    fn close(&self) {
        if let Some(abort) = self.abort.get() {
            abort.abort();
        }
    }

    fn begin(&self) {
        self.busy.fetch_add(1, Ordering::AcqRel);
    }

    fn end(&self) {
        self.idle_since.store(self.clock.now(), Ordering::Release);
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The regular connections, oldest first.
#[derive(Default)]
struct Registry(Mutex<Vec<Arc<Tracked>>>);

impl Registry {
    fn add(&self, tracked: Arc<Tracked>) {
        if let Ok(mut all) = self.0.lock() {
            all.push(tracked);
        }
    }

    /// Drops the ones whose task has ended, closes (and drops) those `doomed` picks, and
    /// closes at most `evict` more of the oldest idle for a second or longer.
    fn sweep(&self, now: u64, doomed: impl Fn(&Tracked) -> bool, mut evict: usize) {
        let Ok(mut all) = self.0.lock() else {
            return;
        };
        all.retain(|tracked| {
            if tracked.abort.get().is_some_and(AbortHandle::is_finished) {
                return false;
            }
            let evicted = evict > 0
                && tracked
                    .idle_for(now)
                    .is_some_and(|idle| idle >= EVICT_AFTER_IDLE_MS);
            if evicted || doomed(tracked) {
                evict -= usize::from(evicted);
                tracked.close();
                return false;
            }
            true
        });
    }
}

/// Everything a connection task needs.
#[derive(Clone)]
struct Shared {
    app: App,
    regular: Arc<Semaphore>,
    registry: Arc<Registry>,
    clock: CoarseClock,
    builder: Arc<http1::Builder>,
    reserve_builder: Arc<http1::Builder>,
}

/// Serves `listener` until `shutdown`, then lets every connection finish the answer in
/// progress and close; resolves once all have.
pub async fn serve(listener: TcpListener, app: App, limits: Limits, shutdown: CancellationToken) {
    let mut reserve_builder = http1::Builder::new();
    reserve_builder
        .timer(TokioTimer::new())
        .header_read_timeout(RESERVE_HEADER_TIMEOUT.min(limits.header_timeout))
        .keep_alive(false);
    let clock = CoarseClock::new();
    clock.tick();
    let shared = Shared {
        app,
        regular: Arc::new(Semaphore::new(limits.max_connections)),
        registry: Arc::default(),
        clock: clock.clone(),
        builder: Arc::new(http1::Builder::new()),
        reserve_builder: Arc::new(reserve_builder),
    };
    let draining = Arc::new(AtomicBool::new(false));
    let reaper = tokio::spawn(reap(
        shared.registry.clone(),
        clock,
        limits.header_timeout,
        draining.clone(),
    ));
    let reserve = Arc::new(Semaphore::new(RESERVE));
    let mut connections = JoinSet::new();
    loop {
        let slot = tokio::select! {
            slot = room(&shared, &reserve) => slot,
            () = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted: wait
                    // a moment rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Finished connections leave the set as new ones come.
        while connections.try_join_next().is_some() {}
        match slot {
            Slot::Regular(permit) => {
                let tracked = Arc::new(Tracked {
                    busy: AtomicUsize::new(0),
                    idle_since: AtomicU64::new(shared.clock.now()),
                    abort: OnceLock::new(),
                    clock: shared.clock.clone(),
                });
                let abort =
                    connections.spawn(regular(shared.clone(), stream, tracked.clone(), permit));
                let _ = tracked.abort.set(abort);
                shared.registry.add(tracked);
            }
            Slot::Reserve(permit) => {
                connections.spawn(reserved(shared.clone(), stream, permit));
            }
        }
    }
    drop(listener);
    // From now on the reaper closes every connection as soon as it has nothing in flight.
    draining.store(true, Ordering::Release);
    while connections.join_next().await.is_some() {}
    reaper.abort();
}

/// Closes connections idle past the header timeout (or, while draining, idle at all), and
/// keeps the coarse clock.
async fn reap(
    registry: Arc<Registry>,
    clock: CoarseClock,
    header_timeout: Duration,
    draining: Arc<AtomicBool>,
) {
    let timeout_ms = u64::try_from(header_timeout.as_millis()).unwrap_or(u64::MAX);
    let mut every = tokio::time::interval(REAP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let now = clock.tick();
        let drain = draining.load(Ordering::Acquire);
        registry.sweep(
            now,
            |tracked| {
                tracked
                    .idle_for(now)
                    .is_some_and(|idle| drain || idle > timeout_ms)
            },
            0,
        );
    }
}

/// Which kind of slot a new connection gets.
enum Slot {
    Regular(OwnedSemaphorePermit),
    Reserve(OwnedSemaphorePermit),
}

/// Closes one connection idle for a second or longer, if there is one.
fn evict_one(shared: &Shared) {
    shared.registry.sweep(shared.clock.now(), |_| false, 1);
}

/// A free slot: a regular one if there is one, else a reserve one, else the first to free;
/// while the cap is reached, idle connections are closed to make room.
async fn room(shared: &Shared, reserve: &Arc<Semaphore>) -> Slot {
    if let Ok(permit) = shared.regular.clone().try_acquire_owned() {
        return Slot::Regular(permit);
    }
    evict_one(shared);
    if let Ok(permit) = reserve.clone().try_acquire_owned() {
        return Slot::Reserve(permit);
    }
    loop {
        // Neither semaphore is ever closed.
        tokio::select! {
            Ok(permit) = shared.regular.clone().acquire_owned() => return Slot::Regular(permit),
            Ok(permit) = reserve.clone().acquire_owned() => return Slot::Reserve(permit),
            () = tokio::time::sleep(REAP_EVERY) => evict_one(shared),
        }
    }
}

/// A regular slot within `wait`, closing idle connections to make room meanwhile.
async fn regular_slot(shared: &Shared, wait: Duration) -> Option<OwnedSemaphorePermit> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        evict_one(shared);
        tokio::select! {
            Ok(permit) = shared.regular.clone().acquire_owned() => return Some(permit),
            () = tokio::time::sleep(REAP_EVERY) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
    }
}

/// A regular connection: served until it closes, fails, or is closed by the reaper or to
/// make room; its slot frees when it ends.
async fn regular(
    shared: Shared,
    stream: TcpStream,
    tracked: Arc<Tracked>,
    permit: OwnedSemaphorePermit,
) {
    let service = TowerToHyperService::new(Counted {
        app: shared.app.clone(),
        tracked,
    });
    let connection = shared
        .builder
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = connection.await {
        // Clients that went away, malformed requests (answered by hyper).
        tracing::debug!(error = %e, "connection ended with an error");
    }
    drop(permit);
}

/// A reserve connection: one request, then closed.
async fn reserved(shared: Shared, stream: TcpStream, permit: OwnedSemaphorePermit) {
    let service = TowerToHyperService::new(Reserved {
        shared: shared.clone(),
    });
    let connection = shared
        .reserve_builder
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "reserve connection ended with an error");
    }
    drop(permit);
}

/// The app, counting the connection's answers in progress.
#[derive(Clone)]
struct Counted {
    app: App,
    tracked: Arc<Tracked>,
}

/// One answer in progress until dropped.
struct InProgress(Arc<Tracked>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.end();
    }
}

pin_project_lite::pin_project! {
    /// The app's answer: a small known body is out at once; a larger or streamed one keeps
    /// the count until it ends.
    struct CountedFuture<F> {
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
        let Some(in_progress) = this.in_progress.take() else {
            return Poll::Ready(Ok(response));
        };
        let size = http_body::Body::size_hint(response.body()).exact();
        if size.is_some_and(|n| n <= SMALL_BODY) {
            return Poll::Ready(Ok(response));
        }
        Poll::Ready(Ok(response.map(|body| {
            Body::new(CountedBody {
                inner: body,
                _in_progress: in_progress,
            })
        })))
    }
}

pin_project_lite::pin_project! {
    /// A body that keeps its connection busy until it ends (or is dropped).
    struct CountedBody {
        #[pin]
        inner: Body,
        _in_progress: InProgress,
    }
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
/// frees (within `RESERVE_WAIT`), else a clear 503.
#[derive(Clone)]
struct Reserved {
    shared: Shared,
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
                Some(_slot) => shared.app.oneshot(request).await,
                None => Ok(too_many_connections()),
            }
        })
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
