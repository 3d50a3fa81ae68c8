//! Rollouts, the way Nomad's update stanza moves a job: one canary first, then batches of
//! `max_parallel`, each instance restarted on the new release and required to be `started`
//! within `healthy_deadline` and to stay so (same process) for `min_healthy_time`. A failure
//! stops the rollout and moves every instance it already moved back to its old release.
//! A rollout's record lives in the store: a control plane that restarts, or a standby that
//! takes over, carries on with the rollouts still running, knowing which instances they
//! moved.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::ControlPlane;
use super::store::{Desired, State};
use crate::storage::db::now_ms;

/// An instance a rollout moved, and the release it came from.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Moved {
    pub instance: String,
    pub from: String,
}

/// A rollout: what it was asked, and how far it got. Times are ms since the epoch.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rollout {
    pub id: String,
    pub version: String,
    /// `running`, `reverting` (after a failure), `succeeded`, or `failed` (every moved
    /// instance back on its old release).
    pub state: String,
    pub max_parallel: usize,
    pub min_healthy_time_s: u64,
    pub healthy_deadline_s: u64,
    /// Instances to move.
    pub total: usize,
    /// Instances on the new release and healthy.
    pub done: usize,
    /// The instances it moved so far, in order.
    pub moved: Vec<Moved>,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

impl Rollout {
    fn min_healthy_time(&self) -> Duration {
        Duration::from_secs(self.min_healthy_time_s)
    }

    fn healthy_deadline(&self) -> Duration {
        Duration::from_secs(self.healthy_deadline_s)
    }
}

/// Keeps `rollout`'s record.
pub async fn save(cp: &ControlPlane, rollout: &Rollout) -> Result<(), String> {
    let body = serde_json::to_string(rollout).map_err(|e| e.to_string())?;
    cp.store
        .put_rollout(&rollout.id, &rollout.state, rollout.started_at, &body)
        .await
        .map_err(|e| e.to_string())
}

/// Rollout `id`'s record.
pub async fn load(cp: &ControlPlane, id: &str) -> Result<Option<Rollout>, String> {
    match cp.store.rollout(id).await.map_err(|e| e.to_string())? {
        Some(body) => serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

/// The rollouts not finished, running or reverting (at most one).
pub async fn running(cp: &ControlPlane) -> Result<Vec<Rollout>, String> {
    cp.store
        .unfinished_rollouts()
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|body| serde_json::from_str(body).map_err(|e| e.to_string()))
        .collect()
}

/// Moves `id` to `version` and restarts it on that release (again, if it was: a record
/// says an instance is to be moved before it is). One deleted meanwhile is left alone.
async fn move_to(cp: &ControlPlane, id: &str, version: &str) {
    let _turn = cp.acting.lock().await;
    match cp.store.get(id).await {
        Ok(Some(instance)) if instance.desired != Desired::Destroyed => {}
        _ => return,
    }
    if let Err(e) = cp.store.set_version(id, version, now_ms()).await {
        tracing::error!(instance = %id, error = %e, "cannot record an instance's release");
    }
    if let Ok(Some(mut instance)) = cp.store.get(id).await {
        cp.stop_process(&mut instance).await;
        instance.state = State::Stopped;
        cp.store_observed(&instance).await;
    }
    cp.changed.notify_one();
}

/// Waits until `id` is started and has stayed so, on one process, for the rollout's time.
async fn healthy(cp: &ControlPlane, id: &str, rollout: &Rollout) -> Result<(), String> {
    let deadline = Instant::now() + rollout.healthy_deadline();
    let mut since: Option<(Instant, Option<u32>)> = None;
    loop {
        let instance = cp
            .store
            .get(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("instance {id} is gone"))?;
        if instance.desired != Desired::Started {
            // Its owner stopped or deleted it meanwhile: nothing to wait for.
            return Ok(());
        }
        match (&since, instance.state) {
            (Some((at, pid)), State::Started) if *pid == instance.pid => {
                if at.elapsed() >= rollout.min_healthy_time() {
                    return Ok(());
                }
            }
            (_, State::Started) => since = Some((Instant::now(), instance.pid)),
            _ => since = None,
        }
        if Instant::now() > deadline {
            return Err(format!(
                "instance {id} was not healthy for {} s within {} s on {} (it is {})",
                rollout.min_healthy_time_s,
                rollout.healthy_deadline_s,
                rollout.version,
                instance.state.as_str()
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Keeps the record, saying so when it cannot (the rollout goes on).
async fn record(cp: &ControlPlane, rollout: &Rollout) {
    if let Err(e) = save(cp, rollout).await {
        tracing::error!(rollout = %rollout.id, error = %e, "cannot record a rollout");
    }
}

/// Moves every instance `rollout` moved back to its old release, and ends it as failed.
async fn revert(cp: &ControlPlane, mut rollout: Rollout, error: String) {
    rollout.state = "reverting".into();
    rollout.error = Some(error.clone());
    record(cp, &rollout).await;
    for back in rollout.moved.iter().rev() {
        move_to(cp, &back.instance, &back.from).await;
    }
    rollout.state = "failed".into();
    rollout.error = Some(format!(
        "{error}; the moved instances are back on their release"
    ));
    rollout.finished_at = Some(now_ms());
    record(cp, &rollout).await;
}

/// Runs `rollout` to its end, from wherever its record says it got (a new one, or one a
/// previous leader left running or reverting).
pub async fn run(cp: ControlPlane, mut rollout: Rollout) {
    if rollout.state == "reverting" {
        let error = rollout.error.clone().unwrap_or_default();
        revert(&cp, rollout, error).await;
        return;
    }
    let targets: Vec<(String, String)> = match cp.store.list().await {
        Ok(all) => all
            .into_iter()
            .filter(|i| i.desired == Desired::Started && i.version != rollout.version)
            .filter(|i| !rollout.moved.iter().any(|m| m.instance == i.id))
            .map(|i| (i.id, i.version))
            .collect(),
        Err(e) => {
            rollout.state = "failed".into();
            rollout.error = Some(e.to_string());
            rollout.finished_at = Some(now_ms());
            record(&cp, &rollout).await;
            return;
        }
    };
    // Those it moved before a restart count as moved; the rest are still to go.
    rollout.total = rollout.moved.len() + targets.len();
    record(&cp, &rollout).await;
    // The canary alone (unless one was moved already), then batches.
    let mut batches: Vec<&[(String, String)]> = Vec::new();
    let rest = match targets.split_first() {
        Some((canary, rest)) if rollout.moved.is_empty() => {
            batches.push(std::slice::from_ref(canary));
            rest
        }
        _ => targets.as_slice(),
    };
    batches.extend(rest.chunks(rollout.max_parallel.max(1)));
    // Moved but not yet proven healthy when the last leader stopped: moved again (the last
    // may have been recorded but not moved), then checked first.
    let mut unchecked: Vec<String> = rollout
        .moved
        .iter()
        .skip(rollout.done)
        .map(|m| m.instance.clone())
        .collect();
    for instance in &unchecked {
        move_to(&cp, instance, &rollout.version).await;
    }
    for batch in std::iter::once(&[][..]).chain(batches) {
        for (instance, old) in batch {
            // Recorded first: a revert must know of it even if this leader stops mid-move.
            rollout.moved.push(Moved {
                instance: instance.clone(),
                from: old.clone(),
            });
            record(&cp, &rollout).await;
            move_to(&cp, instance, &rollout.version).await;
            unchecked.push(instance.clone());
        }
        for instance in std::mem::take(&mut unchecked) {
            if let Err(error) = healthy(&cp, &instance, &rollout).await {
                tracing::warn!(rollout = %rollout.id, %error, "rollout failed; reverting");
                revert(&cp, rollout, error).await;
                return;
            }
            rollout.done += 1;
            record(&cp, &rollout).await;
        }
    }
    rollout.state = "succeeded".into();
    rollout.finished_at = Some(now_ms());
    record(&cp, &rollout).await;
    tracing::info!(rollout = %rollout.id, version = %rollout.version, "rollout done");
}
