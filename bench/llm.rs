//! LLM gateway benchmark: the latency Toolshed adds in front of a zero-latency provider.
//!
//! A mock OpenAI server (in this process, answering a fixed `chat.completion` at once) and
//! the release `toolshed` binary (ENV=production, JSON logs read by this process). Open-loop
//! load at a fixed rate (default 1,000 req/s; requests are sent on schedule whether or not
//! earlier ones finished), over keep-alive connections, measured three ways:
//!
//! 1. straight to the mock (the floor: client + loopback + mock),
//! 2. through `POST /api/ai/llm` with `cache: false` (every request reaches the mock),
//! 3. through `POST /api/ai/llm` for a cached answer (no request reaches the mock),
//!
//! and, for 2, the gateway's own figure from its log: total time minus time waiting for the
//! provider (`overhead_ms`). "Added" latency is a percentile of 2 or 3 minus the same
//! percentile of 1.
//!
//! Run: `cargo bench --bench llm` (optional args: rate per second, seconds per phase).
//! Figures go to docs/PERFORMANCE.md.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};

/// The answer to a request with tools: two calls.
const TOOL_ANSWER: &str = r#"{"id":"chatcmpl-2","object":"chat.completion","created":1735000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"celsius\"}"}},{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{\"zone\":\"Europe/Paris\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":80,"completion_tokens":30,"total_tokens":110}}"#;

const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1735000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":9,"total_tokens":28}}"#;

async fn start_mock(calls: Arc<AtomicUsize>) -> String {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |body: String| {
            calls.fetch_add(1, Ordering::Relaxed);
            let answer = if body.contains("\"tools\"") {
                TOOL_ANSWER
            } else {
                ANSWER
            };
            async move { ([("content-type", "application/json")], answer) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind mock");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// Sends `rate` requests per second for `seconds`, each on schedule; returns latencies.
async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    rate: u64,
    seconds: u64,
) -> Vec<Duration> {
    let body = serde_json::to_vec(body).expect("body");
    open_loop_with(client, url, |_| body.clone(), rate, seconds).await
}

/// Like `open_loop`, with request `i`'s body from `body(i)`.
async fn open_loop_with(
    client: &reqwest::Client,
    url: &str,
    body: impl Fn(u64) -> Vec<u8>,
    rate: u64,
    seconds: u64,
) -> Vec<Duration> {
    let total = rate * seconds;
    let started = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        let at = started + Duration::from_micros(i * 1_000_000 / rate);
        tokio::time::sleep_until(at).await;
        let request = client
            .post(url)
            .header("content-type", "application/json")
            .body(body(i));
        handles.push(tokio::spawn(async move {
            let sent = Instant::now();
            let response = request.send().await.expect("send");
            assert!(response.status().is_success(), "{}", response.status());
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
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn pct_f(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rate: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(rate, seconds));
}

const BENCH_TOKEN: &str = "bench-token-0123456789abcdef";

async fn run(rate: u64, seconds: u64) {
    let calls = Arc::new(AtomicUsize::new(0));
    let mock = start_mock(calls.clone()).await;
    let data_dir =
        std::env::temp_dir().join(format!("toolshed-llm-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_toolshed"))
        .arg("serve")
        .env_clear()
        .env("PORT", "0")
        .env("ENV", "production")
        .env("LOG_FORMAT", "json")
        .env("TOOLSHED_DATA_DIR", &data_dir)
        .env("TOOLSHED_API_TOKENS", BENCH_TOKEN)
        .env("OPENAI_BASE_URL", format!("{mock}/v1"))
        .env("OPENAI_API_KEY", "bench")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start toolshed (cargo bench builds it)");
    let stdout = child.stdout.take().expect("stdout");
    let overheads: Arc<Mutex<Vec<f64>>> = Arc::default();
    let sink = overheads.clone();
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v["message"] == "listening" {
                let _ = addr_tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
            }
            if v["message"] == "llm answer"
                && v["cache"] == "miss"
                && let Some(ms) = v["overhead_ms"].as_f64()
            {
                sink.lock().expect("overheads").push(ms);
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("toolshed listening");
    let gateway = format!("http://{addr}/api/ai/llm");
    // Production needs an API token; the mock ignores it on the direct calls.
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

    let direct_body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 64});
    let miss_body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 64, "cache": false});
    let hit_body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 64, "cache": true});
    let direct_url = format!("{mock}/v1/chat/completions");
    // A tool-calling turn: three tools in, a call and its result in the history, two calls out.
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "description": "Local time in a zone", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}},
        {"type": "function", "function": {"name": "search", "description": "Search the web", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}},
    ]);
    let history = json!([
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "search", "arguments": "{\"query\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "Paris is the capital of France."},
    ]);
    let direct_tools = json!({"model": "gpt-4o-mini", "messages": history, "tools": tools, "max_completion_tokens": 64});
    let tools_body = json!({"model": "gpt-4o-mini", "messages": history, "tools": tools, "max_tokens": 64, "cache": false});

    // Warm-up: connections, allocator, SQLite pages; and the cache entry for phase 3.
    open_loop(&client, &direct_url, &direct_body, rate, 1).await;
    open_loop(&client, &gateway, &miss_body, rate, 1).await;
    open_loop(&client, &gateway, &hit_body, 100, 1).await;
    overheads.lock().expect("overheads").clear();

    let direct = open_loop(&client, &direct_url, &direct_body, rate, seconds).await;
    let before = calls.load(Ordering::Relaxed);
    let through = open_loop(&client, &gateway, &miss_body, rate, seconds).await;
    let reached = calls.load(Ordering::Relaxed) - before;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut logged = overheads.lock().expect("overheads").clone();
    logged.sort_by(f64::total_cmp);
    overheads.lock().expect("overheads").clear();
    let direct_tooled = open_loop(&client, &direct_url, &direct_tools, rate, seconds).await;
    let tooled = open_loop(&client, &gateway, &tools_body, rate, seconds).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut logged_tools = overheads.lock().expect("overheads").clone();
    logged_tools.sort_by(f64::total_cmp);
    let before = calls.load(Ordering::Relaxed);
    let hits = open_loop(&client, &gateway, &hit_body, rate, seconds).await;
    let hit_calls = calls.load(Ordering::Relaxed) - before;
    // Cache on, every prompt new: a lookup that misses, the call, and the write.
    let run_id = uuid::Uuid::new_v4();
    let writes = open_loop_with(
        &client,
        &gateway,
        |i| {
            serde_json::to_vec(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("Hi {run_id} {i}")}], "max_tokens": 64}))
                .expect("body")
        },
        rate,
        seconds,
    )
    .await;

    println!("LLM gateway, open loop at {rate} req/s for {seconds} s per phase");
    println!("| path | n | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for (name, l) in [
        ("straight to the mock", &direct),
        ("through Toolshed, cache off", &through),
        ("through Toolshed, cache hit", &hits),
        ("through Toolshed, cache miss + write", &writes),
        ("straight to the mock, tool-calling turn", &direct_tooled),
        ("through Toolshed, tool-calling turn, cache off", &tooled),
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
        "added by Toolshed (cache off): p50 {:.3} ms, p99 {:.3} ms",
        pct(&through, 0.5) - pct(&direct, 0.5),
        pct(&through, 0.99) - pct(&direct, 0.99)
    );
    println!(
        "added by Toolshed (cache miss + write): p50 {:.3} ms, p99 {:.3} ms",
        pct(&writes, 0.5) - pct(&direct, 0.5),
        pct(&writes, 0.99) - pct(&direct, 0.99)
    );
    println!(
        "cache hit, end to end: p50 {:.3} ms, p99 {:.3} ms ({hit_calls} provider calls)",
        pct(&hits, 0.5),
        pct(&hits, 0.99)
    );
    println!(
        "gateway's own overhead (log, total - provider): n {}, p50 {:.3} ms, p99 {:.3} ms",
        logged.len(),
        pct_f(&logged, 0.5),
        pct_f(&logged, 0.99)
    );
    println!(
        "added by Toolshed (tool-calling turn, cache off): p50 {:.3} ms, p99 {:.3} ms",
        pct(&tooled, 0.5) - pct(&direct_tooled, 0.5),
        pct(&tooled, 0.99) - pct(&direct_tooled, 0.99)
    );
    println!(
        "gateway's own overhead, tool-calling turn: n {}, p50 {:.3} ms, p99 {:.3} ms",
        logged_tools.len(),
        pct_f(&logged_tools, 0.5),
        pct_f(&logged_tools, 0.99)
    );
    println!("provider calls in the cache-off phase: {reached}");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data_dir);
}
