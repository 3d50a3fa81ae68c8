use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use reqwest::Url;

use super::extract::{self, Format, Options};
use super::fetch::{self, Kind};
use super::schemas::{PageMetadata, Url2TextRequest, Url2TextResponse};
use super::state::Url2Text;
use super::{cache, charset};
use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::{AppJson, AppPath, AppQuery};

const MAX_CHARS_LIMIT: usize = 10_000_000;

/// The request with every default filled in, as the cache key sees it.
fn normalized(request: &Url2TextRequest, url: &Url) -> String {
    serde_json::json!({
        "url": url.as_str(),
        "format": request.format.unwrap_or(Format::Markdown),
        "selector": request.selector,
        "include_links": request.include_links.unwrap_or(true),
        "include_images": request.include_images.unwrap_or(true),
        "max_chars": request.max_chars,
    })
    .to_string()
}

fn with_cache_header(response: Url2TextResponse, hit: bool) -> Response {
    let mut answer = Json(response).into_response();
    answer.headers_mut().insert(
        "x-cache",
        HeaderValue::from_static(if hit { "HIT" } else { "MISS" }),
    );
    answer
}

/// Fetches, extracts and shapes one page, through the cache.
async fn read(service: &Url2Text, request: Url2TextRequest) -> Result<Response, AppError> {
    let state = &service.app;
    let url = Url::parse(request.url.trim()).map_err(|e| {
        AppError::bad_request(format!("url {:?} is not a valid URL: {e}", request.url))
    })?;
    state.outbound.check(&url)?;
    if request
        .max_chars
        .is_some_and(|n| n == 0 || n > MAX_CHARS_LIMIT)
    {
        return Err(AppError::bad_request(format!(
            "max_chars must be from 1 to {MAX_CHARS_LIMIT}"
        )));
    }
    let config = &state.config;
    let use_cache = request.cache.unwrap_or(true) && !config.url2text_cache_ttl_s.is_zero();
    let key = normalized(&request, &url);
    if use_cache && let Some(hit) = cache::lookup(&state.store.cache, &key).await {
        service.metrics.fetched("cache_hit");
        return Ok(with_cache_header(hit, true));
    }

    let fetched = fetch::fetch(
        &state.outbound,
        url,
        config.url2text_timeout_s,
        config.url2text_max_bytes,
    )
    .await;
    service
        .metrics
        .fetched(fetched.as_ref().map_or_else(|e| e.code, |_| "ok"));
    let page = fetched?;
    let format = request.format.unwrap_or(Format::Markdown);
    let final_url = page.final_url.to_string();
    let mut extracted = match page.kind {
        Kind::Text => {
            let text = charset::decode(&page.body, page.content_type.as_deref(), false);
            extract::Extracted {
                word_count: text.split_whitespace().count(),
                content: text,
                ..Default::default()
            }
        }
        Kind::Html => {
            let html = charset::decode(&page.body, page.content_type.as_deref(), true);
            let options = Options {
                format,
                selector: request.selector.clone(),
            };
            let base = final_url.clone();
            let (images, links) = (
                request.include_images.unwrap_or(true),
                request.include_links.unwrap_or(true),
            );
            // Parsing a large page takes a core for milliseconds: bound how many run at once
            // and keep them off the threads that serve requests.
            let _permit = service
                .extractions
                .acquire()
                .await
                .map_err(AppError::internal)?;
            tokio::task::spawn_blocking(move || {
                let mut out = extract::extract(&html, &base, &options)?;
                if format == Format::Markdown {
                    out.content = extract::strip_markdown(&out.content, images, links);
                }
                Ok::<_, extract::ExtractError>(out)
            })
            .await
            .map_err(AppError::internal)?
            .map_err(|e| AppError::bad_request(e.to_string()))?
        }
    };
    if let Some(max) = request.max_chars {
        extract::truncate_chars(&mut extracted.content, max);
    }
    let response = Url2TextResponse {
        content: extracted.content,
        metadata: PageMetadata {
            title: extracted.title,
            byline: extracted.byline,
            site_name: extracted.site_name,
            lang: extracted.lang,
            published_time: extracted.published_time,
            excerpt: extracted.excerpt,
            word_count: extracted.word_count,
            url: final_url,
        },
    };
    if use_cache {
        cache::store(
            &state.store.cache,
            &key,
            &response,
            config.url2text_cache_ttl_s,
        )
        .await;
    }
    Ok(with_cache_header(response, false))
}

/// Read a page as Markdown (or text, or clean HTML) — the URL in the query string.
#[utoipa::path(
    get,
    path = "/api/ai/url2text",
    tag = "ai",
    params(Url2TextRequest),
    responses(
        (status = 200, description = "The page's main content; `X-Cache: HIT|MISS`", body = Url2TextResponse),
        (status = 400, description = "Not an http(s) URL, or a bad option", body = ErrorBody),
        (status = 403, description = "The URL leads to an internal address", body = ErrorBody),
        (status = 415, description = "The page is not HTML, text, Markdown or JSON", body = ErrorBody),
        (status = 502, description = "The page answered an error, or is too large", body = ErrorBody),
        (status = 503, description = "As many fetches as allowed are running (TOOLSHED_OUTBOUND_CONCURRENCY)", body = ErrorBody),
        (status = 504, description = "The page did not answer in time", body = ErrorBody),
        (status = 508, description = "The page is this instance's own url2text", body = ErrorBody),
    )
)]
pub async fn read_query(
    State(service): State<Url2Text>,
    AppQuery(request): AppQuery<Url2TextRequest>,
) -> Result<Response, AppError> {
    read(&service, request).await
}

/// Read a page, the URL in the path.
///
/// The URL percent-encoded in the path, as `GET /api/ai/url2text/https%3A%2F%2Fexample.com`
/// (a trailing `{…}` placeholder, as API clients append, is ignored; a query string belongs
/// to the URL).
#[utoipa::path(
    get,
    path = "/api/ai/url2text/{*url}",
    tag = "ai",
    params(("url" = String, Path, pattern = "^[hH][tT][tT][pP][sS]?(:|%3[aA])", description = "The page's URL (http or https), percent-encoded")),
    responses(
        (status = 200, description = "The page's main content; `X-Cache: HIT|MISS`", body = Url2TextResponse),
        (status = 400, description = "Not an http(s) URL", body = ErrorBody),
        (status = 403, description = "The URL leads to an internal address", body = ErrorBody),
        (status = 415, description = "The page is not HTML, text, Markdown or JSON", body = ErrorBody),
        (status = 502, description = "The page answered an error, or is too large", body = ErrorBody),
        (status = 503, description = "As many fetches as allowed are running (TOOLSHED_OUTBOUND_CONCURRENCY)", body = ErrorBody),
        (status = 504, description = "The page did not answer in time", body = ErrorBody),
        (status = 508, description = "The page is this instance's own url2text", body = ErrorBody),
    )
)]
pub async fn read_path(
    State(service): State<Url2Text>,
    AppPath(path): AppPath<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let mut url = path.trim().to_owned();
    if url.ends_with('}')
        && let Some(open) = url.rfind('{')
    {
        url.truncate(open);
    }
    if let Some(query) = query.filter(|q| !q.is_empty() && !url.contains('?')) {
        url = format!("{url}?{query}");
    }
    if url.is_empty() {
        return Err(AppError::bad_request(
            "put the page's URL after /api/ai/url2text/",
        ));
    }
    read(
        &service,
        Url2TextRequest {
            url,
            format: None,
            selector: None,
            include_links: None,
            include_images: None,
            max_chars: None,
            cache: None,
        },
    )
    .await
}

/// Read a page with options: format, selector, links, images, length, cache.
#[utoipa::path(
    post,
    path = "/api/ai/url2text",
    tag = "ai",
    request_body = Url2TextRequest,
    responses(
        (status = 200, description = "The page's main content; `X-Cache: HIT|MISS`", body = Url2TextResponse),
        (status = 400, description = "Not an http(s) URL, a bad selector or option", body = ErrorBody),
        (status = 403, description = "The URL leads to an internal address", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "The page is not HTML, text, Markdown or JSON", body = ErrorBody),
        (status = 422, description = "Body of the wrong shape", body = ErrorBody),
        (status = 502, description = "The page answered an error, or is too large", body = ErrorBody),
        (status = 503, description = "As many fetches as allowed are running (TOOLSHED_OUTBOUND_CONCURRENCY)", body = ErrorBody),
        (status = 504, description = "The page did not answer in time", body = ErrorBody),
        (status = 508, description = "The page is this instance's own url2text", body = ErrorBody),
    )
)]
pub async fn read_post(
    State(service): State<Url2Text>,
    AppJson(request): AppJson<Url2TextRequest>,
) -> Result<Response, AppError> {
    read(&service, request).await
}
