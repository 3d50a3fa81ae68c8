//! Turning a page into its main content: Mozilla Readability (the dom_smoothie port) for the
//! article and its metadata, Markdown, plain text or cleaned HTML out, and the whole body
//! when Readability finds no article. CPU-bound and not `Send`: run it on a blocking thread.

use dom_query::Document;
use dom_smoothie::{Config, Readability, TextMode};

/// What the caller asked for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Markdown,
    Text,
    Html,
}

/// How to extract.
#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    /// Keep only the elements matching this CSS selector (skips Readability).
    pub selector: Option<String>,
}

/// The result, as owned strings (the parser's types cannot cross threads).
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    pub content: String,
    pub title: Option<String>,
    pub byline: Option<String>,
    pub site_name: Option<String>,
    pub lang: Option<String>,
    pub published_time: Option<String>,
    pub excerpt: Option<String>,
    pub word_count: usize,
}

/// Why extraction failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("selector {0:?} is not a valid CSS selector")]
    BadSelector(String),
}

/// Elements never worth converting.
const SKIP: &[&str] = &[
    "script", "style", "meta", "head", "noscript", "template", "svg", "iframe",
];
/// A page with more elements than this is parsed by the fallback only.
const MAX_ELEMENTS: usize = 200_000;

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

fn render(nodes: &[dom_query::NodeRef<'_>], format: Format) -> String {
    let parts: Vec<String> = nodes
        .iter()
        .map(|node| match format {
            Format::Markdown => node.md(Some(SKIP)).to_string(),
            Format::Text => node.formatted_text().to_string(),
            Format::Html => node.html().to_string(),
        })
        .filter(|s| !s.trim().is_empty())
        .collect();
    parts.join("\n\n")
}

/// Metadata without an article (for the selector and fallback paths).
fn page_metadata(html: &str, url: &str) -> Extracted {
    match Readability::new(html, Some(url), None) {
        Ok(readability) => {
            let meta = readability.get_article_metadata(None);
            Extracted {
                title: non_empty(Some(meta.title)),
                byline: non_empty(meta.byline),
                site_name: non_empty(meta.site_name),
                lang: non_empty(meta.lang),
                published_time: non_empty(meta.published_time),
                excerpt: non_empty(meta.excerpt),
                ..Extracted::default()
            }
        }
        Err(_) => Extracted::default(),
    }
}

/// Extracts the main content of `html`, fetched from `url` (absolute; links are resolved
/// against it).
pub fn extract(html: &str, url: &str, options: &Options) -> Result<Extracted, ExtractError> {
    if let Some(selector) = &options.selector {
        let document = Document::from(html);
        let selection = document
            .try_select(selector)
            .ok_or_else(|| ExtractError::BadSelector(selector.clone()))?;
        let content = render(selection.nodes(), options.format);
        let text = selection.text();
        return Ok(Extracted {
            word_count: word_count(&text),
            content,
            ..page_metadata(html, url)
        });
    }
    let mode = match options.format {
        Format::Markdown => TextMode::Markdown,
        Format::Text | Format::Html => TextMode::Formatted,
    };
    let config = Config {
        text_mode: mode,
        max_elements_to_parse: MAX_ELEMENTS,
        ..Config::default()
    };
    let article = Readability::new(html, Some(url), Some(config)).and_then(|mut r| r.parse());
    match article {
        Ok(article) if !article.text_content.trim().is_empty() => {
            let title = non_empty(Some(article.title));
            let text = article.text_content.to_string();
            let content = match options.format {
                Format::Html => article.content.to_string(),
                Format::Text => text.trim().to_owned(),
                // Readability drops the article's own <h1>; the title takes its place.
                Format::Markdown => match &title {
                    Some(t) => format!("# {t}\n\n{}", text.trim()),
                    None => text.trim().to_owned(),
                },
            };
            Ok(Extracted {
                word_count: word_count(&text),
                content,
                title,
                byline: non_empty(article.byline),
                site_name: non_empty(article.site_name),
                lang: non_empty(article.lang),
                published_time: non_empty(article.published_time),
                excerpt: non_empty(article.excerpt),
            })
        }
        // No article found (or nothing in it): the whole body beats an empty answer.
        _ => {
            let document = Document::from(html);
            let body = document.select("body");
            let nodes: Vec<_> = if body.is_empty() {
                vec![document.root()]
            } else {
                body.nodes().to_vec()
            };
            let content = render(&nodes, options.format);
            let text: String = nodes.iter().map(|n| n.text().to_string()).collect();
            Ok(Extracted {
                word_count: word_count(&text),
                content: content.trim().to_owned(),
                ..page_metadata(html, url)
            })
        }
    }
}

/// Removes Markdown images (`![alt](src)`) unless `images`, and turns links
/// (`[text](href)`) into their text unless `links`. Linear in the input (brackets are
/// matched with a stack per line), since it runs on whatever a page contains.
pub fn strip_markdown(markdown: &str, images: bool, links: bool) -> String {
    if images && links {
        return markdown.to_owned();
    }
    let mut out = String::with_capacity(markdown.len());
    for line in markdown.split_inclusive('\n') {
        strip_line(line, images, links, &mut out);
    }
    out
}

/// For each opening delimiter, the index of its matching closing one.
fn matches(bytes: &[u8], open: u8, close: u8) -> Vec<usize> {
    let mut matched = vec![usize::MAX; bytes.len()];
    let mut stack = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        if b == open {
            stack.push(i);
        } else if b == close
            && let Some(o) = stack.pop()
        {
            matched[o] = i;
        }
    }
    matched
}

fn strip_line(line: &str, images: bool, links: bool, out: &mut String) {
    let bytes = line.as_bytes();
    let brackets = matches(bytes, b'[', b']');
    let parens = matches(bytes, b'(', b')');
    // `[` at i starts a link whose text ends at `]` and whose target ends before `end`.
    let link_end = |i: usize| -> Option<(usize, usize)> {
        let close = *brackets.get(i).filter(|&&c| c != usize::MAX)?;
        (bytes.get(close + 1) == Some(&b'('))
            .then(|| parens[close + 1])
            .filter(|&p| p != usize::MAX)
            .map(|p| (close, p + 1))
    };
    // At a link's `]`: where to continue, and whether to copy `](target)`.
    let mut jump = vec![usize::MAX; bytes.len()];
    let mut keep_target = vec![false; bytes.len()];
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if jump[i] != usize::MAX {
            out.push_str(&line[copied..i]);
            if keep_target[i] {
                out.push_str(&line[i..jump[i]]);
            }
            i = jump[i];
            copied = i;
            continue;
        }
        let image = bytes[i] == b'!' && bytes.get(i + 1) == Some(&b'[');
        let start = if image { i + 1 } else { i };
        if bytes[start] == b'['
            && let Some((close, end)) = link_end(start)
        {
            if image {
                out.push_str(&line[copied..i]);
                if images {
                    out.push_str(&line[i..end]);
                }
                i = end;
                copied = i;
                continue;
            }
            out.push_str(&line[copied..i]);
            if links {
                out.push('[');
            }
            jump[close] = end;
            keep_target[close] = links;
            i += 1;
            copied = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&line[copied..]);
}

/// Cuts `content` to at most `max` characters, at a character boundary.
pub fn truncate_chars(content: &mut String, max: usize) {
    if let Some((index, _)) = content.char_indices().nth(max) {
        content.truncate(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<html lang="en"><head><title>Tea - Notes</title>
        <meta name="author" content="Ada"><meta property="og:site_name" content="Notes"></head>
        <body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
        <article><h1>Tea</h1>
        <p>Tea is an aromatic beverage prepared by pouring hot water over cured leaves of the tea plant. It is the most widely consumed drink in the world after water, and there are many kinds.</p>
        <h2>Kinds</h2><ul><li>Green tea</li><li>Black tea</li></ul>
        <p>See <a href="/wiki/camellia">Camellia sinensis</a> for the plant. <img src="/leaf.png" alt="leaf"></p>
        <pre><code>brew(tea, 3 /* minutes */)</code></pre>
        <table><tr><th>Kind</th><th>Minutes</th></tr><tr><td>Green</td><td>2</td></tr></table>
        <p>Brewing time and temperature vary with the kind of tea; green tea wants cooler water than black tea, which is brewed with boiling water for several minutes.</p>
        </article><footer>Copyright</footer></body></html>"#;

    fn run(format: Format, selector: Option<&str>) -> Extracted {
        let options = Options {
            format,
            selector: selector.map(str::to_owned),
        };
        extract(PAGE, "https://notes.example/tea", &options).expect("extracts")
    }

    #[test]
    fn markdown_keeps_structure_and_absolute_links() {
        let out = run(Format::Markdown, None);
        assert!(out.content.starts_with("# Tea"), "{}", out.content);
        assert!(out.content.contains("## Kinds"), "{}", out.content);
        assert!(out.content.contains("- Green tea"), "{}", out.content);
        assert!(
            out.content
                .contains("(https://notes.example/wiki/camellia)"),
            "{}",
            out.content
        );
        assert!(out.content.contains("| Kind"), "{}", out.content);
        assert!(!out.content.contains("Copyright"), "{}", out.content);
        assert_eq!(out.byline.as_deref(), Some("Ada"));
        assert_eq!(out.site_name.as_deref(), Some("Notes"));
        assert_eq!(out.lang.as_deref(), Some("en"));
        assert!(out.word_count > 40);
    }

    #[test]
    fn text_and_html_formats() {
        let text = run(Format::Text, None);
        assert!(text.content.contains("aromatic beverage") && !text.content.contains('<'));
        let html = run(Format::Html, None);
        assert!(html.content.contains("<p>"));
    }

    #[test]
    fn a_selector_keeps_only_what_it_matches() {
        let out = run(Format::Markdown, Some("ul"));
        assert!(out.content.contains("Green tea") && !out.content.contains("aromatic"));
        assert!(matches!(
            extract(
                PAGE,
                "https://x.example/",
                &Options {
                    format: Format::Text,
                    selector: Some("[[".into())
                }
            ),
            Err(ExtractError::BadSelector(_))
        ));
    }

    #[test]
    fn pages_without_an_article_fall_back_to_the_body() {
        let options = Options {
            format: Format::Text,
            selector: None,
        };
        let out = extract(
            "<html><body><p>Short note.</p></body></html>",
            "https://x.example/",
            &options,
        )
        .expect("extracts");
        assert_eq!(out.content, "Short note.");
    }

    #[test]
    fn stripping_is_linear_on_hostile_input() {
        let hostile = "[".repeat(200_000) + &"](".repeat(1000);
        let started = std::time::Instant::now();
        let out = strip_markdown(&hostile, false, false);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(!out.is_empty());
    }

    #[test]
    fn images_and_links_can_be_stripped() {
        let md = "See [the plant](https://a/b_(c)) and ![leaf](https://a/leaf.png) here.";
        assert_eq!(
            strip_markdown(md, false, true),
            "See [the plant](https://a/b_(c)) and  here."
        );
        assert_eq!(
            strip_markdown(md, true, false),
            "See the plant and ![leaf](https://a/leaf.png) here."
        );
        assert_eq!(strip_markdown("a [b] c", false, false), "a [b] c");
        let mut s = "héllo".to_owned();
        truncate_chars(&mut s, 2);
        assert_eq!(s, "hé");
    }
}
