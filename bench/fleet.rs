//! Fleet benchmark: a control plane (the release binary) with the `process` provider starts
//! 100 instances one after another, each timed from `POST /instances` to its first healthy
//! answer; then, with all 100 running, the control plane's own idle CPU over 20 s and each
//! instance's memory (RSS, PSS, anonymous); then one instance is SIGKILLed and timed until it answers
//! again.
//!
//! Run: `cargo bench --bench fleet` (figures go to docs/PERFORMANCE.md, "Fleet").

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const INSTANCES: usize = 100;
const TOKEN: &str = "fleet-bench-token-0123456789";
const IDLE: Duration = Duration::from_secs(20);

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("comm")
        .1
        .split_whitespace()
        .collect();
    (fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime")) / 100.0
}

/// A field of `/proc/<pid>/smaps_rollup` (`Rss`, `Pss`, `Private_Dirty`…), in MB.
fn memory_mb(pid: u64, field: &str) -> f64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    rollup
        .lines()
        .filter_map(|l| l.strip_prefix(field).and_then(|v| v.strip_prefix(':')))
        .filter_map(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .sum::<f64>()
        / 1024.0
}

fn rss_mb(pid: u64) -> f64 {
    memory_mb(pid, "Rss")
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

async fn healthy(http: &reqwest::Client, url: &str) -> bool {
    http.get(format!("{url}/api/health"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir =
        std::env::temp_dir().join(format!("toolshed-fleet-{}", uuid::Uuid::new_v4().simple()));
    let mut plane = Command::new(env!("CARGO_BIN_EXE_toolshed"))
        .args(["controlplane", "serve", "--port", "0", "--data-dir"])
        .arg(&dir)
        .env_clear()
        .env("TOOLSHED_CONTROLPLANE_TOKENS", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("control plane");
    let stdout = plane.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("a line").expect("utf-8");
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["message"] == "control plane listening"
        {
            break v["addr"].as_str().expect("addr").to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    let mut to_healthy = Vec::new();
    let mut instances = Vec::new();
    for n in 0..INSTANCES {
        let started = Instant::now();
        let created: Value = http
            .post(format!("{base}/instances"))
            .bearer_auth(TOKEN)
            .json(&json!({"user_id": format!("user-{n}")}))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        let url = created["url"].as_str().expect("url").to_owned();
        while !healthy(&http, &url).await {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        to_healthy.push(started.elapsed().as_secs_f64() * 1000.0);
        instances.push(created);
    }
    println!(
        "POST /instances to healthy, {INSTANCES} instances one after another: median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        percentile(&mut to_healthy, 0.5),
        percentile(&mut to_healthy, 0.9),
        percentile(&mut to_healthy, 1.0)
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = cpu_seconds(plane.id());
    tokio::time::sleep(IDLE).await;
    let used = cpu_seconds(plane.id()) - before;
    println!(
        "control plane CPU with {INSTANCES} instances running, over {} s: {:.2} % of one core",
        IDLE.as_secs(),
        used / IDLE.as_secs_f64() * 100.0
    );
    let listed: Value = http
        .get(format!("{base}/instances"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let pids: Vec<u64> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|i| i["pid"].as_u64())
        .collect();
    // RSS counts the binary's pages, which every instance maps from one page cache, in full
    // in each; PSS shares them out; the anonymous pages are each instance's own.
    let mut rss: Vec<f64> = pids.iter().map(|pid| rss_mb(*pid)).collect();
    let mut pss: Vec<f64> = pids.iter().map(|pid| memory_mb(*pid, "Pss")).collect();
    let mut own: Vec<f64> = pids
        .iter()
        .map(|pid| memory_mb(*pid, "Anonymous"))
        .collect();
    println!(
        "instance memory at idle: RSS median {:.1} MB (max {:.1}), PSS median {:.1} MB (max {:.1}), anonymous median {:.1} MB (max {:.1}); control plane RSS {:.1} MB",
        percentile(&mut rss, 0.5),
        percentile(&mut rss, 1.0),
        percentile(&mut pss, 0.5),
        percentile(&mut pss, 1.0),
        percentile(&mut own, 0.5),
        percentile(&mut own, 1.0),
        rss_mb(u64::from(plane.id()))
    );

    let victim = &listed[INSTANCES / 2];
    let url = victim["url"].as_str().expect("url").to_owned();
    let pid = victim["pid"].as_u64().expect("pid");
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    while !healthy(&http, &url).await {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!(
        "SIGKILLed instance healthy again after {:.0} ms",
        killed.elapsed().as_secs_f64() * 1000.0
    );

    for instance in listed.as_array().expect("list") {
        let id = instance["id"].as_str().expect("id");
        let _ = http
            .delete(format!("{base}/instances/{id}?purge=true"))
            .bearer_auth(TOKEN)
            .send()
            .await;
    }
    let _ = plane.kill();
    let _ = plane.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
