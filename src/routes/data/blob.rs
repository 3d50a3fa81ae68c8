//! A stored blob's bytes, whole or one range (RFC 9110 §14: `bytes=first-last` with an
//! inclusive end, `bytes=first-`, `bytes=-suffix`). Several ranges in one request are
//! answered with the whole blob, which RFC 9110 allows.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub fn serve(media: &str, bytes: Vec<u8>, headers: &HeaderMap) -> Response {
    let len = bytes.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len));
    let (status, body, content_range) = match range {
        None | Some(Range::Ignored) => (StatusCode::OK, bytes, None),
        Some(Range::Unsatisfiable) => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            Vec::new(),
            Some(format!("bytes */{len}")),
        ),
        Some(Range::Part(first, last)) => {
            let part = bytes
                .get(first as usize..=last as usize)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            (
                StatusCode::PARTIAL_CONTENT,
                part,
                Some(format!("bytes {first}-{last}/{len}")),
            )
        }
    };
    let mut response = (status, body).into_response();
    let out = response.headers_mut();
    if let Ok(media) = HeaderValue::from_str(media) {
        out.insert(header::CONTENT_TYPE, media);
    }
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Stored bytes are the caller's, not this API's pages: a browser must not run them here.
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    if let Some(value) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
        out.insert(header::CONTENT_RANGE, value);
    }
    response
}

#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// Not a single byte range we serve: the whole blob.
    Ignored,
    Unsatisfiable,
    /// First and last byte, inclusive.
    Part(u64, u64),
}

fn parse_range(value: &str, len: u64) -> Range {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Range::Ignored;
    };
    if spec.contains(',') {
        return Range::Ignored;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Range::Ignored;
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => Range::Ignored,
        (true, false) => match number(last) {
            Some(0) => Range::Unsatisfiable,
            Some(_) if len == 0 => Range::Unsatisfiable,
            Some(suffix) => Range::Part(len.saturating_sub(suffix), len - 1),
            None => Range::Ignored,
        },
        (false, open_end) => {
            let Some(first) = number(first) else {
                return Range::Ignored;
            };
            let last = if open_end {
                Some(u64::MAX)
            } else {
                number(last)
            };
            match last {
                None => Range::Ignored,
                Some(last) if last < first => Range::Ignored,
                Some(_) if first >= len => Range::Unsatisfiable,
                Some(last) => Range::Part(first, last.min(len - 1)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-3", 10), Range::Part(0, 3));
        assert_eq!(parse_range("bytes=2-", 10), Range::Part(2, 9));
        assert_eq!(parse_range("bytes=-4", 10), Range::Part(6, 9));
        assert_eq!(parse_range("bytes=-40", 10), Range::Part(0, 9));
        assert_eq!(parse_range("bytes=5-100", 10), Range::Part(5, 9));
        assert_eq!(parse_range("bytes=10-", 10), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=4-2", 10), Range::Ignored);
        assert_eq!(parse_range("bytes=0-1,4-5", 10), Range::Ignored);
        assert_eq!(parse_range("items=0-1", 10), Range::Ignored);
    }
}
