//! The reconcile loop: compares each instance's desired state with what its process and
//! its health probe say, and acts. Dead or unhealthy instances that should run are started
//! again with exponential backoff; after [`CRASH_LOOP_AFTER`] failures in a row an instance
//! is left in `crash_loop` until its owner starts it again. An instance's restart policy
//! says whether it is started again at all (`always`, `on-failure` N times per window, `no`).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::releases::Launch;
use super::store::{Desired, Instance, RestartPolicy, State};
use super::{ControlPlane, Probe};
use crate::storage::db::now_ms;

/// Failed starts or probes in a row that make a crash loop.
const CRASH_LOOP_AFTER: u32 = 5;
/// How long a started instance that stopped listening may take to exit (it drains its
/// requests and tasks after SIGTERM, 10 s by default) before that counts as failed probes.
const DRAIN_GRACE: Duration = Duration::from_secs(30);
/// Failed probes in a row that make a running instance unhealthy (then restarted).
const UNHEALTHY_AFTER: u32 = 3;
/// How long a starting instance has to answer its health probe.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How stale the recorded probe time of an instance where nothing changed may get: every
/// write is a commit (and an fsync), and a pass over 100 instances is 100 probes.
const RECORD_PROBE_EVERY_MS: i64 = 10_000;
/// Health probes in flight at once.
const PROBES_AT_ONCE: usize = 32;
/// How often the loop looks while nothing is starting, and while something is.
const IDLE_EVERY: Duration = Duration::from_millis(500);
const BUSY_EVERY: Duration = Duration::from_millis(20);

/// Runs until `shutdown`; instances keep running when it ends.
pub async fn run(cp: ControlPlane, shutdown: CancellationToken) {
    let mut memory = Memory::default();
    // A child of ours that ends wakes the loop at once; adopted instances are not our
    // children, and are seen at the next pass.
    let mut exits = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).ok();
    loop {
        // Read and act under the lock: a rollout or a restart must not act between the two.
        let turn = cp.acting.lock().await;
        let busy = match cp.store.list().await {
            Ok(mut instances) => {
                let mut probes = probe_all(&cp, &instances, &mut memory).await;
                // Those that need a start or a stop first: a running one only gets probed.
                instances.sort_by_key(|i| i.state == State::Started);
                let mut busy = false;
                for instance in instances {
                    let healthy = probes.remove(&instance.id);
                    busy |= step(&cp, instance, healthy, &mut memory).await;
                }
                busy
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the instances");
                false
            }
        };
        drop(turn);
        let wait = if busy { BUSY_EVERY } else { IDLE_EVERY };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = cp.changed.notified() => {}
            () = child_exited(&mut exits) => {}
        }
    }
}

/// Probes at once every instance that should run and has a process (a started one at most
/// every [`IDLE_EVERY`], also while the loop looks more often for one starting), and reads
/// the `/metrics` of those started and due: a pass takes about one probe's time, not one
/// per instance. By id: whether it answered.
async fn probe_all(
    cp: &ControlPlane,
    instances: &[Instance],
    memory: &mut Memory,
) -> HashMap<String, Probe> {
    use futures_util::StreamExt;
    let now = Instant::now();
    let probe_due = |i: &Instance| {
        i.state != State::Started
            || memory
                .probed_at
                .get(&i.id)
                .is_none_or(|at| now.duration_since(*at) >= IDLE_EVERY)
    };
    let due = |i: &Instance| {
        i.state == State::Started
            && cp.scrapes.get(&i.id).is_none_or(|usage| {
                u128::try_from(now_ms() - usage.scraped_at)
                    .is_ok_and(|ms| ms >= cp.scrape_every.as_millis())
            })
    };
    futures_util::stream::iter(
        instances
            .iter()
            .filter(|i| i.desired == Desired::Started && i.pid.is_some() && probe_due(i))
            .map(|i| async move {
                let probe = cp.probe(&i.id, i.port).await;
                if probe == Probe::Healthy && due(i) {
                    cp.scrape(&i.id, i.port).await;
                }
                (i.id.clone(), probe)
            }),
    )
    .buffer_unordered(PROBES_AT_ONCE)
    .collect::<HashMap<String, Probe>>()
    .await
    .into_iter()
    .inspect(|(id, _)| {
        memory.probed_at.insert(id.clone(), now);
    })
    .collect()
}

async fn child_exited(exits: &mut Option<tokio::signal::unix::Signal>) {
    match exits {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// What the loop remembers of each instance between passes.
#[derive(Default)]
struct Memory {
    /// No start attempt before this (the backoff).
    not_before: HashMap<String, Instant>,
    /// When its current process was started.
    started_at: HashMap<String, Instant>,
    /// When its health was last probed.
    probed_at: HashMap<String, Instant>,
    /// Since when a started instance's probe finds nothing listening (it is draining).
    refused_since: HashMap<String, Instant>,
    /// When it was restarted after a failure, within its `on-failure` window.
    restarted: HashMap<String, VecDeque<Instant>>,
}

/// Whether instance's policy lets it be started again after its process ended or failed
/// its probe (`clean`: it exited with status 0); `Err` says why not, `Ok(false)` that it
/// stays stopped as it asked by exiting cleanly.
fn may_restart(
    instance: &Instance,
    clean: bool,
    restarted: &mut VecDeque<Instant>,
) -> Result<bool, String> {
    let restart = instance.spec.restart;
    match restart.policy {
        RestartPolicy::Always => Ok(true),
        RestartPolicy::No if clean => Ok(false),
        RestartPolicy::No => Err("it failed, and its restart policy is no".into()),
        RestartPolicy::OnFailure if clean => Ok(false),
        RestartPolicy::OnFailure => {
            let window = Duration::from_secs(restart.window_s);
            while restarted.front().is_some_and(|at| at.elapsed() > window) {
                restarted.pop_front();
            }
            if restarted.len() >= restart.max_restarts as usize {
                return Err(format!(
                    "it failed again after {} restarts within {} s, all its on-failure policy allows",
                    restarted.len(),
                    restart.window_s
                ));
            }
            restarted.push_back(Instant::now());
            Ok(true)
        }
    }
}

/// Applies the restart policy to an instance whose process ended or was stopped as
/// unhealthy; `false` when it is not to be started again (then it is left stopped or
/// failed, and so desired, or in `crash_loop` when on-failure ran out).
fn apply_policy(instance: &mut Instance, clean: bool, memory: &mut Memory) -> bool {
    let restarted = memory.restarted.entry(instance.id.clone()).or_default();
    match may_restart(instance, clean, restarted) {
        Ok(true) => true,
        Ok(false) => {
            instance.desired = Desired::Stopped;
            instance.state = State::Stopped;
            instance.last_error = None;
            false
        }
        Err(why) if instance.spec.restart.policy == RestartPolicy::OnFailure => {
            instance.state = State::CrashLoop;
            instance.last_error = Some(why);
            false
        }
        Err(why) => {
            instance.desired = Desired::Stopped;
            instance.state = State::Failed;
            instance.last_error = Some(why);
            false
        }
    }
}

/// The wait before start attempt number `failures + 1`.
fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    Duration::from_millis(250u64.saturating_mul(1 << (failures - 2).min(7)))
}

/// Moves one instance toward its desired state; `true` while it is starting.
/// `probe`: what its probe in this pass said; none when it was not due.
async fn step(
    cp: &ControlPlane,
    mut instance: Instance,
    probe: Option<Probe>,
    memory: &mut Memory,
) -> bool {
    let before = (
        instance.state,
        instance.pid,
        instance.failures,
        instance.restarts,
        instance.desired,
    );
    let recorded_probe = instance.last_probe_at;
    let alive = instance
        .pid
        .is_some_and(|pid| cp.provider.is_running(&instance.id, pid));
    match instance.desired {
        Desired::Started if instance.state == State::CrashLoop => {}
        Desired::Started if !alive => {
            if matches!(instance.state, State::Stopped | State::Created) {
                // Its owner (or a rollout) starts it: a fresh budget, no backoff left over.
                memory.restarted.remove(&instance.id);
                memory.not_before.remove(&instance.id);
            }
            let mut again = true;
            if let Some(pid) = instance.pid.take()
                && matches!(instance.state, State::Started | State::Starting)
            {
                let clean = cp.provider.take_exit(pid) == Some(true);
                again = apply_policy(&mut instance, clean, memory);
                if again {
                    instance.restarts += 1;
                    instance.failures += 1;
                    instance.last_error = Some("the process exited".into());
                    tracing::warn!(instance = %instance.id, "instance exited; starting it again");
                } else {
                    tracing::warn!(instance = %instance.id, state = instance.state.as_str(), "instance exited; its restart policy leaves it");
                }
            }
            if !again {
                // Left as its policy says.
            } else if instance.failures >= CRASH_LOOP_AFTER {
                instance.state = State::CrashLoop;
            } else if memory
                .not_before
                .get(&instance.id)
                .is_none_or(|at| Instant::now() >= *at)
            {
                // Verified at each start if it changed (whole files read): off the async threads.
                let releases = cp.releases.clone();
                let version = instance.version.clone();
                let launch = tokio::task::spawn_blocking(move || releases.launch(&version))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                let started =
                    launch
                        .map_err(std::io::Error::other)
                        .and_then(|Launch { program, sha256 }| {
                            let pid = cp.provider.start(
                                &instance.id,
                                instance.port,
                                &program,
                                &instance.spec.limits,
                            )?;
                            cp.launched
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .insert(pid, sha256);
                            Ok(pid)
                        });
                match started {
                    Ok(pid) => {
                        instance.pid = Some(pid);
                        instance.state = State::Starting;
                        memory
                            .started_at
                            .insert(instance.id.clone(), Instant::now());
                    }
                    Err(e) => {
                        instance.failures += 1;
                        instance.state = State::Failed;
                        instance.last_error = Some(format!("cannot start: {e}"));
                    }
                }
                memory.not_before.insert(
                    instance.id.clone(),
                    Instant::now() + backoff(instance.failures + 1),
                );
            } else {
                instance.state = State::Failed;
            }
        }
        Desired::Started => {
            let Some(probe) = probe else {
                // Started, and probed less than a pass ago.
                return false;
            };
            let healthy = probe == Probe::Healthy;
            if probe == Probe::Refused && instance.state == State::Started {
                memory
                    .refused_since
                    .entry(instance.id.clone())
                    .or_insert_with(Instant::now);
            } else {
                memory.refused_since.remove(&instance.id);
            }
            let draining = memory
                .refused_since
                .get(&instance.id)
                .is_some_and(|since| since.elapsed() < DRAIN_GRACE);
            instance.last_probe_at = Some(now_ms());
            let proven = match (healthy, instance.state, instance.pid) {
                // Once per process, when it first answers: does it run its release?
                (true, State::Starting, Some(pid)) => {
                    cp.attest(&instance.id, instance.port, pid, &instance.version)
                        .await
                }
                _ => Ok(()),
            };
            if let Err(error) = proven {
                tracing::warn!(instance = %instance.id, %error, "instance failed its attestation check");
                cp.stop_process(&mut instance).await;
                instance.failures += 1;
                instance.last_error = Some(error);
                instance.state = if instance.failures >= CRASH_LOOP_AFTER {
                    State::CrashLoop
                } else {
                    State::Failed
                };
            } else if healthy {
                instance.state = State::Started;
                instance.failures = 0;
                instance.last_error = None;
            } else if instance.state == State::Starting
                && memory
                    .started_at
                    .get(&instance.id)
                    .is_some_and(|at| at.elapsed() < START_TIMEOUT)
            {
                // Still coming up.
            } else if draining {
                // Closed its listener, on its way out: its exit status will say how it ended.
                instance.last_error = Some("draining: its listener is closed".into());
            } else {
                instance.failures += 1;
                instance.last_error = Some("the health probe failed".into());
                if instance.failures >= UNHEALTHY_AFTER && instance.pid.is_some() {
                    tracing::warn!(instance = %instance.id, "instance unhealthy; stopping it");
                    cp.stop_process(&mut instance).await;
                    if apply_policy(&mut instance, false, memory) {
                        instance.restarts += 1;
                        instance.state = if instance.failures >= CRASH_LOOP_AFTER {
                            State::CrashLoop
                        } else {
                            State::Failed
                        };
                    }
                }
            }
        }
        Desired::Stopped | Desired::Destroyed => {
            if alive {
                cp.stop_process(&mut instance).await;
            }
            instance.pid = None;
            if instance.desired == Desired::Destroyed {
                instance.state = State::Destroyed;
            } else if instance.state != State::Failed {
                // A failed one stopped by its restart policy stays failed until started.
                instance.state = State::Stopped;
            }
        }
    }
    let after = (
        instance.state,
        instance.pid,
        instance.failures,
        instance.restarts,
        instance.desired,
    );
    let probe_stale = match (recorded_probe, instance.last_probe_at) {
        (Some(recorded), Some(now)) => now - recorded >= RECORD_PROBE_EVERY_MS,
        (recorded, now) => recorded != now,
    };
    if after != before || probe_stale {
        cp.store_observed(&instance).await;
        if after.0 != before.0 {
            tracing::info!(instance = %instance.id, state = instance.state.as_str(), "instance state");
        }
    }
    instance.state == State::Starting
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_second_retry_and_stops_growing() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(250));
        assert_eq!(backoff(3), Duration::from_millis(500));
        assert_eq!(backoff(30), Duration::from_millis(250 * 128));
    }
}
