//! What `/api/ai/transcribe` takes besides the audio, and what it answers.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::providers::Transcript;
use crate::platform::error::AppError;

/// The options, as query parameters (or as form fields beside a multipart `file`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TranscribeOptions {
    /// `full` (default: the text and timed chunks), `text` or `chunks`.
    pub response_type: Option<String>,
    /// The spoken language, ISO-639-1 (`en`); detected when absent.
    pub language: Option<String>,
    /// Words to expect (names, terms): openai/ models only.
    pub prompt: Option<String>,
    /// `fal-ai/<model>` (default `fal-ai/wizper`) or `openai/<model>` (`openai/whisper-1`).
    pub model: Option<String>,
}

/// A `multipart/form-data` body: the audio as `file`, the options as text fields beside it.
/// Only describes the body for the document; `audio::read` reads the form.
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "describes the form in the OpenAPI document; never built"
)]
pub struct AudioForm {
    /// The audio file (its part's `Content-Type`, or else its bytes, says which format).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    response_type: Option<String>,
    language: Option<String>,
    prompt: Option<String>,
    model: Option<String>,
}

impl TranscribeOptions {
    /// Takes a form's text fields over the query's.
    pub fn with_fields(mut self, fields: Vec<(String, String)>) -> Result<Self, AppError> {
        for (name, value) in fields {
            let slot = match name.as_str() {
                "response_type" => &mut self.response_type,
                "language" => &mut self.language,
                "prompt" => &mut self.prompt,
                "model" => &mut self.model,
                other => {
                    return Err(AppError::bad_request(format!(
                        "form field {other} is not taken (file, response_type, language, prompt, model)"
                    )));
                }
            };
            *slot = Some(value);
        }
        Ok(self)
    }

    /// The answer's shape, checked.
    pub fn response_type(&self) -> Result<ResponseType, AppError> {
        match self.response_type.as_deref() {
            None | Some("full") => Ok(ResponseType::Full),
            Some("text") => Ok(ResponseType::Text),
            Some("chunks") => Ok(ResponseType::Chunks),
            Some(other) => Err(AppError::bad_request(format!(
                "response_type {other:?} is not full, text or chunks"
            ))),
        }
    }
}

/// How much of a transcription is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    Full,
    Text,
    Chunks,
}

/// The answer, as the original Toolshed gave it.
pub fn answer(transcript: &Transcript, shape: ResponseType) -> Value {
    let chunks: Vec<Value> = transcript
        .chunks
        .iter()
        .map(|c| json!({"timestamp": [c.start, c.end], "text": c.text}))
        .collect();
    match shape {
        ResponseType::Full => {
            json!({"response_type": "full", "transcription": transcript.text, "chunks": chunks})
        }
        ResponseType::Text => json!({"response_type": "text", "transcription": transcript.text}),
        ResponseType::Chunks => json!({"response_type": "chunks", "chunks": chunks}),
    }
}

/// A transcription (`response_type` full; `text` leaves out `chunks`, `chunks` leaves out
/// `transcription`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"response_type": "full", "transcription": "Hello there.", "chunks": [{"timestamp": [0.0, 1.2], "text": "Hello there."}]}))]
pub struct TranscriptionAnswer {
    pub response_type: String,
    pub transcription: Option<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub chunks: Option<Vec<Value>>,
}

/// A transcription job's input: audio already stored as a blob.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoredAudio {
    /// The blob's id (the SHA-256 of the audio).
    pub blob: String,
    #[serde(default)]
    pub response_type: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
}

impl StoredAudio {
    pub fn options(&self) -> TranscribeOptions {
        TranscribeOptions {
            response_type: self.response_type.clone(),
            language: self.language.clone(),
            prompt: self.prompt.clone(),
            model: self.model.clone(),
        }
    }
}

/// A job taken.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 12, "status": "pending", "url": "/api/ai/transcribe/jobs/12"}))]
pub struct JobCreated {
    pub id: i64,
    pub status: String,
    pub url: String,
}

/// Where a job is.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 12, "status": "done", "result": {"response_type": "text", "transcription": "Hello."}, "error": null}))]
pub struct JobStatus {
    pub id: i64,
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
    /// The answer, once done.
    pub result: Option<Value>,
    /// Why the last attempt failed.
    pub error: Option<String>,
}
