//! What the reaper knows of each regular connection, and the reaper itself.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

/// A connection must have been idle this long to be closed to make room.
const EVICT_AFTER_IDLE_MS: u64 = 1000;
/// How often the reaper looks at the connections (and how often the coarse clock ticks).
pub const REAP_EVERY: Duration = Duration::from_millis(250);
/// `handed_at` when the connection is not waiting for its client to take a frame.
const NOT_WAITING: u64 = u64::MAX;

/// Milliseconds since the server started, updated by the reaper: a clock read per request
/// would cost more than everything else this module does per request.
#[derive(Clone)]
pub struct CoarseClock {
    now_ms: Arc<AtomicU64>,
    epoch: Instant,
}

impl CoarseClock {
    pub fn new() -> CoarseClock {
        let clock = CoarseClock {
            now_ms: Arc::default(),
            epoch: Instant::now(),
        };
        clock.tick();
        clock
    }

    pub fn now(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    fn tick(&self) -> u64 {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.now_ms.store(now, Ordering::Relaxed);
        now
    }
}

/// A regular connection, as the reaper and the accept loop see it.
pub struct Tracked {
    /// Answers in progress: from the request's headers in to the answer out.
    busy: AtomicUsize,
    /// When the connection opened or its last answer went out (coarse ms).
    idle_since: AtomicU64,
    /// When a body frame was handed to hyper that hyper has not come back for since (its
    /// buffers are full: the client is not reading), or `NOT_WAITING`.
    handed_at: AtomicU64,
    /// Stops the connection's task, closing its socket.
    abort: OnceLock<AbortHandle>,
    clock: CoarseClock,
}

impl Tracked {
    pub fn new(clock: CoarseClock) -> Tracked {
        Tracked {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(clock.now()),
            handed_at: AtomicU64::new(NOT_WAITING),
            abort: OnceLock::new(),
            clock,
        }
    }

    pub fn set_abort(&self, abort: AbortHandle) {
        let _ = self.abort.set(abort);
    }

    /// How long it has had nothing in flight, if it has nothing in flight.
    fn idle_for(&self, now: u64) -> Option<u64> {
        (self.busy.load(Ordering::Acquire) == 0)
            .then(|| now.saturating_sub(self.idle_since.load(Ordering::Acquire)))
    }

    /// How long its client has left a frame of an answer untaken, if it has.
    fn stalled_for(&self, now: u64) -> Option<u64> {
        let handed = self.handed_at.load(Ordering::Relaxed);
        (handed != NOT_WAITING && self.busy.load(Ordering::Acquire) > 0)
            .then(|| now.saturating_sub(handed))
    }

    fn close(&self) {
        if let Some(abort) = self.abort.get() {
            abort.abort();
        }
    }

    pub fn begin(&self) {
        self.busy.fetch_add(1, Ordering::AcqRel);
    }

    pub fn end(&self) {
        self.handed_at.store(NOT_WAITING, Ordering::Relaxed);
        self.idle_since.store(self.clock.now(), Ordering::Release);
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }

    /// hyper asks for the next frame of an answer.
    pub fn frame_asked(&self) {
        self.handed_at.store(NOT_WAITING, Ordering::Relaxed);
    }

    /// A frame went to hyper: until it asks for the next, the client has it to take.
    pub fn frame_handed(&self) {
        self.handed_at.store(self.clock.now(), Ordering::Relaxed);
    }
}

/// The regular connections, oldest first.
#[derive(Default)]
pub struct Registry(Mutex<Vec<Arc<Tracked>>>);

impl Registry {
    pub fn add(&self, tracked: Arc<Tracked>) {
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

    /// Closes one connection idle for a second or longer, if there is one.
    pub fn evict_one(&self, now: u64) {
        self.sweep(now, |_| false, 1);
    }
}

/// Closes connections idle past the header timeout (or, while draining, idle at all) and
/// those whose client has not taken a frame of an answer within it; keeps the coarse clock.
pub async fn reap(
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
                    || tracked
                        .stalled_for(now)
                        .is_some_and(|stalled| stalled > timeout_ms)
            },
            0,
        );
    }
}
