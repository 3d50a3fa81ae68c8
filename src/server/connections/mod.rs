//! Accepting and serving connections with the limits an exposed server needs.
//!
//! - **Header timeout**: a client has `TOOLSHED_HEADER_TIMEOUT_S` to send a request's
//!   headers, counted from when the connection opens or its previous answer ends — so the
//!   same limit closes a half-sent request (slowloris) and an idle keep-alive connection.
//! - **Connection cap**: at most `TOOLSHED_MAX_CONNECTIONS` connections are served at once.
//!   When a new one comes in and finds the cap reached, the oldest connection that has had
//!   nothing in flight for a second (an idle keep-alive one, or one still sending its
//!   headers) is closed to make room, as nginx drains its keep-alive connections when it runs short. (A
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
//! connection never loses an answer. A busy connection whose client has not taken a frame
//! of the answer for the header timeout (hyper's buffers stay full) is closed too: a client
//! that stops reading cannot hold a slot for ever. axum's `serve` has no such settings, so connections are
//! served with hyper directly (as axum's own `serve-with-hyper` example does).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::app::App;

mod answers;
mod tracking;

use answers::{Counted, Reserved};
use tracking::{CoarseClock, REAP_EVERY, Registry, Tracked};

/// One-answer connections past the cap.
const RESERVE: usize = 32;
/// How long a reserve connection may take to send its one request's headers.
const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
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
    let shared = Shared {
        app,
        regular: Arc::new(Semaphore::new(limits.max_connections)),
        registry: Arc::default(),
        clock: clock.clone(),
        builder: Arc::new(http1::Builder::new()),
        reserve_builder: Arc::new(reserve_builder),
    };
    let draining = Arc::new(AtomicBool::new(false));
    // Stopped with this function, however it ends.
    let _reaper = AbortOnDropHandle::new(tokio::spawn(tracking::reap(
        shared.registry.clone(),
        clock,
        limits.header_timeout,
        draining.clone(),
    )));
    let reserve = Arc::new(Semaphore::new(RESERVE));
    let mut connections = JoinSet::new();
    loop {
        let slot = tokio::select! {
            slot = room(&shared, &reserve) => slot,
            () = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // A streamed body (a file, SSE) is written in pieces: without this, a small
                    // last piece waits for the client's delayed ACK (~40 ms).
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                    }
                    stream
                }
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
        match upgraded(&shared, slot) {
            Slot::Regular(permit) => {
                let tracked = Arc::new(Tracked::new(shared.clock.clone()));
                let abort =
                    connections.spawn(regular(shared.clone(), stream, tracked.clone(), permit));
                tracked.set_abort(abort);
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
}

/// Which kind of slot a new connection gets.
enum Slot {
    Regular(OwnedSemaphorePermit),
    Reserve(OwnedSemaphorePermit),
}

/// A free slot: a regular one if there is one, else a reserve one, else the first to free
/// (closing idle connections meanwhile: every reserve slot holds a connection waiting).
async fn room(shared: &Shared, reserve: &Arc<Semaphore>) -> Slot {
    if let Ok(permit) = shared.regular.clone().try_acquire_owned() {
        return Slot::Regular(permit);
    }
    if let Ok(permit) = reserve.clone().try_acquire_owned() {
        return Slot::Reserve(permit);
    }
    loop {
        // Neither semaphore is ever closed.
        tokio::select! {
            Ok(permit) = shared.regular.clone().acquire_owned() => return Slot::Regular(permit),
            Ok(permit) = reserve.clone().acquire_owned() => return Slot::Reserve(permit),
            () = tokio::time::sleep(REAP_EVERY) => shared.registry.evict_one(shared.clock.now()),
        }
    }
}

/// A connection that came in on a reserve slot takes a regular one that freed meanwhile;
/// if none has, an idle connection is closed to make room for the next.
fn upgraded(shared: &Shared, slot: Slot) -> Slot {
    let Slot::Reserve(reserve) = slot else {
        return slot;
    };
    match shared.regular.clone().try_acquire_owned() {
        Ok(permit) => Slot::Regular(permit),
        Err(_) => {
            shared.registry.evict_one(shared.clock.now());
            Slot::Reserve(reserve)
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
