//! The layers every route gets (JSON errors for bad bodies, body limit, panic net, time
//! limit), proved on throw-away routes built in-process with the real layer stack.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use toolshed::app::{App, with_common_layers};
use toolshed::env::{Config, SettingsArgs};
use toolshed::middlewares::route_templates::RouteTemplates;
use toolshed::platform::auth::Access;
use toolshed::platform::extract::AppJson;
use toolshed::platform::log_format::RequestLineSink;
use toolshed::platform::outbound::{GuardPolicy, Outbound};
use toolshed::platform::state::{AppState, Shared};
use toolshed::storage::worker::Workers;
use toolshed::storage::{Store, StoreOptions};

#[derive(Deserialize)]
struct Greeting {
    #[allow(dead_code)]
    name: String,
}

async fn greet(AppJson(_): AppJson<Greeting>) -> &'static str {
    "hi"
}

async fn boom() -> &'static str {
    panic!("deliberate test panic")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

fn test_app(dir: &support::TempDir) -> App {
    let args = SettingsArgs {
        request_timeout_s: Some("1".into()),
        body_limit_bytes: Some("2048".into()),
        ..Default::default()
    };
    let config = Config::from_args(&args).expect("config");
    let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
    let state = AppState::new(Shared {
        access: Access::load(&config).expect("a loopback test instance may be open"),
        outbound: Outbound::new(GuardPolicy::default(), 4),
        config: config.clone(),
        workers: Arc::new(Workers::new(store.queue.clone())),
        store,
        started_at: Instant::now(),
        drained: CancellationToken::new(),
        metrics: Arc::new(toolshed::platform::metrics::Metrics::new(
            std::time::SystemTime::now(),
        )),
        background: TaskTracker::new(),
    });
    let routes = Router::new()
        .route("/greet", post(greet))
        .route(
            "/greet-big",
            post(greet).layer(DefaultBodyLimit::max(64 * 1024)),
        )
        .route("/boom", get(boom))
        .route("/slow", get(slow));
    let templates = RouteTemplates::new(["/greet", "/greet-big", "/boom", "/slow"]);
    with_common_layers(
        routes,
        state,
        &config,
        templates,
        RequestLineSink::default(),
    )
}

async fn call(app: &App, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

fn post_json(uri: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", content_type)
        .body(body.into())
        .expect("request")
}

#[tokio::test]
async fn malformed_json_is_400_saying_what_is_wrong() {
    let dir = support::temp_dir();
    let app = test_app(&dir);
    let (status, body) = call(&app, post_json("/greet", "application/json", "{\"name\": ")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().expect("error").contains("EOF"),
        "{body}"
    );
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_422() {
    let dir = support::temp_dir();
    let app = test_app(&dir);
    let (status, body) = call(
        &app,
        post_json("/greet", "application/json", "{\"nom\": 1}"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"].as_str().expect("error").contains("name"),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let dir = support::temp_dir();
    let app = test_app(&dir);
    let (status, body) = call(&app, post_json("/greet", "text/plain", "{\"name\": \"x\"}")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["code"], "unsupported_media_type");
}

#[tokio::test]
async fn body_over_the_limit_is_413_and_routes_can_raise_it() {
    let dir = support::temp_dir();
    let app = test_app(&dir);
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(10_000));
    let (status, body) = call(&app, post_json("/greet", "application/json", big.clone())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");
    let (status, _) = call(&app, post_json("/greet-big", "application/json", big)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_body_of_unknown_length_is_held_to_the_same_limit() {
    let dir = support::temp_dir();
    let app = test_app(&dir);
    let streamed = |json: String| {
        let chunks = json
            .into_bytes()
            .chunks(512)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>();
        Request::post("/greet")
            .header("content-type", "application/json")
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .expect("request")
    };
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(10_000));
    let (status, body) = call(&app, streamed(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");
    let (status, _) = call(&app, streamed("{\"name\": \"x\"}".into())).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_panicking_handler_answers_500_json_and_the_app_lives_on() {
    let dir = support::temp_dir();
    let app = test_app(&dir);
    let request = || Request::get("/boom").body(Body::empty()).expect("request");
    let (status, body) = call(&app, request()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["code"], "internal");
    let (status, _) = call(&app, request()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "still serving");
    let (status, _) = call(
        &app,
        post_json("/greet", "application/json", "{\"name\": \"x\"}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_slow_handler_is_cut_off_with_503_json() {
    let dir = support::temp_dir();
    let app = test_app(&dir);
    let started = Instant::now();
    let (status, body) = call(
        &app,
        Request::get("/slow").body(Body::empty()).expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
}
