//! The control plane's HTTP API: instances and their lifecycle, behind its admin tokens,
//! described at `/openapi.json`.

use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ControlPlane;
use super::fleet::{self, Usage};
use super::process::free_port;
use super::releases::Release;
use super::rollouts::{self, Rollout};
use super::store::{Desired, Instance, Limits, Restart, Spec, State as InstanceState};
use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::{AppJson, AppPath};
use crate::storage::db::now_ms;

/// The longest `wait` holds a request.
const MAX_WAIT_S: u64 = 60;

#[derive(OpenApi)]
#[openapi(info(
    title = "Toolshed control plane",
    description = "Starts one Toolshed instance per user and keeps it running."
))]
struct ControlPlaneDoc;

pub fn router(cp: ControlPlane) -> Router {
    let (api, spec) = OpenApiRouter::with_openapi(ControlPlaneDoc::openapi())
        .routes(routes!(create_instance, list_instances))
        .routes(routes!(get_instance, delete_instance))
        .routes(routes!(start_instance))
        .routes(routes!(stop_instance))
        .routes(routes!(restart_instance))
        .routes(routes!(wait_instance))
        .routes(routes!(instance_history))
        .routes(routes!(fleet_metrics))
        .routes(routes!(add_release, list_releases))
        .routes(routes!(start_rollout))
        .routes(routes!(get_rollout))
        .split_for_parts();
    let spec = serde_json::to_value(&spec).unwrap_or_default();
    api.route(
        "/openapi.json",
        axum::routing::get(move || async move { Json(spec.clone()) }),
    )
    .fallback(|| async { AppError::not_found("no such route on the control plane") })
    .layer(axum::middleware::from_fn_with_state(
        cp.clone(),
        require_lead,
    ))
    .layer(axum::middleware::from_fn_with_state(
        cp.clone(),
        require_token,
    ))
    .with_state(cp)
}

/// Every route takes one of the control plane's admin tokens.
async fn require_token(State(cp): State<ControlPlane>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    match presented.and_then(|token| cp.tokens.find(&token)) {
        Some(_) => next.run(request).await,
        None => AppError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a control plane token (TOOLSHED_CONTROLPLANE_TOKENS) as Authorization: Bearer <token>",
        )
        .into_response(),
    }
}

/// A control plane standing by answers nothing but that (and its API's description): the
/// leader's view is the one that acts, and a request here would act beside it.
async fn require_lead(State(cp): State<ControlPlane>, request: Request, next: Next) -> Response {
    if cp.leading.load(std::sync::atomic::Ordering::SeqCst)
        || request.uri().path() == "/openapi.json"
    {
        return next.run(request).await;
    }
    AppError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "standing_by",
        "this control plane is standing by: another one holds the store's lock and answers; this one takes over when it stops",
    )
    .into_response()
}

/// `POST /instances`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Whose instance (1 to 128 characters); one user may have several.
    pub user_id: String,
    /// The release it runs (default: the newest registered, else the control plane's own).
    pub version: Option<String>,
    /// Start it now (default true); false only creates it.
    pub start: Option<bool>,
    /// When it is started again after its process ended (default `always`).
    pub restart: Option<Restart>,
    /// What its process may use (default: no limits).
    pub limits: Option<Limits>,
}

/// An instance, desired and observed. Times are ms since the epoch.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceBody {
    pub id: String,
    pub user_id: String,
    /// The release it runs.
    pub version: String,
    pub desired: Desired,
    pub state: InstanceState,
    /// Where it serves.
    pub url: String,
    pub pid: Option<u32>,
    /// Restarts after it exited or failed its health probe.
    pub restarts: u32,
    /// Its last health probe, as recorded: every 10 s while nothing changes (probes run
    /// every 500 ms).
    pub last_probe_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub restart: Restart,
    pub limits: Limits,
    /// What its last `/metrics` scrape said (every 5 s while it runs).
    pub usage: Option<Usage>,
    /// The user's API token for it: shown once, in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::internal(e)
}

fn random_hex(bytes: usize) -> Result<String, AppError> {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).map_err(|e| internal(format!("no randomness: {e}")))?;
    Ok(crate::platform::hex::to_hex(&raw))
}

/// An instance's answer: where it is, and its last scrape.
fn body(cp: &ControlPlane, i: Instance) -> InstanceBody {
    InstanceBody {
        url: cp.provider.address(&i.id, i.port),
        usage: cp.scrapes.get(&i.id),
        id: i.id,
        user_id: i.user_id,
        version: i.version,
        desired: i.desired,
        state: i.state,
        pid: i.pid,
        restarts: i.restarts,
        last_probe_at: i.last_probe_at,
        last_error: i.last_error,
        created_at: i.created_at,
        updated_at: i.updated_at,
        restart: i.spec.restart,
        limits: i.spec.limits,
        token: None,
    }
}

async fn found(cp: &ControlPlane, id: &str) -> Result<Instance, AppError> {
    cp.store
        .get(id)
        .await
        .map_err(internal)?
        .filter(|i| i.state != InstanceState::Destroyed)
        .ok_or_else(|| AppError::not_found(format!("no instance {id:?}")))
}

/// Bounds of a restart policy and of limits, and what this machine can enforce.
fn check_spec(spec: &Spec) -> Result<(), AppError> {
    let Restart {
        max_restarts,
        window_s,
        ..
    } = spec.restart;
    if !(1..=100).contains(&max_restarts) || !(1..=86_400).contains(&window_s) {
        return Err(AppError::bad_request(
            "restart: max_restarts is 1 to 100 and window_s 1 to 86400",
        ));
    }
    let Limits {
        data_mb,
        open_files,
        nice,
    } = spec.limits;
    for (name, value, least) in [("data_mb", data_mb, 128), ("open_files", open_files, 64)] {
        if value.is_some_and(|v| !(least..=1_048_576).contains(&v)) {
            return Err(AppError::bad_request(format!(
                "limits.{name} is {least} to 1048576"
            )));
        }
    }
    if let (Some(asked), Some(hard)) = (open_files, super::process::open_files_hard_limit())
        && asked > hard
    {
        return Err(AppError::bad_request(format!(
            "limits.open_files {asked} is above this control plane's own hard limit ({hard}), which an instance cannot raise"
        )));
    }
    if nice.is_some_and(|n| n > 19) {
        return Err(AppError::bad_request("limits.nice is 0 to 19"));
    }
    if spec.limits != Limits::default()
        && let Err(missing) = super::process::limits_supported()
    {
        return Err(AppError::bad_request(format!(
            "limits: this machine cannot enforce them: {missing}"
        )));
    }
    Ok(())
}

/// Create an instance (and start it unless `start` is false).
#[utoipa::path(
    post,
    path = "/instances",
    tag = "instances",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "Created; the token is shown this once", body = InstanceBody),
        (status = 400, description = "A bad user id, or a version with no verified release", body = ErrorBody),
        (status = 401, description = "No control plane token", body = ErrorBody),
        (status = 422, description = "Body of the wrong shape", body = ErrorBody),
    )
)]
async fn create_instance(
    State(cp): State<ControlPlane>,
    AppJson(request): AppJson<CreateRequest>,
) -> Result<(StatusCode, Json<InstanceBody>), AppError> {
    let user_id = request.user_id.trim();
    if user_id.is_empty() || user_id.len() > 128 {
        return Err(AppError::bad_request("user_id must be 1 to 128 characters"));
    }
    // Verifying a release reads it whole: off the async threads.
    let releases = cp.releases.clone();
    let asked = request.version;
    let version = tokio::task::spawn_blocking(move || {
        let version = asked.unwrap_or_else(|| releases.default_version());
        releases.launch(&version).map(|_| version)
    })
    .await
    .map_err(internal)?
    .map_err(|e| AppError::bad_request(format!("version: {e}")))?;
    let spec = Spec {
        restart: request.restart.unwrap_or_default(),
        limits: request.limits.unwrap_or_default(),
    };
    check_spec(&spec)?;
    let id = format!("i-{}", random_hex(8)?);
    let token = random_hex(24)?;
    let port = free_port().map_err(|e| internal(format!("no free port: {e}")))?;
    let now = now_ms();
    let instance = Instance {
        id: id.clone(),
        user_id: user_id.to_owned(),
        version,
        desired: if request.start.unwrap_or(true) {
            Desired::Started
        } else {
            Desired::Stopped
        },
        state: InstanceState::Created,
        port,
        pid: None,
        restarts: 0,
        failures: 0,
        last_probe_at: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        spec,
    };
    let metrics_token = random_hex(24)?;
    cp.provider
        .prepare(&id, &token, &metrics_token)
        .map_err(|e| internal(format!("cannot make the instance's folder: {e}")))?;
    cp.store.insert(&instance).await.map_err(internal)?;
    cp.changed.notify_one();
    let mut answer = body(&cp, instance);
    answer.token = Some(token);
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Every instance that is not destroyed.
#[utoipa::path(
    get,
    path = "/instances",
    tag = "instances",
    responses(
        (status = 200, description = "The instances", body = Vec<InstanceBody>),
        (status = 401, description = "No control plane token", body = ErrorBody),
    )
)]
async fn list_instances(
    State(cp): State<ControlPlane>,
) -> Result<Json<Vec<InstanceBody>>, AppError> {
    let all = cp.store.list().await.map_err(internal)?;
    Ok(Json(all.into_iter().map(|i| body(&cp, i)).collect()))
}

/// One instance, desired and observed.
#[utoipa::path(
    get,
    path = "/instances/{id}",
    tag = "instances",
    params(("id" = String, Path, description = "The instance's id")),
    responses(
        (status = 200, description = "The instance", body = InstanceBody),
        (status = 401, description = "No control plane token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
    )
)]
async fn get_instance(
    State(cp): State<ControlPlane>,
    AppPath(id): AppPath<String>,
) -> Result<Json<InstanceBody>, AppError> {
    Ok(Json(body(&cp, found(&cp, &id).await?)))
}

/// Changes what an instance should be, then answers it as it is now.
async fn want(
    cp: &ControlPlane,
    id: &str,
    desired: Desired,
) -> Result<Json<InstanceBody>, AppError> {
    let turn = cp.acting.lock().await;
    found(cp, id).await?;
    cp.store
        .set_desired(id, desired, now_ms())
        .await
        .map_err(internal)?;
    if let Some(mut instance) = cp.store.get(id).await.map_err(internal)?
        && matches!(
            instance.state,
            InstanceState::CrashLoop | InstanceState::Failed
        )
    {
        // Its owner asks again: a fresh start (no backoff left over), or a plain stop.
        instance.state = InstanceState::Stopped;
        cp.store_observed(&instance).await;
    }
    drop(turn);
    cp.changed.notify_one();
    Ok(Json(body(cp, found(cp, id).await?)))
}

/// Start an instance (also out of `crash_loop`).
#[utoipa::path(
    post,
    path = "/instances/{id}/start",
    tag = "instances",
    params(("id" = String, Path, description = "The instance's id")),
    responses(
        (status = 200, description = "It will run: wait for `started`", body = InstanceBody),
        (status = 401, description = "No control plane token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
    )
)]
async fn start_instance(
    State(cp): State<ControlPlane>,
    AppPath(id): AppPath<String>,
) -> Result<Json<InstanceBody>, AppError> {
    want(&cp, &id, Desired::Started).await
}

/// Stop an instance (gracefully: its requests and tasks get their grace).
#[utoipa::path(
    post,
    path = "/instances/{id}/stop",
    tag = "instances",
    params(("id" = String, Path, description = "The instance's id")),
    responses(
        (status = 200, description = "It will stop: wait for `stopped`", body = InstanceBody),
        (status = 401, description = "No control plane token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
    )
)]
async fn stop_instance(
    State(cp): State<ControlPlane>,
    AppPath(id): AppPath<String>,
) -> Result<Json<InstanceBody>, AppError> {
    want(&cp, &id, Desired::Stopped).await
}

/// Restart an instance: stop it gracefully, then start it again.
#[utoipa::path(
    post,
    path = "/instances/{id}/restart",
    tag = "instances",
    params(("id" = String, Path, description = "The instance's id")),
    responses(
        (status = 200, description = "Stopped and starting again: wait for `started`", body = InstanceBody),
        (status = 401, description = "No control plane token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
    )
)]
async fn restart_instance(
    State(cp): State<ControlPlane>,
    AppPath(id): AppPath<String>,
) -> Result<Json<InstanceBody>, AppError> {
    {
        let _turn = cp.acting.lock().await;
        let mut instance = found(&cp, &id).await?;
        cp.stop_process(&mut instance).await;
        instance.state = InstanceState::Stopped;
        instance.restarts += 1;
        cp.store_observed(&instance).await;
    }
    want(&cp, &id, Desired::Started).await
}

/// `DELETE /instances/{id}` options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Also remove its data (default false: kept in the control plane's data directory).
    purge: Option<bool>,
}

/// Stop an instance for good; its data is kept unless `purge=true`.
#[utoipa::path(
    delete,
    path = "/instances/{id}",
    tag = "instances",
    params(("id" = String, Path, description = "The instance's id"), DeleteQuery),
    responses(
        (status = 200, description = "Stopped and destroyed", body = InstanceBody),
        (status = 401, description = "No control plane token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
    )
)]
async fn delete_instance(
    State(cp): State<ControlPlane>,
    AppPath(id): AppPath<String>,
    Query(query): Query<DeleteQuery>,
) -> Result<Json<InstanceBody>, AppError> {
    let _turn = cp.acting.lock().await;
    let mut instance = found(&cp, &id).await?;
    cp.store
        .set_desired(&id, Desired::Destroyed, now_ms())
        .await
        .map_err(internal)?;
    // Before the stop, which records the instance: a request cut mid-stop must not leave
    // it wanted started.
    instance.desired = Desired::Destroyed;
    cp.stop_process(&mut instance).await;
    cp.scrapes.forget(&id);
    instance.state = InstanceState::Destroyed;
    cp.store_observed(&instance).await;
    if query.purge.unwrap_or(false) {
        cp.provider
            .purge(&id)
            .map_err(|e| internal(format!("cannot remove the instance's data: {e}")))?;
    }
    Ok(Json(body(&cp, instance)))
}

/// What an instance did lately, from its kept scrapes.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    pub id: String,
    /// The scrape interval, in ms.
    pub interval_ms: u64,
    /// The rates between consecutive scrapes, oldest first (at most 59).
    pub samples: Vec<fleet::Sample>,
}

/// An instance's recent performance: memory, CPU, request and error rates, mean latency and
/// queue backlog over each scrape interval (the last five minutes at the default interval).
#[utoipa::path(
    get,
    path = "/instances/{id}/history",
    tag = "instances",
    params(("id" = String, Path, description = "The instance's id")),
    responses(
        (status = 200, description = "Its samples (none before two scrapes)", body = History),
        (status = 401, description = "No control plane token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
    )
)]
async fn instance_history(
    State(cp): State<ControlPlane>,
    AppPath(id): AppPath<String>,
) -> Result<Json<History>, AppError> {
    found(&cp, &id).await?;
    Ok(Json(History {
        samples: fleet::samples(&cp.scrapes.history(&id)),
        interval_ms: u64::try_from(cp.scrape_every.as_millis()).unwrap_or(u64::MAX),
        id,
    }))
}

/// `GET /instances/{id}/wait` options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    /// The state to wait for (default `started`).
    state: Option<String>,
    /// At most this long (default 10 s, at most 60).
    #[param(minimum = 1, maximum = 60)]
    timeout_s: Option<u64>,
}

/// Wait until an instance is in a state (long poll); 408 when the time runs out.
#[utoipa::path(
    get,
    path = "/instances/{id}/wait",
    tag = "instances",
    params(("id" = String, Path, description = "The instance's id"), WaitQuery),
    responses(
        (status = 200, description = "It is in that state now", body = InstanceBody),
        (status = 400, description = "An unknown state or a bad timeout", body = ErrorBody),
        (status = 401, description = "No control plane token", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 408, description = "Not in that state within the timeout", body = ErrorBody),
    )
)]
async fn wait_instance(
    State(cp): State<ControlPlane>,
    AppPath(id): AppPath<String>,
    Query(query): Query<WaitQuery>,
) -> Result<Json<InstanceBody>, AppError> {
    let wanted = query.state.as_deref().unwrap_or("started");
    let wanted = InstanceState::parse(wanted).ok_or_else(|| {
        AppError::bad_request(format!(
            "state {wanted:?} is not one of created, starting, started, stopping, stopped, failed, crash_loop, destroyed"
        ))
    })?;
    let timeout = query.timeout_s.unwrap_or(10);
    if !(1..=MAX_WAIT_S).contains(&timeout) {
        return Err(AppError::bad_request(format!(
            "timeout_s must be 1 to {MAX_WAIT_S}"
        )));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        let instance = cp
            .store
            .get(&id)
            .await
            .map_err(internal)?
            .ok_or_else(|| AppError::not_found(format!("no instance {id:?}")))?;
        if instance.state == wanted {
            return Ok(Json(body(&cp, instance)));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(AppError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "instance {id} is {} after {timeout} s, not {}",
                    instance.state.as_str(),
                    wanted.as_str()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The fleet in the Prometheus text format: instances by state, and per instance id (no
/// user id, no user data) whether it is up, its restarts, and its last scrape's memory, CPU,
/// requests, server errors and queue backlog.
#[utoipa::path(
    get,
    path = "/fleet/metrics",
    tag = "fleet",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "No control plane token", body = ErrorBody),
    )
)]
async fn fleet_metrics(State(cp): State<ControlPlane>) -> Result<Response, AppError> {
    let instances = cp.store.list().await.map_err(internal)?;
    let text = fleet::render(&instances, &cp.scrapes).map_err(internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `POST /releases`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// A release binary on this machine, with its `.minisig` beside it.
    pub path: String,
}

/// Register a release: refused unless its signature verifies under the release key; its
/// version comes from the signed trusted comment.
#[utoipa::path(
    post,
    path = "/releases",
    tag = "releases",
    request_body = ReleaseRequest,
    responses(
        (status = 201, description = "Verified and kept", body = Release),
        (status = 400, description = "No release key, or the release does not verify", body = ErrorBody),
        (status = 401, description = "No control plane token", body = ErrorBody),
        (status = 422, description = "Body of the wrong shape", body = ErrorBody),
    )
)]
async fn add_release(
    State(cp): State<ControlPlane>,
    AppJson(request): AppJson<ReleaseRequest>,
) -> Result<(StatusCode, Json<Release>), AppError> {
    let releases = cp.releases.clone();
    let added =
        tokio::task::spawn_blocking(move || releases.add(std::path::Path::new(&request.path)))
            .await
            .map_err(internal)?
            .map_err(|e| AppError::bad_request(format!("release refused: {e}")))?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// The registered releases that verify, oldest version first.
#[utoipa::path(
    get,
    path = "/releases",
    tag = "releases",
    responses(
        (status = 200, description = "The releases", body = Vec<Release>),
        (status = 401, description = "No control plane token", body = ErrorBody),
    )
)]
async fn list_releases(State(cp): State<ControlPlane>) -> Result<Json<Vec<Release>>, AppError> {
    let releases = cp.releases.clone();
    Ok(Json(
        tokio::task::spawn_blocking(move || releases.list())
            .await
            .map_err(internal)?,
    ))
}

/// `POST /rollouts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    /// The release every running instance moves to.
    pub version: String,
    /// Instances moved at once after the canary (default 1).
    #[schema(minimum = 1, maximum = 100)]
    pub max_parallel: Option<usize>,
    /// How long each must stay healthy (default 5 s).
    #[schema(maximum = 600)]
    pub min_healthy_time_s: Option<u64>,
    /// How long each gets to get there (default 60 s).
    #[schema(minimum = 1, maximum = 3600)]
    pub healthy_deadline_s: Option<u64>,
    /// Move to an older release (default false).
    pub allow_downgrade: Option<bool>,
}

/// Move every running instance to a release: a canary, then batches, each gated on staying
/// healthy; a failure reverts what was moved.
#[utoipa::path(
    post,
    path = "/rollouts",
    tag = "rollouts",
    request_body = RolloutRequest,
    responses(
        (status = 202, description = "Started: follow it at /rollouts/{id}", body = Rollout),
        (status = 400, description = "No such verified release, a downgrade, or bad bounds", body = ErrorBody),
        (status = 401, description = "No control plane token", body = ErrorBody),
        (status = 409, description = "Another rollout is running", body = ErrorBody),
        (status = 422, description = "Body of the wrong shape", body = ErrorBody),
    )
)]
async fn start_rollout(
    State(cp): State<ControlPlane>,
    AppJson(request): AppJson<RolloutRequest>,
) -> Result<(StatusCode, Json<Rollout>), AppError> {
    let max_parallel = request.max_parallel.unwrap_or(1);
    let min_healthy = request.min_healthy_time_s.unwrap_or(5);
    let deadline = request.healthy_deadline_s.unwrap_or(60);
    if !(1..=100).contains(&max_parallel) || min_healthy > 600 || !(1..=3600).contains(&deadline) {
        return Err(AppError::bad_request(
            "max_parallel is 1 to 100, min_healthy_time_s at most 600, healthy_deadline_s 1 to 3600",
        ));
    }
    let releases = cp.releases.clone();
    let version = request.version.clone();
    tokio::task::spawn_blocking(move || releases.launch(&version))
        .await
        .map_err(internal)?
        .map_err(|e| AppError::bad_request(format!("version: {e}")))?;
    let new = semver::Version::parse(&request.version)
        .map_err(|e| AppError::bad_request(format!("version: {e}")))?;
    if !request.allow_downgrade.unwrap_or(false) {
        let instances = cp.store.list().await.map_err(internal)?;
        if let Some(newer) = instances
            .iter()
            .find(|i| semver::Version::parse(&i.version).is_ok_and(|running| running > new))
        {
            return Err(AppError::bad_request(format!(
                "instance {} runs {}, newer than {new}: a downgrade needs \"allow_downgrade\": true",
                newer.id, newer.version
            )));
        }
    }
    let rollout = Rollout {
        id: format!("r-{}", random_hex(6)?),
        version: request.version,
        state: "running".into(),
        max_parallel,
        min_healthy_time_s: min_healthy,
        healthy_deadline_s: deadline,
        total: 0,
        done: 0,
        moved: Vec::new(),
        error: None,
        started_at: now_ms(),
        finished_at: None,
    };
    {
        // Checked and recorded under the lock: two at once would fight over the instances.
        let _turn = cp.acting.lock().await;
        if let Some(running) = rollouts::running(&cp).await.map_err(internal)?.first() {
            return Err(AppError::conflict(format!(
                "rollout {} is running",
                running.id
            )));
        }
        rollouts::save(&cp, &rollout).await.map_err(internal)?;
    }
    tokio::spawn(rollouts::run(cp.clone(), rollout.clone()));
    Ok((StatusCode::ACCEPTED, Json(rollout)))
}

/// A rollout's progress.
#[utoipa::path(
    get,
    path = "/rollouts/{id}",
    tag = "rollouts",
    params(("id" = String, Path, description = "The rollout's id")),
    responses(
        (status = 200, description = "Its progress", body = Rollout),
        (status = 401, description = "No control plane token", body = ErrorBody),
        (status = 404, description = "No such rollout", body = ErrorBody),
    )
)]
async fn get_rollout(
    State(cp): State<ControlPlane>,
    AppPath(id): AppPath<String>,
) -> Result<Json<Rollout>, AppError> {
    rollouts::load(&cp, &id)
        .await
        .map_err(internal)?
        .map(Json)
        .ok_or_else(|| AppError::not_found(format!("no rollout {id:?}")))
}
