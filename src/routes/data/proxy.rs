//! Proxy mode (`TOOLSHED_DATA_UPSTREAM`): `/api/data…` goes to a synopsys server instead of
//! the embedded engine, as the dev proxy did before Toolshed: the prefix stripped, bodies
//! and event streams passed through as they come, a `Location` put back under `/api/data`,
//! and 502 when the upstream cannot be reached. The JSON conveniences translate to the
//! same protocol only where synopsys has it: they answer 501 in this mode, saying so.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::TryStreamExt;

use super::wire::failure;
use crate::platform::state::AppState;

const PREFIX: &str = "/api/data";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Hop-by-hop headers (RFC 9110 §7.6.1), the ones the client sets itself, and the caller's
/// credentials for this instance (never the upstream's business).
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "cookie",
    "set-cookie",
];

/// Whether `name` is not to be passed on: listed above, or named by `Connection`.
fn hop_by_hop(name: &str, headers: &axum::http::HeaderMap) -> bool {
    NOT_FORWARDED.contains(&name)
        || headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case(name))
}

#[derive(Clone)]
pub struct Proxy {
    upstream: String,
    client: reqwest::Client,
}

impl Proxy {
    pub fn new(upstream: &str, _app: &AppState) -> Result<Proxy, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the upstream client: {e}"))?;
        Ok(Proxy {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
        })
    }
}

/// The conveniences have no synopsys counterpart to forward to.
fn is_convenience(path: &str) -> bool {
    ["/transact", "/query", "/entities/"]
        .iter()
        .any(|p| path.starts_with(p))
}

pub async fn forward(State(proxy): State<Proxy>, request: Request, _next: Next) -> Response {
    let path = request
        .uri()
        .path()
        .strip_prefix(PREFIX)
        .unwrap_or_default()
        .to_owned();
    if is_convenience(&path) {
        return failure(
            StatusCode::NOT_IMPLEMENTED,
            "TOOLSHED_DATA_UPSTREAM is set: /api/data speaks synopsys' own protocol to the upstream (PATCH, PUT, GET); the JSON conveniences need the embedded engine",
        );
    }
    let mut url = format!("{}{path}", proxy.upstream);
    if let Some(query) = request.uri().query() {
        url.push('?');
        url.push_str(query);
    }
    let (parts, body) = request.into_parts();
    let mut outgoing = proxy.client.request(parts.method.clone(), &url);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name.as_str(), &parts.headers) {
            outgoing = outgoing.header(name, value);
        }
    }
    let body = reqwest::Body::wrap_stream(body.into_data_stream());
    let answer = match outgoing.body(body).send().await {
        Ok(answer) => answer,
        Err(e) => {
            return failure(
                StatusCode::BAD_GATEWAY,
                format!(
                    "the data upstream {} cannot be reached: {e}",
                    proxy.upstream
                ),
            );
        }
    };
    let status = answer.status();
    let mut headers = axum::http::HeaderMap::new();
    for (name, value) in answer.headers() {
        if !hop_by_hop(name.as_str(), answer.headers()) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(location) = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| relocate(l, &proxy.upstream))
        .and_then(|l| HeaderValue::from_str(&l).ok())
    {
        headers.insert(header::LOCATION, location);
    }
    let stream = answer.bytes_stream().map_err(std::io::Error::other);
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

/// The path of a URL or of an absolute path.
fn path_of(url: &str) -> &str {
    match url.find("://") {
        Some(i) => url[i + 3..]
            .find('/')
            .map_or("/", |slash| &url[i + 3 + slash..]),
        None => url,
    }
}

/// The upstream's `Location` as a path under `/api/data` (the upstream's own base path,
/// if it has one, taken off).
fn relocate(location: &str, upstream: &str) -> String {
    let path = path_of(location);
    let base = path_of(upstream).trim_end_matches('/');
    let path = match path.strip_prefix(base) {
        Some(rest) if !base.is_empty() && (rest.is_empty() || rest.starts_with('/')) => rest,
        _ => path,
    };
    if path.starts_with('/') {
        format!("{PREFIX}{path}")
    } else {
        format!("{PREFIX}/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_come_back_under_the_prefix() {
        assert_eq!(relocate("/ba4jcx", "http://up:1"), "/api/data/ba4jcx");
        assert_eq!(
            relocate("http://up:1/ba4jcx", "http://up:1"),
            "/api/data/ba4jcx"
        );
        assert_eq!(
            relocate("http://other:2/ba4jcx", "http://up:1"),
            "/api/data/ba4jcx"
        );
        assert_eq!(relocate("ba4jcx", "http://up:1"), "/api/data/ba4jcx");
        assert_eq!(
            relocate("/base/ba4jcx", "http://up:1/base/"),
            "/api/data/ba4jcx"
        );
        assert_eq!(
            relocate("/basement", "http://up:1/base"),
            "/api/data/basement"
        );
    }
}
