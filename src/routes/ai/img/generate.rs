//! One image for one set of parameters: from the cache (its blob still there), else made once
//! however many ask at the same moment — by the provider, checked to be an image, kept as a
//! blob, remembered in the cache.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::params::Params;
use super::providers::{self, Context, ImgError};
use super::state::Img;
use crate::platform::error::AppError;
use crate::platform::media_type;
use crate::storage::blobs::{BlobError, BlobId};
use crate::storage::cache::CacheEntry;

/// An image made and kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Made {
    pub blob: String,
    pub content_type: String,
}

/// The image for a request.
pub struct Image {
    pub blob: BlobId,
    pub content_type: String,
    /// Served from the cache.
    pub cached: bool,
}

impl From<BlobError> for AppError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::TooLarge(_) => {
                AppError::new(StatusCode::BAD_GATEWAY, "upstream_too_large", e.to_string())
            }
            other => AppError::internal(other.to_string()),
        }
    }
}

/// The cached image for `key`, if its blob is still there.
async fn cached(img: &Img, key: &str) -> Option<Image> {
    let bytes = img.app.store.cache.get(key).await.ok()??;
    let made: Made = serde_json::from_slice(&bytes).ok()?;
    let blob = BlobId::parse(&made.blob)?;
    img.app.store.blobs.exists(&blob).await.then_some(Image {
        blob,
        content_type: made.content_type,
        cached: true,
    })
}

/// The image for `params`.
pub async fn image(img: &Img, params: &Params) -> Result<Image, AppError> {
    let key = format!("img/{}", params.key());
    if let Some(hit) = cached(img, &key).await {
        return Ok(hit);
    }
    let cell = img.join(&key);
    let made = cell
        .get_or_try_init(|| make(img, params, &key))
        .await
        .cloned();
    img.leave(&key, &cell);
    let made = made?;
    Ok(Image {
        blob: BlobId::parse(&made.blob).ok_or_else(|| AppError::internal("bad blob id"))?,
        content_type: made.content_type,
        cached: false,
    })
}

async fn make(img: &Img, params: &Params, key: &str) -> Result<Made, AppError> {
    let config = &img.app.config;
    let cx = Context {
        config,
        outbound: &img.app.outbound,
        max_bytes: img.app.store.blobs.max_bytes(),
    };
    let started = std::time::Instant::now();
    let bytes = tokio::time::timeout(config.img_timeout_s, providers::generate(&cx, params))
        .await
        .map_err(|_| ImgError::Timeout(params.provider.name()))??;
    let content_type = media_type::image(&bytes).ok_or_else(|| {
        AppError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!(
                "{} sent something that is not a PNG, JPEG, GIF or WebP image",
                params.provider.name()
            ),
        )
    })?;
    let size = bytes.len();
    let blob = img.app.store.blobs.put(bytes).await?;
    let made = Made {
        blob: blob.to_string(),
        content_type: content_type.to_owned(),
    };
    let entry = CacheEntry {
        key: key.to_owned(),
        value: serde_json::to_vec(&made).map_err(|e| AppError::internal(e.to_string()))?,
        ttl: config.blob_max_age_s,
    };
    img.app.store.cache.put_many(vec![entry]).await?;
    tracing::info!(
        provider = params.provider.name(),
        model = %params.model,
        bytes = size,
        ms = started.elapsed().as_millis() as u64,
        "image made"
    );
    Ok(made)
}
