//! Extraction speed over Mozilla Readability's test pages (`tests/fixtures/readability`),
//! without the network: median time per page (all pages, and pages of 50–200 KB — "a typical
//! 100 KB article"), and pages per second over the set, Markdown output.
//!
//! Run: `cargo bench --bench url2text`.

use std::path::PathBuf;
use std::time::Instant;

use toolshed::routes::ai::url2text::extract::{Format, Options, extract};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/readability");
    let mut pages: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures").flatten() {
        if let Ok(bytes) = std::fs::read(entry.path().join("source.html")) {
            pages.push((
                entry.file_name().to_string_lossy().into_owned(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    let options = Options {
        format: Format::Markdown,
        selector: None,
    };
    let rounds = 5;
    let mut all = Vec::new();
    let mut typical = Vec::new();
    let started = Instant::now();
    for _ in 0..rounds {
        for (_, html) in &pages {
            let t = Instant::now();
            let out = extract(html, "http://fakehost/test/page.html", &options).expect("extracts");
            std::hint::black_box(out);
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            all.push(ms);
            if (50_000..=200_000).contains(&html.len()) {
                typical.push(ms);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let bytes: usize = pages.iter().map(|(_, h)| h.len()).sum();
    println!(
        "url2text extraction, {} pages ({:.1} MB), {rounds} rounds, Markdown",
        pages.len(),
        bytes as f64 / 1e6
    );
    println!("median per page (all):          {:.2} ms", median(all));
    println!(
        "median per page (50-200 KB, n={}): {:.2} ms",
        typical.len() / rounds,
        median(typical)
    );
    println!(
        "throughput:                     {:.0} pages/s",
        (pages.len() * rounds) as f64 / seconds
    );
}
