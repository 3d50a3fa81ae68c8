//! Fact database benchmark, all over HTTP against the release binary: load N facts
//! (default 1,000,000) through `Import` batches (`PATCH /api/data`); a two-pattern join
//! with one bound value (`POST /api/data/query` and a stored query's `GET`), median and p99;
//! 100 live subscriptions open (50 on `name`, 50 on `score`), each transaction renaming one
//! person: the time until that person's subscriber has the new result, and how many
//! subscriptions the transaction woke; the server's resident memory after all that.
//!
//! Run: `cargo bench --bench facts [facts]` (figures go to docs/PERFORMANCE.md, "Facts").

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

/// Attributes per imported person.
const ATTRIBUTES: usize = 5;
/// People per `PATCH` (`FACTS_BATCH` overrides).
const BATCH: usize = 2000;
const QUERIES: usize = 1000;
const SUBSCRIBERS: usize = 100;
const CHANGES: usize = 200;

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn person(i: usize) -> Value {
    json!({"email": format!("p{i}@example.com"), "name": format!("Person {i}"), "age": i % 90, "city": format!("c{}", i % 100), "score": i % 7})
}

fn email_query(i: usize, attribute: &str) -> String {
    json!({"select": {"v": "?v"}, "where": [
        {"Case": ["?p", "email", format!("p{i}@example.com")]},
        {"Case": ["?p", attribute, "?v"]}
    ]})
    .to_string()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let facts: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let people = facts / ATTRIBUTES;
    let batch: usize = std::env::var("FACTS_BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(BATCH);
    let dir =
        std::env::temp_dir().join(format!("toolshed-facts-{}", uuid::Uuid::new_v4().simple()));
    // FACTS_SERVER names another build to measure (an A/B of two binaries).
    let binary =
        std::env::var_os("FACTS_SERVER").unwrap_or_else(|| env!("CARGO_BIN_EXE_toolshed").into());
    let mut server = Command::new(binary)
        .arg("serve")
        .env_clear()
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("TOOLSHED_DATA_DIR", &dir)
        .env("TOOLSHED_DATA_MAX_BODY_BYTES", "67108864")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("toolshed");
    let pid = server.id();
    let stdout = server.stdout.take().expect("stdout");
    let (found, address) = std::sync::mpsc::channel();
    // Reads the log to its end: a full pipe would stall the server.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "listening"
                && let Some(addr) = v["addr"].as_str()
            {
                let _ = found.send(format!("http://{addr}"));
            }
        }
    });
    let base = address
        .recv_timeout(Duration::from_secs(30))
        .expect("the server listens");
    let http = reqwest::Client::new();
    let data = format!("{base}/api/data");

    // Load.
    let started = Instant::now();
    let mut i = 0;
    while i < people {
        let instructions: Vec<Value> = (i..(i + batch).min(people))
            .map(|p| json!({"Import": person(p)}))
            .collect();
        let response = http
            .patch(&data)
            .json(&instructions)
            .send()
            .await
            .expect("patch");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        i += batch;
    }
    let load = started.elapsed();
    println!(
        "load: {} facts ({people} people) in {:.2} s = {:.0} facts/s; RSS {:.1} MB",
        people * ATTRIBUTES,
        load.as_secs_f64(),
        (people * ATTRIBUTES) as f64 / load.as_secs_f64(),
        rss_mb(pid)
    );

    // Two-pattern join, one bound value.
    let mut post = Vec::with_capacity(QUERIES);
    for q in 0..QUERIES {
        let target = (q * 7919) % people;
        let body: Value = serde_json::from_str(&email_query(target, "name")).expect("json");
        let started = Instant::now();
        let answer: Value = http
            .post(format!("{data}/query"))
            .json(&body)
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("json");
        post.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(answer["rows"][0]["v"], format!("Person {target}"));
    }
    let stored = http
        .put(&data)
        .header("content-type", "application/synopsys-query+json")
        .body(email_query(people / 2, "name"))
        .send()
        .await
        .expect("put");
    let location = stored.url().path().to_owned();
    let mut get = Vec::with_capacity(QUERIES);
    for _ in 0..QUERIES {
        let started = Instant::now();
        let rows: Value = http
            .get(format!("{base}{location}"))
            .header("accept", "application/json")
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        get.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(rows.as_array().map(Vec::len), Some(1));
    }
    println!(
        "join (POST /api/data/query, HTTP round trip): median {:.3} ms, p99 {:.3} ms; stored query GET: median {:.3} ms, p99 {:.3} ms",
        percentile(&mut post, 0.5),
        percentile(&mut post, 0.99),
        percentile(&mut get, 0.5),
        percentile(&mut get, 0.99)
    );

    // Live: subscriber k watches person k's name (k < 50) or score (k >= 50).
    let mut streams = Vec::with_capacity(SUBSCRIBERS);
    for k in 0..SUBSCRIBERS {
        let attribute = if k < SUBSCRIBERS / 2 { "name" } else { "score" };
        let response = http
            .put(&data)
            .header("content-type", "application/synopsys-query+json")
            .body(email_query(k, attribute))
            .send()
            .await
            .expect("put");
        let stream = http
            .get(response.url().clone())
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("subscribe")
            .bytes_stream();
        streams.push(Box::pin(stream));
    }
    for stream in streams.iter_mut() {
        // The first event: the current result.
        tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("first event");
    }
    let mut notify = Vec::with_capacity(CHANGES);
    let mut silent_others = 0;
    for c in 0..CHANGES {
        let k = c % (SUBSCRIBERS / 2);
        let target = json!([{"Upsert": [
            {"/": toolshed::storage::facts::reference::Reference::of(&person(k)).expect("ref").to_link()},
            "name",
            format!("Person {k} v{c}")
        ]}]);
        let started = Instant::now();
        let response = http.patch(&data).json(&target).send().await.expect("patch");
        assert_eq!(response.status(), 200);
        let stream = &mut streams[k];
        tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the change");
        notify.push(started.elapsed().as_secs_f64() * 1000.0);
        // Any other subscriber that sent something would be a spurious event.
        for (j, other) in streams.iter_mut().enumerate() {
            if j != k
                && let Ok(Some(Ok(chunk))) =
                    tokio::time::timeout(Duration::ZERO, other.next()).await
                && !chunk.starts_with(b":")
            {
                silent_others += 1;
            }
        }
    }
    println!(
        "live ({SUBSCRIBERS} subscriptions, {} on the changed attribute): PATCH to event at the changed subscriber median {:.2} ms, p99 {:.2} ms; events at other subscribers: {silent_others}",
        SUBSCRIBERS / 2,
        percentile(&mut notify, 0.5),
        percentile(&mut notify, 0.99),
    );
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    for line in metrics.lines().filter(|l| l.starts_with("toolshed_data_")) {
        println!("  {line}");
    }
    println!("RSS after all: {:.1} MB", rss_mb(pid));
    drop(streams);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
