//! `/api/ai/transcribe`: speech to text for a raw audio body or a multipart `file`, and as a
//! background job for long audio.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::audio::{self, Audio};
use super::providers::Options;
use super::run;
use super::schemas::{
    AudioForm, JobCreated, JobStatus, StoredAudio, TranscribeOptions, TranscriptionAnswer, answer,
};
use super::state::Speech;
use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::{AppJson, AppPath, AppQuery, Caller};
use crate::platform::openapi::Binary;
use crate::storage::blobs::BlobId;
use crate::storage::task::{DEFAULT_KIND, NewTask, Status};

/// The answer to `audio` with `options`, and its `X-Cache` value.
async fn transcribe(
    speech: &Speech,
    audio: &Audio,
    options: &TranscribeOptions,
) -> Result<(Value, &'static str), AppError> {
    let shape = options.response_type()?;
    let checked = Options::new(
        options.model.clone(),
        &speech.app.config.transcribe_model,
        options.language.clone(),
        options.prompt.clone(),
        None,
    )?;
    let done = run::transcribe(speech, audio, &checked).await?;
    let cache = if done.cached { "HIT" } else { "MISS" };
    Ok((answer(&done.transcript, shape), cache))
}

/// Transcribes audio.
///
/// The audio is the raw body (`audio/wav`, `audio/mpeg`, `audio/ogg`, `audio/webm`,
/// `audio/mp4`, `audio/flac`) or the `file` part of a `multipart/form-data` body (whose other
/// fields may carry the options). Its bytes must be what its type says. Repeats are answered
/// from the cache (`X-Cache: HIT`), keyed by the audio's SHA-256 and the options.
#[utoipa::path(
    post,
    path = "/api/ai/transcribe",
    operation_id = "transcribe_transcribe_audio",
    tag = "ai",
    params(TranscribeOptions),
    request_body(description = "The audio", content(
        (Binary = "audio/wav"), (Binary = "audio/mpeg"), (Binary = "audio/ogg"),
        (Binary = "audio/webm"), (Binary = "audio/mp4"), (Binary = "audio/flac"),
        (AudioForm = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "The transcription", body = TranscriptionAnswer),
        (status = 400, description = "Empty audio, bytes that are not their type, a bad option (named), or the provider refused the audio", body = ErrorBody),
        (status = 413, description = "Audio over `TOOLSHED_TRANSCRIBE_MAX_BYTES`", body = ErrorBody),
        (status = 415, description = "Not an audio type taken (the message lists them)", body = ErrorBody),
        (status = 429, description = "The provider's rate limit", body = ErrorBody),
        (status = 502, description = "The provider failed", body = ErrorBody),
        (status = 504, description = "The provider did not finish in time", body = ErrorBody),
    )
)]
pub async fn transcribe_audio(
    State(speech): State<Speech>,
    AppQuery(options): AppQuery<TranscribeOptions>,
    request: Request,
) -> Result<(StatusCode, [(&'static str, &'static str); 1], Json<Value>), AppError> {
    let upload = audio::read(request, speech.app.config.transcribe_max_bytes).await?;
    let options = options.with_fields(upload.fields)?;
    let (body, cache) = transcribe(&speech, &upload.audio, &options).await?;
    Ok((StatusCode::OK, [("x-cache", cache)], Json(body)))
}

/// Transcribes audio already stored (what a job runs).
#[utoipa::path(
    post,
    path = "/api/ai/transcribe/stored",
    operation_id = "transcribe_transcribe_stored",
    tag = "ai",
    request_body = StoredAudio,
    responses(
        (status = 200, description = "The transcription", body = TranscriptionAnswer),
        (status = 400, description = "A bad option, or malformed JSON", body = ErrorBody),
        (status = 404, description = "No such stored audio", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
        (status = 502, description = "The provider failed", body = ErrorBody),
        (status = 504, description = "The provider did not finish in time", body = ErrorBody),
    )
)]
pub async fn transcribe_stored(
    State(speech): State<Speech>,
    AppJson(stored): AppJson<StoredAudio>,
) -> Result<(StatusCode, [(&'static str, &'static str); 1], Json<Value>), AppError> {
    let missing = || AppError::not_found(format!("no stored audio {}", stored.blob));
    let blob = BlobId::parse(&stored.blob).ok_or_else(missing)?;
    let bytes = tokio::fs::read(speech.app.store.blobs.path(&blob))
        .await
        .map_err(|_| missing())?;
    let audio = audio::check(bytes.into(), None, usize::MAX)?;
    let (body, cache) = transcribe(&speech, &audio, &stored.options()).await?;
    Ok((StatusCode::OK, [("x-cache", cache)], Json(body)))
}

/// Transcribes audio in the background.
///
/// Takes the audio as `POST /api/ai/transcribe` does, keeps it as a blob and runs the
/// transcription as a queue task (durable: it survives a restart).
#[utoipa::path(
    post,
    path = "/api/ai/transcribe/jobs",
    operation_id = "transcribe_create_job",
    tag = "ai",
    params(TranscribeOptions),
    request_body(description = "The audio", content(
        (Binary = "audio/wav"), (Binary = "audio/mpeg"), (Binary = "audio/ogg"),
        (Binary = "audio/webm"), (Binary = "audio/mp4"), (Binary = "audio/flac"),
        (AudioForm = "multipart/form-data"),
    )),
    responses(
        (status = 202, description = "The job", body = JobCreated),
        (status = 400, description = "Empty audio, bytes that are not their type, or a bad option", body = ErrorBody),
        (status = 413, description = "Audio over `TOOLSHED_TRANSCRIBE_MAX_BYTES`", body = ErrorBody),
        (status = 415, description = "Not an audio type taken", body = ErrorBody),
    )
)]
pub async fn create_job(
    State(speech): State<Speech>,
    Caller(caller): Caller,
    AppQuery(options): AppQuery<TranscribeOptions>,
    request: Request,
) -> Result<(StatusCode, Json<JobCreated>), AppError> {
    let upload = audio::read(request, speech.app.config.transcribe_max_bytes).await?;
    let options = options.with_fields(upload.fields)?;
    // Refused now rather than in the job.
    options.response_type()?;
    Options::new(
        options.model.clone(),
        &speech.app.config.transcribe_model,
        options.language.clone(),
        options.prompt.clone(),
        None,
    )?;
    let blob = speech
        .app
        .store
        .blobs
        .put(upload.audio.bytes)
        .await
        .map_err(|e| AppError::internal(e.to_string()))?;
    let stored = StoredAudio {
        blob: blob.to_string(),
        response_type: options.response_type,
        language: options.language,
        prompt: options.prompt,
        model: options.model,
    };
    let mut task = NewTask::new(
        DEFAULT_KIND,
        json!({"method": "POST", "path": "/api/ai/transcribe/stored", "body": stored}),
    );
    task.created_by = caller;
    let timeout = speech.app.config.transcribe_timeout_s.as_millis() + 5_000;
    task.timeout_ms = Some(u64::try_from(timeout).unwrap_or(u64::MAX));
    let task = speech.app.store.queue.enqueue(task).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobCreated {
            id: task.id,
            status: "pending".into(),
            url: format!("/api/ai/transcribe/jobs/{}", task.id),
        }),
    ))
}

/// Where a transcription job is: `pending`, `running`, `done` (with the answer) or `failed`.
#[utoipa::path(
    get,
    path = "/api/ai/transcribe/jobs/{id}",
    operation_id = "transcribe_job",
    tag = "ai",
    params(("id" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = JobStatus),
        (status = 400, description = "The id is not a 64-bit whole number", body = ErrorBody),
        (status = 404, description = "No such transcription job", body = ErrorBody),
    )
)]
pub async fn job(
    State(speech): State<Speech>,
    AppPath(id): AppPath<i64>,
) -> Result<Json<JobStatus>, AppError> {
    let missing = || AppError::not_found(format!("no transcription job {id}"));
    let task = speech.app.store.queue.get(id).await?.ok_or_else(missing)?;
    if task.kind != DEFAULT_KIND || task.payload["path"] != "/api/ai/transcribe/stored" {
        return Err(missing());
    }
    let (status, error) = match task.status {
        Status::Pending => ("pending", None),
        Status::Running | Status::Retrying => ("running", task.last_error.clone()),
        Status::Succeeded => ("done", None),
        Status::Dead => ("failed", task.last_error.clone()),
    };
    Ok(Json(JobStatus {
        id,
        status: status.into(),
        result: task.result.as_ref().map(|r| r["body"].clone()),
        error,
    }))
}
