//! `/api/ai/url2text`: pages from a local server, and extraction quality on Readability's
//! own test pages.

mod pages;
mod quality;
