//! Rollouts, the way Nomad's update stanza moves a job: one canary first, then batches of
//! `max_parallel`, each instance restarted on the new release and required to be `started`
//! within `healthy_deadline` and to stay so (same process) for `min_healthy_time`. A failure
//! stops the rollout and moves every instance it already moved back to its old release.
//! Rollouts are kept in memory: a control plane that restarts mid-way leaves each instance
//! on whichever release it reached, and says so in its record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::ControlPlane;
use super::store::{Desired, State};
use crate::storage::db::now_ms;

/// What a rollout is asked to do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub version: String,
    pub max_parallel: usize,
    pub min_healthy_time: Duration,
    pub healthy_deadline: Duration,
}

/// A rollout's progress. Times are ms since the epoch.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rollout {
    pub id: String,
    pub version: String,
    /// `running`, `succeeded`, or `failed` (every moved instance back on its old release).
    pub state: &'static str,
    /// Instances to move.
    pub total: usize,
    /// Instances on the new release and healthy.
    pub done: usize,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// Every rollout since the start, by id.
#[derive(Clone, Default)]
pub struct Rollouts(Arc<Mutex<HashMap<String, Rollout>>>);

impl Rollouts {
    pub fn get(&self, id: &str) -> Option<Rollout> {
        self.lock().get(id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Rollout>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut Rollout)) {
        if let Some(rollout) = self.lock().get_mut(id) {
            change(rollout);
        }
    }

    /// Whether one is running now (two at once would fight over the same instances).
    pub fn running(&self) -> Option<String> {
        self.lock()
            .values()
            .find(|r| r.state == "running")
            .map(|r| r.id.clone())
    }

    pub fn insert(&self, rollout: Rollout) {
        self.lock().insert(rollout.id.clone(), rollout);
    }
}

/// Moves `id` to `version` and restarts it on that release.
async fn move_to(cp: &ControlPlane, id: &str, version: &str) {
    let _turn = cp.acting.lock().await;
    if let Err(e) = cp.store.set_version(id, version, now_ms()) {
        tracing::error!(instance = %id, error = %e, "cannot record an instance's release");
    }
    if let Ok(Some(mut instance)) = cp.store.get(id) {
        cp.stop_process(&mut instance).await;
        instance.state = State::Stopped;
        cp.store_observed(&instance);
    }
    cp.changed.notify_one();
}

/// Waits until `id` is started and has stayed so, on one process, for the plan's time.
async fn healthy(cp: &ControlPlane, id: &str, plan: &Plan) -> Result<(), String> {
    let deadline = Instant::now() + plan.healthy_deadline;
    let mut since: Option<(Instant, Option<u32>)> = None;
    loop {
        let instance = cp
            .store
            .get(id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("instance {id} is gone"))?;
        match (&since, instance.state) {
            (Some((at, pid)), State::Started) if *pid == instance.pid => {
                if at.elapsed() >= plan.min_healthy_time {
                    return Ok(());
                }
            }
            (_, State::Started) => since = Some((Instant::now(), instance.pid)),
            _ => since = None,
        }
        if Instant::now() > deadline {
            return Err(format!(
                "instance {id} was not healthy for {} s within {} s on {} (it is {})",
                plan.min_healthy_time.as_secs(),
                plan.healthy_deadline.as_secs(),
                plan.version,
                instance.state.as_str()
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs rollout `id` to its end.
pub async fn run(cp: ControlPlane, id: String, plan: Plan) {
    let targets: Vec<(String, String)> = match cp.store.list() {
        Ok(all) => all
            .into_iter()
            .filter(|i| i.desired == Desired::Started && i.version != plan.version)
            .map(|i| (i.id, i.version))
            .collect(),
        Err(e) => {
            cp.rollouts.update(&id, |r| {
                r.state = "failed";
                r.error = Some(e.to_string());
                r.finished_at = Some(now_ms());
            });
            return;
        }
    };
    cp.rollouts.update(&id, |r| r.total = targets.len());
    let mut moved: Vec<(String, String)> = Vec::new();
    // The canary alone, then batches.
    let mut batches: Vec<&[(String, String)]> = Vec::new();
    if let Some((canary, rest)) = targets.split_first() {
        batches.push(std::slice::from_ref(canary));
        batches.extend(rest.chunks(plan.max_parallel.max(1)));
    }
    for batch in batches {
        for (instance, old) in batch {
            move_to(&cp, instance, &plan.version).await;
            moved.push((instance.clone(), old.clone()));
        }
        for (instance, _) in batch {
            if let Err(error) = healthy(&cp, instance, &plan).await {
                tracing::warn!(rollout = %id, %error, "rollout failed; reverting");
                for (back, old) in moved.iter().rev() {
                    move_to(&cp, back, old).await;
                }
                cp.rollouts.update(&id, |r| {
                    r.state = "failed";
                    r.error = Some(format!(
                        "{error}; the moved instances are back on their release"
                    ));
                    r.finished_at = Some(now_ms());
                });
                return;
            }
            cp.rollouts.update(&id, |r| r.done += 1);
        }
    }
    cp.rollouts.update(&id, |r| {
        r.state = "succeeded";
        r.finished_at = Some(now_ms());
    });
    tracing::info!(rollout = %id, version = %plan.version, "rollout done");
}
