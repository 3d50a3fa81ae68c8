//! `GET /metrics`: Prometheus text (OpenMetrics on request) that promtool accepts, the
//! names an orchestrator needs, its own token or listener, and no user data in any label.

use serde_json::{Value, json};

use crate::support::{self, TestServer};

const TOKEN: &str = "api-token-0123456789";
const METRICS_TOKEN: &str = "metrics-token-0123456789";

async fn scrape(
    server: &TestServer,
    token: Option<&str>,
    accept: Option<&str>,
) -> reqwest::Response {
    let mut request = support::client().get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.expect("send")
}

#[tokio::test]
async fn metrics_name_what_an_orchestrator_needs_and_promtool_accepts_them() {
    let server = support::spawn();
    assert_eq!(server.get("/api/health").await.status(), 200);
    assert_eq!(server.get("/api/no-such-thing").await.status(), 404);
    let task = json!({"payload": {"method": "GET", "path": "/api/health"}, "delay_ms": 60_000});
    assert_eq!(
        server.post_json("/api/queue/tasks", &task).await.status(),
        202
    );

    let response = scrape(&server, None, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.expect("text");
    for needle in [
        r#"toolshed_http_requests_total{method="GET",route="/api/health",status_class="2xx"} 1"#,
        r#"toolshed_http_requests_total{method="GET",route="unmatched",status_class="4xx"} 1"#,
        r#"toolshed_http_requests_total{method="POST",route="/api/queue/tasks",status_class="2xx"} 1"#,
        r#"toolshed_http_request_duration_seconds_bucket{route="/api/health",le="0.0005"}"#,
        "# TYPE toolshed_http_request_duration_seconds histogram",
        // The scrape itself is in flight.
        "toolshed_http_requests_in_flight 1",
        r#"toolshed_queue_tasks{state="pending"} 1"#,
        "toolshed_queue_oldest_pending_age_seconds ",
        "# TYPE toolshed_queue_attempts_total counter",
        r#"toolshed_queue_retries_total{kind="http"} 0"#,
        r#"toolshed_queue_dead_total{kind="webhook"} 0"#,
        "toolshed_storage_size_bytes ",
        "toolshed_backups_kept 0",
        "toolshed_backup_last_success_timestamp_seconds ",
        "toolshed_backups_failed 0",
        "toolshed_backups_not_sent 0",
        &format!(
            r#"toolshed_build_info{{version="{}","#,
            env!("CARGO_PKG_VERSION")
        ),
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
        "# TYPE toolshed_llm_gateway_overhead_seconds histogram",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    assert!(!text.contains(" summary\n"), "histograms, never summaries");
    if let Some((ok, said)) = support::promtool(&text) {
        assert!(ok, "promtool check metrics: {said}\n{text}");
    }

    let open = scrape(
        &server,
        None,
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    )
    .await;
    assert_eq!(
        open.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = open.text().await.expect("text");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[tokio::test]
async fn the_metrics_token_opens_metrics_and_nothing_else() {
    let server = support::spawn_with(&[
        ("TOOLSHED_API_TOKENS", TOKEN),
        ("TOOLSHED_METRICS_TOKEN", METRICS_TOKEN),
    ]);
    assert_eq!(scrape(&server, None, None).await.status(), 401);
    assert_eq!(scrape(&server, Some(TOKEN), None).await.status(), 401);
    assert_eq!(
        scrape(&server, Some(METRICS_TOKEN), None).await.status(),
        200
    );
    let api = support::client()
        .get(server.url("/api/kv/list"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(api.status(), 401);
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let server = support::spawn_with(&[
        ("TOOLSHED_API_TOKENS", TOKEN),
        ("TOOLSHED_METRICS_ADDR", "127.0.0.1:0"),
    ]);
    let line = server.wait_for_log(|l| l["message"] == "serving /metrics");
    let addr = line["addr"].as_str().expect("addr");
    let scraped = support::client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("send");
    assert_eq!(
        scraped.status(),
        200,
        "no token needed on the orchestrator's own listener"
    );
    assert!(
        scraped
            .text()
            .await
            .expect("text")
            .contains("toolshed_build_info")
    );
    let other = support::client()
        .get(format!("http://{addr}/api/kv/list"))
        .send()
        .await
        .expect("send");
    assert_eq!(other.status(), 404, "that listener serves metrics only");
    let main = support::client()
        .get(server.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(main.status(), 404, "nor does the API's serve them");

    let guarded = support::spawn_with(&[
        ("TOOLSHED_API_TOKENS", TOKEN),
        ("TOOLSHED_METRICS_ADDR", "127.0.0.1:0"),
        ("TOOLSHED_METRICS_TOKEN", METRICS_TOKEN),
    ]);
    let line = guarded.wait_for_log(|l| l["message"] == "serving /metrics");
    let url = format!("http://{}/metrics", line["addr"].as_str().expect("addr"));
    let refused = support::client().get(&url).send().await.expect("send");
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["code"], "unauthorized");
    let allowed = support::client()
        .get(&url)
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(allowed.status(), 200);
}

#[tokio::test]
async fn no_user_data_reaches_a_label() {
    const SECRET: &str = "zq7secretvalue";
    let server = support::spawn_with(&[("TOOLSHED_API_TOKENS", TOKEN)]);
    let spec: Value = support::client()
        .get(server.url("/openapi.json"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("spec");
    let paths = spec["paths"].as_object().expect("paths");
    let mut sent = 0;
    for (template, item) in paths {
        let path = template
            .replace("{*key}", &format!("{SECRET}/{SECRET}"))
            .replace("{*url}", &format!("https%3A%2F%2F{SECRET}.example%2F"))
            .split('{')
            .enumerate()
            .map(|(i, part)| match (i, part.split_once('}')) {
                (0, _) | (_, None) => part.to_owned(),
                (_, Some((_, rest))) => format!("{SECRET}{rest}"),
            })
            .collect::<String>();
        for method in item.as_object().expect("item").keys() {
            let Ok(method) = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            else {
                continue;
            };
            for token in [Some(TOKEN), None] {
                let mut request = support::client()
                    .request(
                        method.clone(),
                        server.url(&format!("{path}?q={SECRET}&{SECRET}=1")),
                    )
                    .header("x-secret", SECRET)
                    .header("user-agent", SECRET)
                    .header("x-request-id", SECRET)
                    .json(
                        &json!({SECRET: SECRET, "url": format!("https://{SECRET}.example/"),
                                  "messages": [{"role": "user", "content": SECRET}]}),
                    );
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let _ = request.send().await.expect("send");
                sent += 1;
            }
        }
    }
    for path in [
        format!("/{SECRET}"),
        format!("/api/{SECRET}/x"),
        format!("/api/kv/{SECRET}"),
    ] {
        let _ = support::client()
            .get(server.url(&path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("send");
    }
    assert!(sent > 40, "every route, with and without a token: {sent}");
    let text = scrape(&server, Some(TOKEN), None)
        .await
        .text()
        .await
        .expect("text");
    assert!(text.contains(r#"route="unmatched""#));
    assert!(
        !text.to_lowercase().contains(SECRET),
        "the secret reached /metrics:\n{text}"
    );
}
