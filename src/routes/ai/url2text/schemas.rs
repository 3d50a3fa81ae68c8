//! The url2text service's request and response bodies.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::Format;

/// `POST /api/ai/url2text` (the same options are accepted as query parameters of
/// `GET /api/ai/url2text?url=…`).
#[derive(Debug, Clone, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
#[schema(example = json!({"url": "https://example.com/blog/post", "format": "markdown", "include_images": false, "max_chars": 20000}))]
pub struct Url2TextRequest {
    /// The page: an absolute http or https URL.
    #[schema(
        format = "uri",
        min_length = 1,
        pattern = "^[hH][tT][tT][pP][sS]?://[^/?#\\s]+"
    )]
    #[param(
        format = "uri",
        min_length = 1,
        pattern = "^[hH][tT][tT][pP][sS]?://[^/?#\\s]+"
    )]
    pub url: String,
    /// `markdown` (default), `text` or `html` (the cleaned article HTML).
    pub format: Option<Format>,
    /// Keep only the elements matching this CSS selector instead of detecting the article.
    pub selector: Option<String>,
    /// Keep links in Markdown (default true).
    pub include_links: Option<bool>,
    /// Keep images in Markdown (default true).
    pub include_images: Option<bool>,
    /// Cut the content to at most this many characters.
    #[schema(minimum = 1, maximum = 10_000_000)]
    #[param(minimum = 1, maximum = 10_000_000)]
    pub max_chars: Option<usize>,
    /// Use and fill the cache (default true).
    pub cache: Option<bool>,
}

/// What is known about the page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageMetadata {
    pub title: Option<String>,
    pub byline: Option<String>,
    pub site_name: Option<String>,
    pub lang: Option<String>,
    pub published_time: Option<String>,
    pub excerpt: Option<String>,
    /// Words in the extracted text.
    pub word_count: usize,
    /// The page's URL after redirects.
    pub url: String,
}

/// The page's main content and metadata.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "content": "# Tea\n\nTea is an aromatic beverage …",
    "metadata": {"title": "Tea", "byline": "Ada", "site_name": "Notes", "lang": "en",
                 "published_time": "2024-05-01T10:00:00Z", "excerpt": "Tea is an aromatic beverage …",
                 "word_count": 412, "url": "https://example.com/blog/post"}
}))]
pub struct Url2TextResponse {
    pub content: String,
    pub metadata: PageMetadata,
}
