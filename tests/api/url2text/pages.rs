//! url2text over HTTP against pages served by a local test server.

use crate::support;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{client, spawn_with};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use serde_json::{Value, json};

const ARTICLE: &str = r#"<!doctype html><html lang="en"><head><title>Brewing Tea</title>
<meta name="author" content="Ada Lovelace"><meta property="og:site_name" content="Tea Notes"></head>
<body><nav><a href="/">Home</a></nav><article><h1>Brewing Tea</h1>
<p>Tea is an aromatic beverage prepared by pouring hot water over the cured leaves of the tea plant. After water it is the most widely consumed drink in the world.</p>
<h2>Steps</h2><ol><li>Boil water</li><li>Steep the leaves</li></ol>
<p>Read about <a href="/camellia">the plant</a>. <img src="/leaf.png" alt="a leaf"></p>
<p>Green tea wants cooler water than black tea, which is brewed with boiling water for several minutes to bring out its flavour.</p>
</article><footer>© Tea Notes</footer></body></html>"#;

/// A local web server with the pages the tests read; counts hits on `/article`.
async fn pages() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new()
        .route(
            "/article",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], ARTICLE) }
            }),
        )
        .route("/hop1", get(|| async { Redirect::temporary("/hop2") }))
        .route("/hop2", get(|| async { Redirect::temporary("/article") }))
        .route(
            "/to-metadata",
            get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
        )
        .route(
            "/to-localhost",
            get(|| async { Redirect::temporary("http://localhost:9/secret") }),
        )
        .route(
            "/loop",
            get(|| async { Redirect::temporary("/loop") }),
        )
        .route(
            "/latin1",
            get(|| async {
                let mut body = b"<html><head><title>Caf\xe9</title></head><body><article><p>".to_vec();
                body.extend_from_slice(&b"Le caf\xe9 cr\xe8me est d\xe9licieux et tr\xe8s chaud le matin. ".repeat(12));
                body.extend_from_slice(b"</p></article></body></html>");
                ([(header::CONTENT_TYPE, "text/html; charset=ISO-8859-1")], body)
            }),
        )
        .route(
            "/meta-charset",
            get(|| async {
                let body = b"<html><head><meta charset=\"windows-1252\"></head><body><p>na\xefve \x93quotes\x94</p></body></html>".to_vec();
                ([(header::CONTENT_TYPE, "text/html")], body)
            }),
        )
        .route(
            "/notes.txt",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "plain *text* stays as it is") }),
        )
        .route(
            "/data.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], "{\"a\": 1}") }),
        )
        .route(
            "/doc.pdf",
            get(|| async { ([(header::CONTENT_TYPE, "application/pdf")], "%PDF-1.7") }),
        )
        .route(
            "/huge",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/html")], "<p>x</p>".repeat(300_000))
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .route("/gone", get(|| async { (StatusCode::NOT_FOUND, "no such page").into_response() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), hits)
}

/// Toolshed may reach the test server (127.0.0.1) but nothing else internal.
fn toolshed() -> support::TestServer {
    spawn_with(&[
        ("TOOLSHED_OUTBOUND_ALLOW_HOSTS", "127.0.0.1"),
        ("TOOLSHED_URL2TEXT_TIMEOUT_S", "1"),
        ("TOOLSHED_URL2TEXT_MAX_BYTES", "1048576"),
    ])
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON error");
    (status, body["error"].as_str().expect("error").to_owned())
}

#[tokio::test]
async fn reads_an_article_as_markdown_with_metadata_and_caches_it() {
    let (base, hits) = pages().await;
    let server = toolshed();
    let url = format!("{base}/article");
    let first = client()
        .get(server.url("/api/ai/url2text"))
        .query(&[("url", url.as_str())])
        .send()
        .await
        .expect("send");
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-cache"], "MISS");
    let body: Value = first.json().await.expect("json");
    let content = body["content"].as_str().expect("content");
    assert!(content.starts_with("# Brewing Tea"), "{content}");
    assert!(content.contains("## Steps"), "{content}");
    assert!(
        content.contains("1. Boil water") || content.contains("1.  Boil water"),
        "{content}"
    );
    assert!(
        content.contains(&format!("[the plant]({base}/camellia)")),
        "{content}"
    );
    assert!(!content.contains("© Tea Notes"), "{content}");
    assert_eq!(body["metadata"]["title"], "Brewing Tea");
    assert_eq!(body["metadata"]["byline"], "Ada Lovelace");
    assert_eq!(body["metadata"]["site_name"], "Tea Notes");
    assert_eq!(body["metadata"]["lang"], "en");
    assert_eq!(body["metadata"]["url"], url);
    assert!(body["metadata"]["word_count"].as_u64().expect("count") > 40);

    let second = client()
        .get(server.url("/api/ai/url2text"))
        .query(&[("url", url.as_str())])
        .send()
        .await
        .expect("send");
    assert_eq!(second.headers()["x-cache"], "HIT");
    assert_eq!(second.json::<Value>().await.expect("json"), body);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the hit did not fetch again"
    );

    let uncached = server
        .post_json("/api/ai/url2text", &json!({"url": url, "cache": false}))
        .await;
    assert_eq!(uncached.headers()["x-cache"], "MISS");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let metrics = server.get("/metrics").await.text().await.expect("metrics");
    for needle in [
        r#"toolshed_url2text_fetches_total{outcome="ok"} 2"#,
        r#"toolshed_url2text_fetches_total{outcome="cache_hit"} 1"#,
    ] {
        assert!(metrics.contains(needle), "no {needle:?} in:\n{metrics}");
    }
}

#[tokio::test]
async fn options_shape_the_answer() {
    let (base, _) = pages().await;
    let server = toolshed();
    let url = format!("{base}/article");
    let text: Value = server
        .post_json("/api/ai/url2text", &json!({"url": url, "format": "text"}))
        .await
        .json()
        .await
        .expect("json");
    let text = text["content"].as_str().expect("content");
    assert!(
        text.contains("aromatic beverage") && !text.contains('#') && !text.contains("]("),
        "{text}"
    );

    let html: Value = server
        .post_json("/api/ai/url2text", &json!({"url": url, "format": "html"}))
        .await
        .json()
        .await
        .expect("json");
    assert!(html["content"].as_str().expect("content").contains("<p>"));

    let bare: Value = server
        .post_json(
            "/api/ai/url2text",
            &json!({"url": url, "include_links": false, "include_images": false}),
        )
        .await
        .json()
        .await
        .expect("json");
    let bare = bare["content"].as_str().expect("content");
    assert!(
        bare.contains("the plant") && !bare.contains("](") && !bare.contains("!["),
        "{bare}"
    );

    let selected: Value = server
        .post_json("/api/ai/url2text", &json!({"url": url, "selector": "ol"}))
        .await
        .json()
        .await
        .expect("json");
    let selected = selected["content"].as_str().expect("content");
    assert!(
        selected.contains("Boil water") && !selected.contains("aromatic"),
        "{selected}"
    );

    let short: Value = server
        .post_json("/api/ai/url2text", &json!({"url": url, "max_chars": 20}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        short["content"].as_str().expect("content").chars().count(),
        20
    );

    let (status, error) = error_of(
        server
            .post_json("/api/ai/url2text", &json!({"url": url, "selector": "[["}))
            .await,
    )
    .await;
    assert_eq!((status, error.contains("selector")), (400, true), "{error}");
    let (status, _) = error_of(
        server
            .post_json("/api/ai/url2text", &json!({"url": url, "max_chars": 0}))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = error_of(
        server
            .post_json("/api/ai/url2text", &json!({"url": url, "format": "pdf"}))
            .await,
    )
    .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn path_style_takes_an_encoded_url_and_ignores_a_placeholder() {
    let (base, _) = pages().await;
    let server = toolshed();
    let encoded: String = format!("{base}/article")
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    for suffix in ["", "%7Burl%7D"] {
        let response = client()
            .get(server.url(&format!("/api/ai/url2text/{encoded}{suffix}")))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200, "suffix {suffix:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["metadata"]["title"], "Brewing Tea");
    }
}

#[tokio::test]
async fn redirects_are_followed_but_never_into_internal_addresses() {
    let (base, _) = pages().await;
    let server = toolshed();
    let followed: Value = server
        .post_json("/api/ai/url2text", &json!({"url": format!("{base}/hop1")}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(followed["metadata"]["url"], format!("{base}/article"));

    for hop in ["/to-metadata", "/to-localhost"] {
        let (status, error) = error_of(
            server
                .post_json("/api/ai/url2text", &json!({"url": format!("{base}{hop}")}))
                .await,
        )
        .await;
        assert_eq!(status, 403, "{hop}: {error}");
        assert!(error.contains("not allowed"), "{error}");
    }
    let (status, error) = error_of(
        server
            .post_json("/api/ai/url2text", &json!({"url": format!("{base}/loop")}))
            .await,
    )
    .await;
    assert_eq!(status, 502, "{error}");
    assert!(error.contains("redirect"), "{error}");
}

#[tokio::test]
async fn the_guard_refuses_internal_addresses_and_other_schemes() {
    let server = spawn_with(&[("TOOLSHED_URL2TEXT_TIMEOUT_S", "2")]);
    for (url, status) in [
        ("http://169.254.169.254/latest/meta-data/", 403),
        ("http://127.0.0.1:1/", 403),
        ("http://[::1]/", 403),
        ("http://10.0.0.1/", 403),
        ("http://localhost/", 403),
        ("file:///etc/passwd", 400),
        ("ftp://example.com/file", 400),
        ("data:text/html,hi", 400),
        ("gopher://example.com/", 400),
        ("not a url", 400),
    ] {
        let (got, error) = error_of(
            server
                .post_json("/api/ai/url2text", &json!({"url": url}))
                .await,
        )
        .await;
        assert_eq!(got, status, "{url}: {error}");
    }
}

#[tokio::test]
async fn allow_private_lifts_the_guard() {
    let (base, _) = pages().await;
    let server = spawn_with(&[("TOOLSHED_OUTBOUND_ALLOW_PRIVATE", "true")]);
    let response = server
        .post_json(
            "/api/ai/url2text",
            &json!({"url": format!("{base}/article")}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn charsets_from_the_header_or_meta_come_out_right() {
    let (base, _) = pages().await;
    let server = toolshed();
    let latin1: Value = server
        .post_json(
            "/api/ai/url2text",
            &json!({"url": format!("{base}/latin1"), "format": "text"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(
        latin1["content"]
            .as_str()
            .expect("content")
            .contains("Le café crème est délicieux"),
        "{latin1}"
    );
    let meta: Value = server
        .post_json(
            "/api/ai/url2text",
            &json!({"url": format!("{base}/meta-charset"), "format": "text"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(
        meta["content"]
            .as_str()
            .expect("content")
            .contains("naïve \u{201c}quotes\u{201d}"),
        "{meta}"
    );
}

#[tokio::test]
async fn text_and_json_pass_through_and_other_types_are_415() {
    let (base, _) = pages().await;
    let server = toolshed();
    let text: Value = server
        .post_json(
            "/api/ai/url2text",
            &json!({"url": format!("{base}/notes.txt")}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(text["content"], "plain *text* stays as it is");
    let data: Value = server
        .post_json(
            "/api/ai/url2text",
            &json!({"url": format!("{base}/data.json")}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(data["content"], "{\"a\": 1}");
    let (status, error) = error_of(
        server
            .post_json(
                "/api/ai/url2text",
                &json!({"url": format!("{base}/doc.pdf")}),
            )
            .await,
    )
    .await;
    assert_eq!(status, 415);
    assert!(error.contains("application/pdf"), "{error}");
}

#[tokio::test]
async fn upstream_errors_size_and_time_limits_are_clear() {
    let (base, _) = pages().await;
    let server = toolshed();
    let (status, error) = error_of(
        server
            .post_json("/api/ai/url2text", &json!({"url": format!("{base}/gone")}))
            .await,
    )
    .await;
    assert_eq!(status, 502);
    assert!(error.contains("404"), "{error}");
    let (status, error) = error_of(
        server
            .post_json("/api/ai/url2text", &json!({"url": format!("{base}/huge")}))
            .await,
    )
    .await;
    assert_eq!(status, 502);
    assert!(error.contains("larger than"), "{error}");
    let started = std::time::Instant::now();
    let (status, _) = error_of(
        server
            .post_json("/api/ai/url2text", &json!({"url": format!("{base}/slow")}))
            .await,
    )
    .await;
    assert_eq!(status, 504);
    assert!(started.elapsed() < Duration::from_secs(5));
}
