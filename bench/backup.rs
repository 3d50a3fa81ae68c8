//! Backup benchmark: a 1 GB data directory (a 0.8 GB database of incompressible values and
//! 0.2 GB of blobs) backed up while a writer writes without pause, with the longest write
//! stall during the backup beside the longest before it; the restore of that archive; and
//! the scheduler's idle CPU with 1,000 schedules beside none.
//!
//! Run: `cargo bench --bench backup` (needs about 4 GB free in the temp dir; figures go to
//! docs/PERFORMANCE.md, "Backups").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use toolshed::storage::backup::restore;
use toolshed::storage::entry::KvValue;
use toolshed::storage::key::KeyPart;
use toolshed::storage::schedule::ScheduleSpec;
use toolshed::storage::{Store, StoreOptions};

const DB_BYTES: usize = 800 << 20;
const ROW_BYTES: usize = 64 << 10;
const BLOBS: usize = 200;
const BLOB_BYTES: usize = 1 << 20;
const SCHEDULES: usize = 1000;
const IDLE_WINDOW: Duration = Duration::from_secs(20);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "toolshed-bench-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).expect("store")
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let meta = entry.metadata().expect("meta");
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

async fn fill(store: &Store) {
    let rows = DB_BYTES / ROW_BYTES;
    for batch in 0..rows / 256 {
        store
            .db
            .write(move |ctx| {
                let mut insert = ctx.conn.prepare_cached(
                    "INSERT INTO kv (key, value, encoding, versionstamp) VALUES (?1, randomblob(?2), 2, 1)",
                )?;
                for i in batch * 256..(batch + 1) * 256 {
                    let mut key = vec![0xffu8];
                    key.extend_from_slice(&(i as u64).to_be_bytes());
                    insert.execute(rusqlite::params![key, ROW_BYTES as i64])?;
                }
                Ok(())
            })
            .await
            .expect("fill");
    }
    for _ in 0..BLOBS {
        let mut bytes = vec![0u8; BLOB_BYTES];
        getrandom::fill(&mut bytes).expect("random");
        store.blobs.put(bytes.into()).await.expect("blob");
    }
}

/// Writes one small entry after another until `stop`; each write's latency in ms. Writes
/// that took over 20 ms are printed with when they started.
fn writer(store: Store, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<f64>> {
    let origin = Instant::now();
    tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut n: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            let key = vec![KeyPart::String("bench".into()), KeyPart::Int(n as i64)];
            let started = Instant::now();
            store
                .kv
                .set(key, KvValue::Json(json!({"n": n})), None)
                .await
                .expect("write");
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if ms > 20.0 {
                println!(
                    "  a write took {ms:.1} ms, {:.2} s in",
                    (started - origin).as_secs_f64()
                );
            }
            latencies.push(ms);
            n += 1;
        }
        latencies
    })
}

fn summary(latencies: &mut [f64]) -> String {
    latencies.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    format!(
        "{} writes, p50 {:.2} ms, p99 {:.2} ms, longest {:.1} ms",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

/// CPU seconds this process has used (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("comm")
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

async fn idle_cpu_percent(schedules: usize) -> f64 {
    let dir = temp_dir("schedules");
    let store = open(&dir);
    for i in 0..schedules {
        let spec = ScheduleSpec {
            cron: format!("{} {} 1 1 *", i % 60, (i / 60) % 24),
            timezone: "Europe/Berlin".into(),
            task: json!({"kind": "http", "payload": {"method": "GET", "path": "/api/health"}}),
            catch_up: true,
        };
        store
            .schedules
            .put(&format!("s{i}"), spec, None)
            .await
            .expect("schedule");
    }
    let stop = CancellationToken::new();
    let scheduler = store.schedules.spawn(stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = cpu_seconds();
    tokio::time::sleep(IDLE_WINDOW).await;
    let used = cpu_seconds() - before;
    stop.cancel();
    let _ = scheduler.await;
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    used / IDLE_WINDOW.as_secs_f64() * 100.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = temp_dir("data");
    let store = open(&dir);
    let started = Instant::now();
    fill(&store).await;
    println!(
        "data directory: {:.2} GB (filled in {:.1} s)",
        dir_bytes(&dir) as f64 / 1e9,
        started.elapsed().as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let before = writer(store.clone(), stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut before = before.await.expect("writer");

    let stop = Arc::new(AtomicBool::new(false));
    let during = writer(store.clone(), stop.clone());
    let started = Instant::now();
    let info = store.backups.take().await.expect("backup");
    let backup_s = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut during = during.await.expect("writer");
    println!(
        "backup: {:.2} GB archive in {backup_s:.2} s ({} blobs)",
        info.size as f64 / 1e9,
        info.blobs
    );
    println!("writes before the backup: {}", summary(&mut before));
    println!("writes during the backup: {}", summary(&mut during));

    let archive = dir.join("backups").join(format!("{}.tar", info.id));
    let target = temp_dir("restored").join("data");
    let started = Instant::now();
    let restored = restore::restore(&archive, &target, None).expect("restore");
    println!(
        "restore: {} files, {:.2} GB in {:.2} s",
        restored.files,
        restored.bytes as f64 / 1e9,
        started.elapsed().as_secs_f64()
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(target.parent().expect("parent"));

    let none = idle_cpu_percent(0).await;
    let thousand = idle_cpu_percent(SCHEDULES).await;
    println!(
        "idle CPU over {} s: {none:.2} % with no schedule, {thousand:.2} % with {SCHEDULES}",
        IDLE_WINDOW.as_secs()
    );
}
