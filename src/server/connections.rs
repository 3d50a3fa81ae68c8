//! Accepting and serving connections with the limits an exposed server needs.
//!
//! - **Header timeout**: a client has `TOOLSHED_HEADER_TIMEOUT_S` to send a request's
//!   headers, counted from when the connection opens or its previous answer ends — so the
//!   same limit closes a half-sent request (slowloris) and an idle keep-alive connection.
//! - **Connection cap**: at most `TOOLSHED_MAX_CONNECTIONS` connections are served at once.
//!   When a new one finds the cap reached, the oldest connection that has had no request in
//!   flight for a second (an idle keep-alive one, or one still sending its headers) is asked
//!   to close, as nginx drains its keep-alive connections when it runs short. (A connection
//!   idle for less is likely to be reused at once: closing it would race its next request.) Meanwhile a small reserve of
//!   connections gets one answer each: a health probe at once, anything else as soon as a
//!   slot frees (503 JSON if none does within a few seconds). Past the reserve too, new
//!   connections wait in the kernel's backlog. So idle or slow clients can neither exhaust
//!   the process's file descriptors nor take `/api/health` offline.
//!
//! axum's `serve` has no such settings, so connections are served with hyper directly (as
//! axum's own `serve-with-hyper` example does); the app is the same tower service.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
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
const EVICT_AFTER_IDLE: Duration = Duration::from_secs(1);
/// How often a new connection waiting for room looks again for one to close.
const EVICT_EVERY: Duration = Duration::from_millis(250);

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// A regular connection, as the accept loop sees it.
struct Tracked {
    /// Requests in flight (their handler has not answered yet).
    busy: AtomicUsize,
    /// When the last request in flight answered (or the connection opened), in ms since
    /// the registry's epoch.
    idle_since_ms: AtomicU64,
    /// Asks the connection to finish what it is doing and close.
    close: Notify,
    epoch: Instant,
}

impl Tracked {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn idle_for(&self) -> Option<Duration> {
        (self.busy.load(Ordering::Acquire) == 0).then(|| {
            let since = self.idle_since_ms.load(Ordering::Acquire);
            Duration::from_millis(self.now_ms().saturating_sub(since))
        })
    }
}

/// The regular connections, oldest first.
struct Registry {
    all: Mutex<Vec<Arc<Tracked>>>,
    epoch: Instant,
}

impl Registry {
    fn new() -> Registry {
        Registry {
            all: Mutex::default(),
            epoch: Instant::now(),
        }
    }

    fn track(&self) -> Arc<Tracked> {
        let tracked = Arc::new(Tracked {
            busy: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            close: Notify::new(),
            epoch: self.epoch,
        });
        tracked
            .idle_since_ms
            .store(tracked.now_ms(), Ordering::Release);
        self.add(&tracked);
        tracked
    }

    fn add(&self, tracked: &Arc<Tracked>) {
        if let Ok(mut all) = self.all.lock() {
            all.push(tracked.clone());
        }
    }

    fn remove(&self, tracked: &Arc<Tracked>) {
        if let Ok(mut all) = self.all.lock() {
            all.retain(|t| !Arc::ptr_eq(t, tracked));
        }
    }

    /// Asks the oldest connection idle for [`EVICT_AFTER_IDLE`] to close; answers whether
    /// there was one.
    fn evict_idle(&self) -> bool {
        let Ok(mut all) = self.all.lock() else {
            return false;
        };
        let idle_long = |t: &Arc<Tracked>| t.idle_for().is_some_and(|d| d >= EVICT_AFTER_IDLE);
        let Some(at) = all.iter().position(idle_long) else {
            return false;
        };
        // Out of the list at once, so the next eviction picks another.
        let tracked = all.remove(at);
        tracked.close.notify_one();
        true
    }
}

/// Everything a connection task needs.
#[derive(Clone)]
struct Shared {
    app: App,
    regular: Arc<Semaphore>,
    registry: Arc<Registry>,
    builder: Arc<http1::Builder>,
    reserve_builder: Arc<http1::Builder>,
    shutdown: CancellationToken,
}

/// Serves `listener` until `shutdown`, then lets every connection finish the request in
/// flight and close; resolves once all have.
pub async fn serve(listener: TcpListener, app: App, limits: Limits, shutdown: CancellationToken) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut reserve_builder = http1::Builder::new();
    reserve_builder
        .timer(TokioTimer::new())
        .header_read_timeout(RESERVE_HEADER_TIMEOUT.min(limits.header_timeout))
        .keep_alive(false);
    let shared = Shared {
        app,
        regular: Arc::new(Semaphore::new(limits.max_connections)),
        registry: Arc::new(Registry::new()),
        builder: Arc::new(builder),
        reserve_builder: Arc::new(reserve_builder),
        shutdown: shutdown.clone(),
    };
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
            Slot::Regular(permit) => connections.spawn(regular(shared.clone(), stream, permit)),
            Slot::Reserve(permit) => connections.spawn(reserved(shared.clone(), stream, permit)),
        };
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Which kind of slot a new connection gets.
enum Slot {
    Regular(OwnedSemaphorePermit),
    Reserve(OwnedSemaphorePermit),
}

/// A free slot: a regular one if there is one, else a reserve one, else the first to free;
/// while the cap is reached, idle connections are closed to make room.
async fn room(shared: &Shared, reserve: &Arc<Semaphore>) -> Slot {
    if let Ok(permit) = shared.regular.clone().try_acquire_owned() {
        return Slot::Regular(permit);
    }
    shared.registry.evict_idle();
    if let Ok(permit) = reserve.clone().try_acquire_owned() {
        return Slot::Reserve(permit);
    }
    loop {
        // Neither semaphore is ever closed.
        tokio::select! {
            Ok(permit) = shared.regular.clone().acquire_owned() => return Slot::Regular(permit),
            Ok(permit) = reserve.clone().acquire_owned() => return Slot::Reserve(permit),
            () = tokio::time::sleep(EVICT_EVERY) => {
                shared.registry.evict_idle();
            }
        }
    }
}

/// A regular slot within `wait`, closing idle connections to make room meanwhile.
async fn regular_slot(shared: &Shared, wait: Duration) -> Option<OwnedSemaphorePermit> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        shared.registry.evict_idle();
        tokio::select! {
            Ok(permit) = shared.regular.clone().acquire_owned() => return Some(permit),
            () = tokio::time::sleep(EVICT_EVERY) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
    }
}

/// A regular connection: served until it closes, is asked to close (evicted, or shutdown),
/// or fails; its slot frees when it ends.
async fn regular(shared: Shared, stream: TcpStream, permit: OwnedSemaphorePermit) {
    let tracked = shared.registry.track();
    let service = TowerToHyperService::new(Counted {
        app: shared.app.clone(),
        tracked: tracked.clone(),
    });
    let connection = shared
        .builder
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut closing = false;
    let ended = loop {
        tokio::select! {
            ended = connection.as_mut() => break ended,
            () = tracked.close.notified(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = shared.shutdown.cancelled(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    };
    if let Err(e) = ended {
        // Header timeouts, clients that went away, malformed requests (answered by hyper).
        tracing::debug!(error = %e, "connection ended with an error");
    }
    shared.registry.remove(&tracked);
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

/// The app, counting the connection's requests in flight.
#[derive(Clone)]
struct Counted {
    app: App,
    tracked: Arc<Tracked>,
}

/// Counts one request in flight until dropped.
struct InFlight(Arc<Tracked>);

impl InFlight {
    fn new(tracked: &Arc<Tracked>) -> InFlight {
        tracked.busy.fetch_add(1, Ordering::AcqRel);
        InFlight(tracked.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let tracked = &self.0;
        tracked
            .idle_since_ms
            .store(tracked.now_ms(), Ordering::Release);
        tracked.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// The app's answer, holding the in-flight count until it is ready.
    struct CountedFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
    }
}

impl<F> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.inner.poll(cx));
        this.in_flight.take();
        Poll::Ready(answer)
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
        CountedFuture {
            in_flight: Some(InFlight::new(&self.tracked)),
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
