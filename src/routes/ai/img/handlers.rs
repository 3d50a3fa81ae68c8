//! `/api/ai/img`: an image for a prompt (GET, the original's shape, or POST with every
//! option), its file by id, and generation as a background job.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::generate::{self, Image};
use super::params::ImageRequest;
use super::schemas::{ImageAnswer, JobCreated, JobStatus};
use super::state::Img;
use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::{AppJson, AppPath, AppQuery, Caller, parse_json};
use crate::platform::openapi::Binary;
use crate::storage::blobs::BlobId;
use crate::storage::task::{NewTask, Status};

/// Where an image's file is served.
fn file_url(blob: &BlobId) -> String {
    format!("/api/ai/img/files/{blob}")
}

/// Whether the caller asked for JSON rather than the image's bytes.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"))
}

/// A blob as an image response: streamed from its file, with `Range`, an `ETag` (its id:
/// the bytes never change) and a year of caching.
async fn serve(
    img: &Img,
    blob: &BlobId,
    content_type: &str,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let etag = format!("\"{blob}\"");
    let cache_control = HeaderValue::from_static("public, max-age=31536000, immutable");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        // Only `Range` goes on: the file behind an id never changes, so `If-Range` always holds.
        let mut request = Request::new(Body::empty());
        if let Some(range) = headers.get(header::RANGE) {
            request.headers_mut().insert(header::RANGE, range.clone());
        }
        let path = img.app.store.blobs.path(blob);
        let served = match ServeFile::new(path).oneshot(request).await {
            Ok(served) => served,
            Err(never) => match never {},
        };
        if served.status() == StatusCode::NOT_FOUND {
            return Err(AppError::not_found(format!("no image {blob}")));
        }
        served.map(Body::new)
    };
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response_headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    response_headers.insert(header::CACHE_CONTROL, cache_control);
    Ok(response)
}

async fn answer(img: &Img, image: Image, headers: &HeaderMap) -> Result<Response, AppError> {
    let mut response = if wants_json(headers) {
        Json(ImageAnswer {
            url: file_url(&image.blob),
            content_type: image.content_type.clone(),
            cached: image.cached,
        })
        .into_response()
    } else {
        serve(img, &image.blob, &image.content_type, headers).await?
    };
    response.headers_mut().insert(
        "x-cache",
        HeaderValue::from_static(if image.cached { "HIT" } else { "MISS" }),
    );
    Ok(response)
}

async fn make(img: &Img, request: ImageRequest, headers: &HeaderMap) -> Result<Response, AppError> {
    let params = request.normalize(&img.app.config.img_model)?;
    let image = generate::image(img, &params).await?;
    answer(img, image, headers).await
}

/// An image for a prompt (the original Toolshed's shape).
///
/// The image's bytes with their real `Content-Type` (read from the bytes), `ETag`,
/// `Cache-Control: public, max-age=31536000, immutable` and `X-Cache: HIT|MISS`; with
/// `Accept: application/json`, where its file is instead. The other fields of the POST body
/// may be given as query parameters too.
#[utoipa::path(
    get,
    path = "/api/ai/img",
    operation_id = "img_get_image",
    tag = "ai",
    params(ImageRequest),
    responses(
        (status = 200, description = "The image (`image/png`, `image/jpeg`, `image/webp` or `image/gif`), or with `Accept: application/json` an `ImageAnswer`", content(
            (Binary = "image/*"),
            (ImageAnswer = "application/json"),
        )),
        (status = 400, description = "A bad option (named in `param`), or the provider refused the request", body = ErrorBody),
        (status = 422, description = "The provider's safety checker refused the image", body = ErrorBody),
        (status = 429, description = "The provider's rate limit", body = ErrorBody),
        (status = 502, description = "The provider failed", body = ErrorBody),
        (status = 504, description = "The provider did not finish in time", body = ErrorBody),
    )
)]
pub async fn get_image(
    State(img): State<Img>,
    headers: HeaderMap,
    AppQuery(request): AppQuery<ImageRequest>,
) -> Result<Response, AppError> {
    make(&img, request, &headers).await
}

/// An image for a prompt, with every option.
///
/// As `GET`; identical requests (after normalizing: key order, spelled-out defaults, a named
/// size or its pixels) are one image, made once even when asked for at the same moment.
#[utoipa::path(
    post,
    path = "/api/ai/img",
    operation_id = "img_post_image",
    tag = "ai",
    request_body = ImageRequest,
    responses(
        (status = 200, description = "The image, or with `Accept: application/json` an `ImageAnswer`", content(
            (Binary = "image/*"),
            (ImageAnswer = "application/json"),
        )),
        (status = 400, description = "A bad option (named in `param`), malformed JSON, or the provider refused the request", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape, or the provider's safety checker refused the image", body = ErrorBody),
        (status = 429, description = "The provider's rate limit", body = ErrorBody),
        (status = 502, description = "The provider failed", body = ErrorBody),
        (status = 504, description = "The provider did not finish in time", body = ErrorBody),
    )
)]
pub async fn post_image(
    State(img): State<Img>,
    headers: HeaderMap,
    AppJson(request): AppJson<ImageRequest>,
) -> Result<Response, AppError> {
    make(&img, request, &headers).await
}

/// A generated image's file, by its id (the SHA-256 of its bytes).
#[utoipa::path(
    get,
    path = "/api/ai/img/files/{id}",
    operation_id = "img_file",
    tag = "ai",
    params(("id" = String, Path, description = "64 lowercase hex digits")),
    responses(
        (status = 200, description = "The image; `Range` gives 206 with part of it", content((Binary = "image/*"))),
        (status = 304, description = "`If-None-Match` named this image's ETag"),
        (status = 404, description = "No such image (or it was swept)", body = ErrorBody),
    )
)]
pub async fn file(
    State(img): State<Img>,
    headers: HeaderMap,
    AppPath(id): AppPath<String>,
) -> Result<Response, AppError> {
    let blob = BlobId::parse(&id).ok_or_else(|| AppError::not_found(format!("no image {id}")))?;
    let missing = || AppError::not_found(format!("no image {id}"));
    // The type is read from the first bytes again: no record of it is needed.
    let mut head = [0u8; 16];
    let mut opened = tokio::fs::File::open(img.app.store.blobs.path(&blob))
        .await
        .map_err(|_| missing())?;
    let read = opened.read(&mut head).await.map_err(|_| missing())?;
    let content_type = crate::platform::media_type::image(&head[..read]).ok_or_else(missing)?;
    serve(&img, &blob, content_type, &headers).await
}

/// Makes an image in the background.
///
/// The generation runs as a queue task (durable: it survives a restart); identical
/// requests running at once, here or synchronously, make one image.
#[utoipa::path(
    post,
    path = "/api/ai/img/jobs",
    operation_id = "img_create_job",
    tag = "ai",
    request_body = ImageRequest,
    responses(
        (status = 202, description = "The job", body = JobCreated),
        (status = 400, description = "A bad option (named in `param`), or malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
    )
)]
pub async fn create_job(
    State(img): State<Img>,
    Caller(caller): Caller,
    AppJson(body): AppJson<Value>,
) -> Result<(StatusCode, Json<JobCreated>), AppError> {
    // Read as the synchronous route will read it (whole numbers written as `7.0` included).
    let request: ImageRequest =
        parse_json(&serde_json::to_vec(&body).map_err(AppError::internal)?)?;
    // Refused now rather than in the job.
    request.normalize(&img.app.config.img_model)?;
    let mut task = NewTask::new(
        crate::storage::task::DEFAULT_KIND,
        json!({"method": "POST", "path": "/api/ai/img", "headers": {"accept": "application/json"}, "body": body}),
    );
    task.created_by = caller;
    let timeout = img.app.config.img_timeout_s.as_millis() + 5_000;
    task.timeout_ms = Some(u64::try_from(timeout).unwrap_or(u64::MAX));
    let task = img.app.store.queue.enqueue(task).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobCreated {
            id: task.id,
            status: "pending".into(),
            url: format!("/api/ai/img/jobs/{}", task.id),
        }),
    ))
}

/// Where a job is: `pending`, `running`, `done` (with the image's `url`) or `failed`.
#[utoipa::path(
    get,
    path = "/api/ai/img/jobs/{id}",
    operation_id = "img_job",
    tag = "ai",
    params(("id" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = JobStatus),
        (status = 400, description = "The id is not a 64-bit whole number", body = ErrorBody),
        (status = 404, description = "No such image job", body = ErrorBody),
    )
)]
pub async fn job(
    State(img): State<Img>,
    AppPath(id): AppPath<i64>,
) -> Result<Json<JobStatus>, AppError> {
    let missing = || AppError::not_found(format!("no image job {id}"));
    let task = img.app.store.queue.get(id).await?.ok_or_else(missing)?;
    if task.kind != crate::storage::task::DEFAULT_KIND || task.payload["path"] != "/api/ai/img" {
        return Err(missing());
    }
    let answer = task.result.as_ref().map(|r| &r["body"]);
    let (status, error) = match task.status {
        Status::Pending => ("pending", None),
        Status::Running | Status::Retrying => ("running", task.last_error.clone()),
        Status::Succeeded => ("done", None),
        Status::Dead => ("failed", task.last_error.clone()),
    };
    Ok(Json(JobStatus {
        id,
        status: status.into(),
        url: answer.and_then(|a| a["url"].as_str()).map(str::to_owned),
        content_type: answer
            .and_then(|a| a["content_type"].as_str())
            .map(str::to_owned),
        error,
    }))
}
