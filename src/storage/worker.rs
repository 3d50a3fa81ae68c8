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
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::storage::db::now_ms;
use crate::storage::queue::{Claimed, Completion, Outcome, Queue};

/// What a handler's attempt produces.
pub type TaskFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// One attempt of a task, as its handler gets it.
#[derive(Debug, Clone)]
pub struct TaskRun {
    pub payload: Value,
    /// Counts from 1.
    pub attempt: u32,
    /// Names the task (a receiver can drop repeated deliveries by it).
    pub task_id: i64,
    /// Who enqueued it (a token fingerprint): the attempt acts with that caller's rights.
    pub created_by: Option<String>,
}

/// Runs tasks of one kind.
pub trait TaskHandler: Send + Sync + 'static {
    /// Refuses a payload at enqueue time that could never run (the default accepts all).
    fn validate(&self, _payload: &Value) -> Result<(), String> {
        Ok(())
    }

    /// Performs one attempt.
    fn run(&self, run: TaskRun) -> TaskFuture;
}

impl<F, Fut> TaskHandler for F
where
    F: Fn(Value, u32) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    fn run(&self, run: TaskRun) -> TaskFuture {
        Box::pin(self(run.payload, run.attempt))
    }
}

struct Kind {
    /// The instance's own kind (a backup): it runs, but no caller may enqueue it.
    own: bool,
    handler: Arc<dyn TaskHandler>,
    permits: Arc<Semaphore>,
    counts: Arc<AttemptCounts>,
}

/// How the attempts of one kind ended, since the process started (for metrics).
#[derive(Debug, Default)]
pub struct AttemptCounts {
    pub succeeded: AtomicU64,
    /// Failed, and the task waits for another attempt.
    pub retried: AtomicU64,
    /// Failed, and the task is dead.
    pub dead: AtomicU64,
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
        self.insert(kind, concurrency, handler, false);
    }

    /// Registers a kind only the instance itself enqueues (its schedules): `validate`, which
    /// judges what callers enqueue, refuses it.
    pub fn register_own(&mut self, kind: &str, concurrency: usize, handler: impl TaskHandler) {
        self.insert(kind, concurrency, handler, true);
    }

    fn insert(&mut self, kind: &str, concurrency: usize, handler: impl TaskHandler, own: bool) {
        self.kinds.insert(
            kind.to_owned(),
            Kind {
                own,
                handler: Arc::new(handler),
                permits: Arc::new(Semaphore::new(concurrency.max(1))),
                counts: Arc::default(),
            },
        );
    }

    /// How each kind's attempts ended so far, by kind name.
    pub fn attempt_counts(&self) -> Vec<(&str, &AttemptCounts)> {
        let mut counts: Vec<(&str, &AttemptCounts)> = self
            .kinds
            .iter()
            .map(|(name, kind)| (name.as_str(), kind.counts.as_ref()))
            .collect();
        counts.sort_by_key(|(name, _)| *name);
        counts
    }

    /// The kinds callers may enqueue, sorted.
    pub fn kind_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .kinds
            .iter()
            .filter(|(_, kind)| !kind.own)
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// Checks that `kind` runs here and that its handler accepts `payload`.
    pub fn validate(&self, kind: &str, payload: &Value) -> Result<(), String> {
        match self.kinds.get(kind) {
            Some(k) if k.own => Err(format!(
                "kind {kind:?} is this instance's own: its schedule and the admin routes start it"
            )),
            Some(k) => k.handler.validate(payload),
            None => Err(format!(
                "kind {kind:?} is not a task kind here; known: {}",
                self.kind_names().join(", ")
            )),
        }
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
            let mut failed = false;
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
                        failed = true;
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
                        kind.counts.clone(),
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
            let wait = match self.queue.next_due(&free).await {
                // After a storage error, wait a tick rather than retrying in a tight loop.
                _ if failed => TICK,
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

/// One attempt: the handler's future, bounded by the task's timeout, with a panic caught
/// as an outcome rather than a crash; then the outcome is recorded. Everything runs inside
/// this one task, so aborting it (at the end of the shutdown grace) stops the handler too.
async fn attempt(
    queue: Queue,
    handler: Arc<dyn TaskHandler>,
    counts: Arc<AttemptCounts>,
    task: Claimed,
    permit: OwnedSemaphorePermit,
) {
    let run = std::panic::AssertUnwindSafe(handler.run(TaskRun {
        payload: task.payload,
        attempt: task.attempt,
        task_id: task.id,
        created_by: task.created_by,
    }))
    .catch_unwind();
    let outcome = match tokio::time::timeout(Duration::from_millis(task.timeout_ms), run).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => Outcome::Retry("the handler panicked".into()),
        Err(_) => Outcome::Retry(format!(
            "the attempt timed out after {} ms",
            task.timeout_ms
        )),
    };
    match queue.complete(task.id, task.lease, outcome).await {
        Ok(Completion::Succeeded) => {
            counts.succeeded.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Completion::Retrying) => {
            counts.retried.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Completion::Dead) => {
            counts.dead.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Completion::LeaseLost) => tracing::warn!(
            task = task.id,
            "lease lost before completion; outcome dropped"
        ),
        Err(e) => tracing::error!(task = task.id, error = %e, "cannot record the task's outcome"),
    }
    drop(permit);
    queue.signal.wake();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::task::{NewTask, Status};
    use crate::storage::{Store, StoreOptions};
    use serde_json::json;
    use std::sync::atomic::AtomicUsize;
    use tempfile::TempDir as Dir;

    async fn wait_for(store: &Store, id: i64, status: Status) -> crate::storage::task::Task {
        for _ in 0..400 {
            let task = store.queue.get(id).await.expect("get").expect("task");
            if task.status == status {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {id} never became {status:?}");
    }

    #[tokio::test]
    async fn workers_retry_failures_until_success_within_their_concurrency() {
        let dir = Dir::new().expect("temp dir");
        let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
        let calls = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut workers = Workers::new(store.queue.clone());
        let (c, r, p) = (calls.clone(), running.clone(), peak.clone());
        workers.register("flaky", 2, move |payload: Value, attempt: u32| {
            let (c, r, p) = (c.clone(), r.clone(), p.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                if payload["fail_times"].as_u64().unwrap_or(0) >= u64::from(attempt) {
                    Outcome::Retry(format!("attempt {attempt} failed"))
                } else {
                    Outcome::Succeeded(json!({"attempt": attempt}))
                }
            }
        });
        let shutdown = CancellationToken::new();
        let loop_handle =
            tokio::spawn(Arc::new(workers).run(shutdown.clone(), Duration::from_secs(5)));
        let mut ids = Vec::new();
        for _ in 0..6 {
            let task = NewTask {
                backoff_schedule_ms: Some(vec![10, 10, 10]),
                ..NewTask::new("flaky", json!({"fail_times": 2}))
            };
            ids.push(store.queue.enqueue(task).await.expect("enqueue").id);
        }
        for id in ids {
            let task = wait_for(&store, id, Status::Succeeded).await;
            assert_eq!(task.attempts, 3);
            assert_eq!(task.result, Some(json!({"attempt": 3})));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 18);
        assert!(peak.load(Ordering::SeqCst) <= 2, "concurrency limit held");
        shutdown.cancel();
        loop_handle.await.expect("loop ends");
    }

    #[tokio::test]
    async fn slow_attempts_time_out_and_panics_are_failures_not_crashes() {
        let dir = Dir::new().expect("temp dir");
        let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
        let mut workers = Workers::new(store.queue.clone());
        workers.register("slow", 4, |_: Value, _: u32| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Outcome::Succeeded(json!(null))
        });
        workers.register("panicky", 4, |_: Value, _: u32| async {
            panic!("handler bug");
        });
        let shutdown = CancellationToken::new();
        let loop_handle =
            tokio::spawn(Arc::new(workers).run(shutdown.clone(), Duration::from_secs(1)));
        let slow = store
            .queue
            .enqueue(NewTask {
                timeout_ms: Some(50),
                max_attempts: Some(1),
                ..NewTask::new("slow", json!(1))
            })
            .await
            .expect("enqueue");
        let panicky = store
            .queue
            .enqueue(NewTask {
                max_attempts: Some(1),
                ..NewTask::new("panicky", json!(1))
            })
            .await
            .expect("enqueue");
        let slow = wait_for(&store, slow.id, Status::Dead).await;
        assert!(slow.last_error.expect("error").contains("timed out"));
        let panicky = wait_for(&store, panicky.id, Status::Dead).await;
        assert!(panicky.last_error.expect("error").contains("panicked"));
        shutdown.cancel();
        loop_handle.await.expect("loop ends");
    }

    #[tokio::test]
    async fn shutdown_hands_back_attempts_still_running_after_the_grace() {
        let dir = Dir::new().expect("temp dir");
        let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
        let mut workers = Workers::new(store.queue.clone());
        workers.register("long", 4, |_: Value, _: u32| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Outcome::Succeeded(json!(null))
        });
        let shutdown = CancellationToken::new();
        let loop_handle =
            tokio::spawn(Arc::new(workers).run(shutdown.clone(), Duration::from_millis(100)));
        let task = store
            .queue
            .enqueue(NewTask::new("long", json!(1)))
            .await
            .expect("enqueue");
        wait_for(&store, task.id, Status::Running).await;
        shutdown.cancel();
        loop_handle.await.expect("loop ends");
        let task = store.queue.get(task.id).await.expect("get").expect("task");
        assert_eq!((task.status, task.attempts), (Status::Pending, 0));
    }
}
