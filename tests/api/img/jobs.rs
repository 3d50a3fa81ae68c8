//! Image generation as a background job.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::generation::server;
use crate::support::mock_img::{self, PNG, Script};
use crate::support::{self, TestServer};

async fn wait_done(server: &TestServer, url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let job = server.get_json(url).await;
        if job["status"] == "done" || job["status"] == "failed" {
            return job;
        }
        assert!(Instant::now() < deadline, "job still {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_makes_the_image_in_the_background() {
    let mock = mock_img::start().await;
    let server = server(&mock, None, &[]);
    let response = server
        .post_json("/api/ai/img/jobs", &json!({"prompt": "a job"}))
        .await;
    assert_eq!(response.status(), 202);
    let created: Value = response.json().await.expect("json");
    let url = created["url"].as_str().expect("url").to_owned();
    let job = wait_done(&server, &url).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["content_type"], "image/png");
    let file = server.get(job["url"].as_str().expect("url")).await;
    assert_eq!(file.bytes().await.expect("bytes").as_ref(), PNG);
    // The synchronous route now answers from the cache.
    let response = server.get("/api/ai/img?prompt=a%20job").await;
    assert_eq!(response.headers()["x-cache"], "HIT");
    assert_eq!(mock.submits(), 1);

    // A bad request is refused before it is queued; other ids are no image jobs.
    let refused = server
        .post_json(
            "/api/ai/img/jobs",
            &json!({"prompt": "x", "image_size": "poster"}),
        )
        .await;
    assert_eq!(refused.status(), 400);
    assert_eq!(server.get("/api/ai/img/jobs/999").await.status(), 404);
    // A failing generation ends as a failed job with the reason.
    mock.set(Script {
        nsfw: true,
        ..Default::default()
    });
    let created: Value = server
        .post_json("/api/ai/img/jobs", &json!({"prompt": "flagged"}))
        .await
        .json()
        .await
        .expect("json");
    let job = wait_done(&server, created["url"].as_str().expect("url")).await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["error"].as_str().expect("error").contains("safety"),
        "{job}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_a_restart() {
    let mock = mock_img::start_with(Script {
        submit_delay: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    let dir = support::temp_dir();
    let mut first = server(&mock, Some(dir.path()), &[]);
    let created: Value = first
        .post_json("/api/ai/img/jobs", &json!({"prompt": "across a restart"}))
        .await
        .json()
        .await
        .expect("json");
    // Stop while the provider is still working on it.
    while mock.submits() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10));
    mock.set(Script::default());
    let second = server(&mock, Some(dir.path()), &[]);
    let job = wait_done(&second, created["url"].as_str().expect("url")).await;
    assert_eq!(job["status"], "done", "{job}");
    let file = second.get(job["url"].as_str().expect("url")).await;
    assert_eq!(file.bytes().await.expect("bytes").as_ref(), PNG);
}
