//! The README's examples run as written: every `curl` line of its `sh` blocks that calls this
//! instance's health, KV, queue, attestation, data or profile routes is run, top to bottom,
//! against one fresh server (the LLM and url2text examples need a provider or the internet
//! and are left out). Each must answer 2xx, or a status its comment names
//! (`# 204 (409 while running)`).

use std::time::Duration;

use serde_json::Value;

use crate::support;

/// The routes whose examples run offline.
const RUNNABLE: [&str; 6] = [
    "/api/health",
    "/api/kv/",
    "/api/queue/",
    "/api/attestation",
    "/api/data",
    "/api/profile",
];

/// One command of a README block, with the comment written after it.
struct Example {
    line: String,
    comment: String,
}

/// The `sh` blocks' commands, continuation lines and multi-line quotes joined.
fn examples(readme: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_block = line == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        if pending.is_empty() && line.trim_start().starts_with('#') {
            if let Some(last) = out.last_mut() {
                last.comment.push_str(line);
                last.comment.push('\n');
            }
            continue;
        }
        pending.push_str(line.strip_suffix('\\').unwrap_or(line));
        pending.push('\n');
        if line.ends_with('\\') || pending.matches('\'').count() % 2 == 1 {
            continue;
        }
        let (command, comment) = split_comment(&pending);
        out.push(Example {
            line: command,
            comment,
        });
        pending.clear();
    }
    out
}

/// The command and its trailing `# comment` (a `#` outside quotes).
fn split_comment(text: &str) -> (String, String) {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '#' if !quoted && text[..i].ends_with(char::is_whitespace) => {
                return (text[..i].to_owned(), text[i..].to_owned());
            }
            _ => {}
        }
    }
    (text.to_owned(), String::new())
}

/// Shell words: quotes (single or double) keep whitespace, whitespace separates.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in command.chars() {
        match c {
            '\'' | '"' if quote.is_none() => {
                quote = Some(c);
                started = true;
            }
            c if quote == Some(c) => quote = None,
            c if c.is_whitespace() && quote.is_none() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// What `printf 'X'` writes, for the `\xHH` escapes the README uses.
fn printf_bytes(format: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = format.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).expect("hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("a \\x escape"));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Runs one example's `curl` against `server`: its status, body, and whether the body is
/// JSON by its type (a stored blob comes back as the type it was stored with).
async fn run(server: &support::TestServer, example: &Example) -> Option<(u16, String, bool)> {
    let mut words = words(&example.line);
    let mut stdin = Vec::new();
    if words.first().map(String::as_str) == Some("printf") {
        stdin = printf_bytes(&words[1]);
        assert_eq!(words[2], "|", "{}", example.line);
        words.drain(..3);
    }
    if words.first().map(String::as_str) != Some("curl") {
        return None;
    }
    let (mut method, mut url, mut body, mut query_get) = (None, None, None, false);
    let mut headers = Vec::new();
    let mut query = Vec::new();
    let mut args = words[1..].iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-s" | "-sN" => {}
            "-X" => method = args.next().cloned(),
            "-H" => headers.push(args.next().cloned().expect("a header")),
            "-d" => body = args.next().map(|d| d.as_bytes().to_vec()),
            // Only `@-` (the printf before it) can run here; a file is an offline example's.
            "--data-binary" => {
                body = Some(match args.next().map(String::as_str) {
                    Some("@-") => stdin.clone(),
                    _ => Vec::new(),
                });
            }
            "-F" => {
                args.next();
            }
            "-G" => query_get = true,
            // Where the body goes does not change the answer's status.
            "-o" => {
                args.next();
            }
            "--data-urlencode" => query.push(args.next().cloned().expect("a pair")),
            other if other.starts_with("localhost:") => url = Some(other.to_owned()),
            other => panic!(
                "the README test does not know curl's {other}: {}",
                example.line
            ),
        }
    }
    let url = url.expect("a URL");
    // Another port is another program's (the control plane's): not this instance's.
    let path = url.strip_prefix("localhost:8000")?;
    if !RUNNABLE.iter().any(|r| path.starts_with(r)) {
        return None;
    }
    let method = method.unwrap_or_else(|| {
        if body.is_some() && !query_get {
            "POST".into()
        } else {
            "GET".into()
        }
    });
    let mut request =
        support::client().request(method.parse().expect("a method"), server.url(path));
    for pair in &query {
        let (name, value) = pair.split_once('=').expect("name=value");
        request = request.query(&[(name, value)]);
    }
    let mut has_type = false;
    for header in &headers {
        let (name, value) = header.split_once(':').expect("name: value");
        has_type |= name.eq_ignore_ascii_case("content-type");
        request = request.header(name.trim(), value.trim());
    }
    if let Some(body) = body {
        if !has_type {
            // What curl sends with -d.
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        request = request.body(body);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|t| t.contains("json"));
    Some((status, response.text().await.expect("body"), json))
}

#[tokio::test]
async fn the_readme_examples_run_top_to_bottom_on_a_fresh_instance() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    // The webhook example names this secret; its receiver is on the internet, so that task
    // only retries here.
    // No configfs-tsm, whatever the machine has: the attestation example is the software one.
    let server = support::spawn_with(&[
        ("TOOLSHED_WEBHOOK_HEADER_EXAMPLE", "Bearer example"),
        ("TOOLSHED_ATTESTATION_TSM_DIR", "/nonexistent/tsm/report"),
    ]);
    let mut ran = 0;
    for example in examples(&readme) {
        let Some((status, body, json)) = run(&server, &example).await else {
            continue;
        };
        ran += 1;
        let named = example.comment.contains(&status.to_string());
        assert!(
            (200..300).contains(&status) || named,
            "`{}` answered {status}: {body}",
            example.line.trim()
        );
        if !body.is_empty() && json {
            serde_json::from_str::<Value>(&body)
                .unwrap_or_else(|e| panic!("`{}` answered non-JSON ({e}): {body}", example.line));
        }
        // Tasks run in the background: give the one just enqueued a moment, as a reader would.
        if example.line.contains("/api/queue/tasks -H") || example.line.contains("/api/kv/atomic") {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(ran >= 15, "only {ran} examples ran");
    // The atomic example's task wrote its entry: the enqueue named a real route.
    let welcome: Value = server.get_json("/api/kv/entries/welcome/alan").await;
    assert_eq!(welcome["value"], "sent", "{welcome}");
    let stats: Value = server.get_json("/api/queue/stats").await;
    assert_eq!(stats["counts"]["dead"], 0, "no example task died: {stats}");
}

#[test]
fn the_example_reader_splits_words_comments_and_escapes() {
    assert_eq!(
        words("curl -s -H 'a: b c' x"),
        vec!["curl", "-s", "-H", "a: b c", "x"]
    );
    let (command, comment) = split_comment("curl 'x # y' # z\n");
    assert_eq!(
        (command.as_str(), comment.as_str()),
        ("curl 'x # y' ", "# z\n")
    );
    assert_eq!(printf_bytes("\\x89PNG"), b"\x89PNG");
}
