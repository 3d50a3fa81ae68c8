//! What `/api/ai/img` answers in JSON (the request is `params::ImageRequest`).

use serde::Serialize;
use utoipa::ToSchema;

/// Where a made image is.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"url": "/api/ai/img/files/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "content_type": "image/jpeg", "cached": false}))]
pub struct ImageAnswer {
    /// The image's file on this instance.
    pub url: String,
    pub content_type: String,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// A job taken.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 12, "status": "pending", "url": "/api/ai/img/jobs/12"}))]
pub struct JobCreated {
    pub id: i64,
    pub status: String,
    /// Where to ask how it goes.
    pub url: String,
}

/// Where a job is.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 12, "status": "done", "url": "/api/ai/img/files/2cf2…", "content_type": "image/jpeg", "error": null}))]
pub struct JobStatus {
    pub id: i64,
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
    /// The image's file, once done.
    pub url: Option<String>,
    pub content_type: Option<String>,
    /// Why the last attempt failed (a running job may still succeed).
    pub error: Option<String>,
}
