//! Fetching a page through the guarded outbound client: the guard, the timeout, the size cap,
//! the status check and the decision whether the body is a page to read or text to pass on.

use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use reqwest::Url;

use crate::platform::error::AppError;
use crate::platform::outbound::{FETCH_HEADER, Outbound, classify, read_capped};

/// What a fetched body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// HTML: extract the article.
    Html,
    /// Plain text, Markdown or JSON: pass through as it is.
    Text,
}

/// A fetched page.
#[derive(Debug)]
pub struct Page {
    /// Where the page was found, after redirects.
    pub final_url: Url,
    pub content_type: Option<String>,
    pub kind: Kind,
    pub body: Bytes,
}

const ACCEPT: &str = "text/html,application/xhtml+xml,text/plain;q=0.9,text/markdown;q=0.9,application/json;q=0.8,*/*;q=0.5";

/// Decides from the media type (or, when there is none, the first bytes).
fn kind_of(content_type: Option<&str>, body: &[u8]) -> Result<Kind, AppError> {
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media.as_str() {
        "text/html" | "application/xhtml+xml" => Ok(Kind::Html),
        "text/plain" | "text/markdown" | "text/x-markdown" | "application/json" => Ok(Kind::Text),
        m if m.ends_with("+json") => Ok(Kind::Text),
        "" => {
            let start = body
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(0);
            Ok(if body.get(start) == Some(&b'<') {
                Kind::Html
            } else {
                Kind::Text
            })
        }
        other => Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            format!("the page is {other}; url2text reads HTML, plain text, Markdown and JSON"),
        )),
    }
}

/// Fetches `url` (already checked against the guard), following at most 5 redirects, each
/// checked again.
pub async fn fetch(
    outbound: &Outbound,
    url: Url,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Page, AppError> {
    outbound.check(&url)?;
    // Held until the body is read: it bounds the fetches running at once, and its token
    // lets the instance refuse a fetch of itself.
    let fetch = outbound.begin_fetch(timeout).await?;
    let response = outbound
        .guarded()?
        .get(url)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .header(FETCH_HEADER, fetch.token.as_str())
        .timeout(timeout)
        .send()
        .await
        .map_err(classify)?;
    let status = response.status();
    if !status.is_success() {
        return Err(AppError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_status",
            format!("the page answered {status}"),
        ));
    }
    let final_url = response.url().clone();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Refuse before reading a body we will not use.
    if content_type.is_some() {
        kind_of(content_type.as_deref(), b"")?;
    }
    let body = read_capped(response, max_bytes).await?;
    drop(fetch);
    let kind = kind_of(content_type.as_deref(), &body)?;
    Ok(Page {
        final_url,
        content_type,
        kind,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_decide_the_kind() {
        assert_eq!(
            kind_of(Some("text/html; charset=utf-8"), b"").ok(),
            Some(Kind::Html)
        );
        assert_eq!(
            kind_of(Some("application/ld+json"), b"").ok(),
            Some(Kind::Text)
        );
        assert_eq!(kind_of(None, b"  <!doctype html>").ok(), Some(Kind::Html));
        assert_eq!(kind_of(None, b"just words").ok(), Some(Kind::Text));
        let refused = kind_of(Some("application/pdf"), b"").expect_err("pdf is refused");
        assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(refused.message.contains("application/pdf"));
    }
}
