//! Storage benchmark: enqueue throughput, end-to-end delivery, enqueue-to-start latency, KV
//! get and set throughput, all through the Rust API at the server's durability (WAL,
//! synchronous=NORMAL: committed before acknowledged).
//!
//! Run: `cargo bench --bench storage` (figures go to docs/PERFORMANCE.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use toolshed::storage::entry::KvValue;
use toolshed::storage::key::KeyPart;
use toolshed::storage::queue::Outcome;
use toolshed::storage::task::NewTask;
use toolshed::storage::worker::Workers;
use toolshed::storage::{Store, StoreOptions};

const CALLERS: usize = 64;

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("toolshed-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default()).expect("store")
}

/// Runs `per_caller` operations in each of `CALLERS` concurrent tasks; answers ops/s.
async fn concurrent<F, Fut>(per_caller: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let mut handles = Vec::new();
    for c in 0..CALLERS {
        let op = op.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_caller {
                op(c * per_caller + i).await;
            }
        }));
    }
    for h in handles {
        h.await.expect("caller");
    }
    (CALLERS * per_caller) as f64 / started.elapsed().as_secs_f64()
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = temp_dir();
    let store = open(&dir);
    println!(
        "storage benchmark ({} cores, {} concurrent callers)",
        num_cpus(),
        CALLERS
    );

    // 1. Enqueues from concurrent callers (no workers running).
    let queue = store.queue.clone();
    let rate = concurrent(500, move |i| {
        let queue = queue.clone();
        async move {
            queue
                .enqueue(NewTask::new("bench", json!({"i": i})))
                .await
                .expect("enqueue");
        }
    })
    .await;
    println!("enqueue (durable, concurrent):      {rate:>10.0} tasks/s");

    // 2. End to end: enqueue N and let no-op workers drain them.
    let dir2 = temp_dir();
    let store2 = open(&dir2);
    let n = 20_000;
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Workers::new(store2.queue.clone());
    let counter = done.clone();
    workers.register("noop", 256, move |_: Value, _: u32| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            Outcome::Succeeded(Value::Null)
        }
    });
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let loop_handle = tokio::spawn(Arc::new(workers).run(shutdown.clone(), Duration::from_secs(5)));
    let queue = store2.queue.clone();
    concurrent(n / CALLERS, move |i| {
        let queue = queue.clone();
        async move {
            queue
                .enqueue(NewTask::new("noop", json!({"i": i})))
                .await
                .expect("enqueue");
        }
    })
    .await;
    let total = (n / CALLERS) * CALLERS;
    loop {
        let stats = store2.queue.stats().await.expect("stats");
        let succeeded = stats
            .counts
            .iter()
            .find(|(s, _)| s.as_str() == "succeeded")
            .map_or(0, |c| c.1);
        if succeeded as usize >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!(
        "delivered end to end (no-op):       {rate:>10.0} tasks/s  ({total} tasks, enqueue to succeeded)"
    );
    shutdown.cancel();
    loop_handle.await.expect("loop");

    // 3. Enqueue-to-start latency on an idle queue.
    let dir3 = temp_dir();
    let store3 = open(&dir3);
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let mut workers = Workers::new(store3.queue.clone());
    workers.register("probe", 4, move |_: Value, _: u32| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(Instant::now());
            Outcome::Succeeded(Value::Null)
        }
    });
    let shutdown = CancellationToken::new();
    let loop_handle = tokio::spawn(Arc::new(workers).run(shutdown.clone(), Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut samples = Vec::new();
    for _ in 0..500 {
        let sent = Instant::now();
        store3
            .queue
            .enqueue(NewTask::new("probe", Value::Null))
            .await
            .expect("enqueue");
        let started = rx.recv().await.expect("started");
        samples.push(started.duration_since(sent).as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!(
        "enqueue-to-start latency (idle):    p50 {:.3} ms  p99 {:.3} ms",
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99)
    );
    shutdown.cancel();
    loop_handle.await.expect("loop");

    // 4. KV set with concurrent writers, then get.
    let kv = store.kv.clone();
    let keys = 10_000;
    let rate = concurrent(keys / CALLERS + 1, move |i| {
        let kv = kv.clone();
        async move {
            kv.set(
                vec![
                    KeyPart::String("bench".into()),
                    KeyPart::Int((i % keys) as i64),
                ],
                KvValue::Json(json!({"n": i, "name": "some small value"})),
                None,
            )
            .await
            .expect("set");
        }
    })
    .await;
    println!("kv set (durable, concurrent):       {rate:>10.0} ops/s");
    let kv = store.kv.clone();
    let rate = concurrent(5_000, move |i| {
        let kv = kv.clone();
        async move {
            let key = [
                KeyPart::String("bench".into()),
                KeyPart::Int(((i * 7919) % keys) as i64),
            ];
            assert!(kv.get(&key).await.expect("get").is_some());
        }
    })
    .await;
    println!("kv get (concurrent):                {rate:>10.0} ops/s");

    for d in [dir, dir2, dir3] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
