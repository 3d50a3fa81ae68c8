//! The workers: a dispatch loop that leases due tasks of each registered kind (within the
//! kind's concurrency), runs their handlers, and records each outcome.
//!
//! Handlers are plain async functions behind a trait; the storage layer does not know what a
//! task does (the `http` kind lives with the queue's HTTP face). On shutdown the loop stops
//! leasing, waits for running attempts up to the grace, and hands back the rest uncounted.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::storage::db::now_ms;
use crate::storage::queue::{Claimed, Outcome, Queue};

/// What a handler's attempt produces.
pub type TaskFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Runs tasks of one kind.
pub trait TaskHandler: Send + Sync + 'static {
    /// Performs one attempt. `payload` is the task's payload; `attempt` counts from 1.
    fn run(&self, payload: Value, attempt: u32) -> TaskFuture;
}

impl<F, Fut> TaskHandler for F
where
    F: Fn(Value, u32) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    fn run(&self, payload: Value, attempt: u32) -> TaskFuture {
        Box::pin(self(payload, attempt))
    }
}

struct Kind {
    handler: Arc<dyn TaskHandler>,
    permits: Arc<Semaphore>,
}

/// The most tasks leased in one claim.
const CLAIM_BATCH: usize = 256;
/// How often expired leases are looked for, and the longest idle sleep.
const TICK: Duration = Duration::from_millis(1000);

/// The set of task kinds and the loop that runs them.
pub struct Workers {
    queue: Queue,
    kinds: HashMap<String, Kind>,
    lease_counter: AtomicI64,
}

impl Workers {
    pub fn new(queue: Queue) -> Workers {
        Workers {
            queue,
            kinds: HashMap::new(),
            // Leases from different process lifetimes must differ: start from the clock.
            lease_counter: AtomicI64::new(now_ms().saturating_mul(1000)),
        }
    }

    /// Registers the handler of `kind`, running at most `concurrency` attempts at once.
    pub fn register(&mut self, kind: &str, concurrency: usize, handler: impl TaskHandler) {
        self.kinds.insert(
            kind.to_owned(),
            Kind {
                handler: Arc::new(handler),
                permits: Arc::new(Semaphore::new(concurrency.max(1))),
            },
        );
    }

    /// Whether tasks of `kind` can run here.
    pub fn knows(&self, kind: &str) -> bool {
        self.kinds.contains_key(kind)
    }

    /// The registered kinds.
    pub fn kind_names(&self) -> Vec<String> {
        self.kinds.keys().cloned().collect()
    }

    /// Runs until `shutdown`, then drains within `grace`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, grace: Duration) {
        match self.queue.recover_interrupted().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(tasks = n, "re-queued tasks interrupted by the last stop"),
            Err(e) => tracing::error!(error = %e, "cannot recover interrupted tasks"),
        }
        let mut running: JoinSet<()> = JoinSet::new();
        let mut in_flight: HashMap<tokio::task::Id, (i64, i64)> = HashMap::new();
        let mut last_reap = now_ms();
        loop {
            while let Some(done) = running.try_join_next_with_id() {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                in_flight.remove(&id);
            }
            if shutdown.is_cancelled() {
                break;
            }
            let mut saturated_batch = false;
            for (name, kind) in &self.kinds {
                let free = kind.permits.available_permits().min(CLAIM_BATCH);
                if free == 0 {
                    continue;
                }
                let lease = self.lease_counter.fetch_add(1, Ordering::Relaxed);
                let claimed = match self.queue.claim(name, free, lease).await {
                    Ok(claimed) => claimed,
                    Err(e) => {
                        tracing::error!(kind = %name, error = %e, "cannot lease tasks");
                        continue;
                    }
                };
                saturated_batch |= claimed.len() == free;
                for task in claimed {
                    let Ok(permit) = kind.permits.clone().try_acquire_owned() else {
                        break;
                    };
                    let (id, lease) = (task.id, task.lease);
                    let handle = running.spawn(attempt(
                        self.queue.clone(),
                        kind.handler.clone(),
                        task,
                        permit,
                    ));
                    in_flight.insert(handle.id(), (id, lease));
                }
            }
            if now_ms() - last_reap >= TICK.as_millis() as i64 {
                last_reap = now_ms();
                if let Err(e) = self.queue.reap_expired_leases().await {
                    tracing::error!(error = %e, "cannot reap expired leases");
                }
            }
            if saturated_batch {
                continue;
            }
            // Sleep until the next task a free worker could take is due, a wake-up (an
            // enqueue, a finished attempt) or the tick that looks for expired leases.
            let free: Vec<String> = self
                .kinds
                .iter()
                .filter(|(_, k)| k.permits.available_permits() > 0)
                .map(|(name, _)| name.clone())
                .collect();
            let wait = match self.queue.next_due(&free) {
                Ok(Some(due)) => Duration::from_millis(
                    u64::try_from(due - now_ms())
                        .unwrap_or(0)
                        .min(TICK.as_millis() as u64),
                ),
                Ok(None) => TICK,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the queue");
                    TICK
                }
            };
            tokio::select! {
                _ = self.queue.signal.woken() => {}
                _ = tokio::time::sleep(wait.max(Duration::from_millis(1))) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        self.drain(running, in_flight, grace).await;
    }

    async fn drain(
        &self,
        mut running: JoinSet<()>,
        mut in_flight: HashMap<tokio::task::Id, (i64, i64)>,
        grace: Duration,
    ) {
        let waited = tokio::time::timeout(grace, async {
            while let Some(done) = running.join_next_with_id().await {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                in_flight.remove(&id);
            }
        })
        .await;
        if waited.is_err() {
            running.abort_all();
            let leftover: Vec<(i64, i64)> = in_flight.into_values().collect();
            tracing::warn!(
                tasks = leftover.len(),
                "grace over: handing running tasks back for the next start"
            );
            if let Err(e) = self.queue.release(leftover).await {
                tracing::error!(error = %e, "cannot hand back running tasks");
            }
        }
    }
}

/// One attempt: run the handler in its own task (so a panic is an outcome, not a crash),
/// bounded by the task's timeout, then record the outcome.
async fn attempt(
    queue: Queue,
    handler: Arc<dyn TaskHandler>,
    task: Claimed,
    permit: OwnedSemaphorePermit,
) {
    let run = tokio::spawn(handler.run(task.payload, task.attempt));
    let abort = run.abort_handle();
    let outcome = match tokio::time::timeout(Duration::from_millis(task.timeout_ms), run).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) if e.is_panic() => Outcome::Retry("the handler panicked".into()),
        Ok(Err(_)) => Outcome::Retry("the attempt was cancelled".into()),
        Err(_) => {
            abort.abort();
            Outcome::Retry(format!(
                "the attempt timed out after {} ms",
                task.timeout_ms
            ))
        }
    };
    match queue.complete(task.id, task.lease, outcome).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            task = task.id,
            "lease lost before completion; outcome dropped"
        ),
        Err(e) => tracing::error!(task = task.id, error = %e, "cannot record the task's outcome"),
    }
    drop(permit);
    queue.signal.wake();
}
