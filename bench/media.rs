//! Media benchmark: cache hits of `/api/ai/img` and `/api/ai/transcribe`, and the memory of
//! serving one large blob to many clients at once.
//!
//! A mock fal.ai queue (in this process) makes a 100 KB image, a 20 MB image and a
//! transcription; the release `toolshed` binary (ENV=production, a token) runs in front of
//! it. After one miss each, open-loop load at a fixed rate (default 200 req/s; requests go
//! on schedule whether or not earlier ones finished) measures:
//!
//! 1. `GET /api/ai/img?prompt=…` answered from the cache (the 100 KB image's bytes),
//! 2. `POST /api/ai/transcribe` of a 64 KB WAV answered from the cache,
//!
//! then 50 clients download the 20 MB image's file at once while the instance's resident
//! memory is sampled every 5 ms (peak minus idle).
//!
//! Run: `cargo bench --bench media` (optional args: rate per second, seconds per phase).
//! Figures go to docs/PERFORMANCE.md.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Value, json};

const BENCH_TOKEN: &str = "bench-token-0123456789abcdef";
const BIG: usize = 20 * 1024 * 1024;
const SMALL: usize = 100 * 1024;

/// Image bytes of `size`: a PNG's signature, then filler.
fn image(size: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(size, 7);
    bytes
}

/// A 64 KB WAV file (16-bit mono PCM).
fn wav() -> Vec<u8> {
    let samples = 32 * 1024;
    let data_len = (samples * 2) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&32_000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(44 + samples * 2, 1);
    out
}

/// The mock fal queue: every model's request completes at once; images are big when the
/// prompt says so.
async fn start_mock() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind mock");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = Router::new()
        .route(
            "/fal-ai/{*model}",
            post(|State(base): State<String>, axum::Json(input): axum::Json<Value>| async move {
                let kind = if input.get("audio_url").is_some() {
                    "speech"
                } else if input["prompt"].as_str().is_some_and(|p| p.contains("big")) {
                    "big"
                } else {
                    "small"
                };
                axum::Json(json!({"request_id": kind,
                    "status_url": format!("{base}/requests/{kind}/status"),
                    "response_url": format!("{base}/requests/{kind}")}))
            }),
        )
        .route(
            "/requests/{kind}/status",
            get(|| async { axum::Json(json!({"status": "COMPLETED"})) }),
        )
        .route(
            "/requests/{kind}",
            get(|State(base): State<String>, axum::extract::Path(kind): axum::extract::Path<String>| async move {
                if kind == "speech" {
                    axum::Json(json!({"text": "Hello.", "chunks": [{"timestamp": [0.0, 1.0], "text": "Hello."}]}))
                } else {
                    axum::Json(json!({"images": [{"url": format!("{base}/files/{kind}")}], "has_nsfw_concepts": [false]}))
                }
            }),
        )
        .route(
            "/files/{kind}",
            get(|axum::extract::Path(kind): axum::extract::Path<String>| async move {
                image(if kind == "big" { BIG } else { SMALL })
            }),
        )
        .with_state(base.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// Sends `rate` requests per second for `seconds`, each on schedule; returns latencies.
async fn open_loop(
    rate: u64,
    seconds: u64,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Vec<Duration> {
    let total = rate * seconds;
    let started = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        tokio::time::sleep_until(started + Duration::from_micros(i * 1_000_000 / rate)).await;
        let request = request();
        handles.push(tokio::spawn(async move {
            let sent = Instant::now();
            let response = request.send().await.expect("send");
            assert!(response.status().is_success(), "{}", response.status());
            assert_eq!(response.headers()["x-cache"], "HIT");
            let _ = response.bytes().await.expect("body");
            sent.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(handles.len());
    for h in handles {
        latencies.push(h.await.expect("task"));
    }
    latencies.sort();
    latencies
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// The resident memory of process `pid`, in KB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rate: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(rate, seconds));
}

async fn run(rate: u64, seconds: u64) {
    let mock = start_mock().await;
    let data_dir =
        std::env::temp_dir().join(format!("toolshed-media-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_toolshed"))
        .arg("serve")
        .env_clear()
        .env("PORT", "0")
        .env("ENV", "production")
        .env("LOG_FORMAT", "json")
        .env("TOOLSHED_DATA_DIR", &data_dir)
        .env("TOOLSHED_API_TOKENS", BENCH_TOKEN)
        .env("FAL_KEY", "bench")
        .env("FAL_QUEUE_URL", &mock)
        .env("TOOLSHED_OUTBOUND_ALLOW_HOSTS", "127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start toolshed (cargo bench builds it)");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "listening"
            {
                let _ = addr_tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("toolshed listening");
    let base = format!("http://{addr}");
    let mut auth = reqwest::header::HeaderMap::new();
    auth.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {BENCH_TOKEN}")).expect("header"),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .default_headers(auth)
        .build()
        .expect("client");

    // The misses: each made once.
    let small_url = format!("{base}/api/ai/img?prompt=a%20small%20lighthouse");
    let big: Value = client
        .post(format!("{base}/api/ai/img"))
        .header("accept", "application/json")
        .json(&json!({"prompt": "a big lighthouse"}))
        .send()
        .await
        .expect("big image")
        .json()
        .await
        .expect("json");
    let big_url = format!("{base}{}", big["url"].as_str().expect("url"));
    client.get(&small_url).send().await.expect("small image");
    let audio = wav();
    let speech_url = format!("{base}/api/ai/transcribe");
    let transcribe = || {
        client
            .post(&speech_url)
            .header("content-type", "audio/wav")
            .body(audio.clone())
    };
    transcribe().send().await.expect("transcription");
    // Warm-up: connections and pages.
    open_loop(rate, 1, || client.get(&small_url)).await;
    open_loop(rate, 1, transcribe).await;

    let images = open_loop(rate, seconds, || client.get(&small_url)).await;
    let speech = open_loop(rate, seconds, transcribe).await;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_kb(pid);
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kb(pid));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let started = Instant::now();
    let downloads = (0..50).map(|_| {
        let request = client.get(&big_url);
        async move {
            let bytes = request
                .send()
                .await
                .expect("send")
                .bytes()
                .await
                .expect("body");
            assert_eq!(bytes.len(), BIG);
        }
    });
    futures_util::future::join_all(downloads).await;
    let took = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");

    println!("Media cache hits, open loop at {rate} req/s for {seconds} s per phase");
    println!("| path | n | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for (name, l) in [
        ("GET /api/ai/img (100 KB image, cache hit)", &images),
        ("POST /api/ai/transcribe (64 KB WAV, cache hit)", &speech),
    ] {
        println!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            l.len(),
            pct(l, 0.5),
            pct(l, 0.9),
            pct(l, 0.99),
            pct(l, 1.0)
        );
    }
    println!(
        "50 clients downloading one 20 MB image at once: {:.2} s; resident memory idle {} KB, peak {} KB (+{} KB)",
        took.as_secs_f64(),
        idle,
        peak,
        peak.saturating_sub(idle)
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data_dir);
}
