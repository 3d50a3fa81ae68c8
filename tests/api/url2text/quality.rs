//! Extraction quality against Mozilla Readability's own test pages
//! (`tests/fixtures/readability/`, Apache-2.0, vendored with their licence): for every page, word-level recall and precision of
//! our text against the text of the article Readability extracts. Prints a table; fails if
//! the means fall below the targets (recall ≥ 0.95, precision ≥ 0.90).

use std::collections::HashMap;
use std::path::PathBuf;

use toolshed::routes::ai::url2text::extract::{Format, Options, extract};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/readability")
}

/// Lower-cased words (letters and digits), counted.
fn words(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

fn overlap(a: &HashMap<String, usize>, b: &HashMap<String, usize>) -> usize {
    a.iter()
        .map(|(w, n)| (*n).min(*b.get(w).unwrap_or(&0)))
        .sum()
}

#[test]
fn extraction_matches_readability_on_its_test_pages() {
    let dir = fixtures();
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixtures at {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("source.html").exists() && p.join("expected.html").exists())
        .collect();
    pages.sort();
    assert!(
        pages.len() > 50,
        "expected the fixture pages, found {}",
        pages.len()
    );

    let (mut recall_sum, mut precision_sum) = (0.0, 0.0);
    let mut report = Vec::new();
    for page in &pages {
        let source = std::fs::read(page.join("source.html")).expect("source");
        let source = String::from_utf8_lossy(&source);
        let expected = std::fs::read_to_string(page.join("expected.html")).expect("expected");
        let expected_text = dom_query::Document::from(expected.as_str())
            .root()
            .text()
            .to_string();
        let options = Options {
            format: Format::Text,
            selector: None,
        };
        let got = extract(&source, "http://fakehost/test/page.html", &options).expect("extracts");
        let (want, have) = (words(&expected_text), words(&got.content));
        let common = overlap(&want, &have) as f64;
        let total_want = want.values().sum::<usize>().max(1) as f64;
        let total_have = have.values().sum::<usize>().max(1) as f64;
        let (recall, precision) = (common / total_want, common / total_have);
        recall_sum += recall;
        precision_sum += precision;
        let name = page
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        report.push(format!(
            "{name:<45} recall {recall:.3}  precision {precision:.3}"
        ));
    }
    let n = pages.len() as f64;
    let (recall, precision) = (recall_sum / n, precision_sum / n);
    println!("{}", report.join("\n"));
    println!(
        "{} pages: mean recall {recall:.3}, mean precision {precision:.3}",
        pages.len()
    );
    assert!(recall >= 0.95, "mean recall {recall:.3} < 0.95");
    assert!(precision >= 0.90, "mean precision {precision:.3} < 0.90");
}
