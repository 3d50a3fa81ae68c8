//! fal.ai's Whisper models (`fal-ai/wizper`, `fal-ai/whisper`) through the queue API: the
//! audio goes as a data URI, the answer's `chunks` carry `timestamp: [start, end]`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{Chunk, Options, TranscribeError, Transcript};
use crate::env::Config;
use crate::platform::fal_queue::{self, FalError};
use crate::routes::ai::transcribe::audio::Audio;

const NAME: &str = "fal";

/// The model input (public for tests of the translation).
pub fn input(audio: &Audio, options: &Options) -> Value {
    let mut input = json!({
        "audio_url": format!("data:{};base64,{}", audio.content_type(), STANDARD.encode(&audio.bytes)),
        "task": "transcribe",
        "chunk_level": "segment",
    });
    if let Some(language) = &options.language {
        input["language"] = json!(language);
    }
    input
}

pub async fn transcribe(
    config: &Config,
    client: &reqwest::Client,
    audio: &Audio,
    options: &Options,
) -> Result<Transcript, TranscribeError> {
    let output = fal_queue::run(
        client,
        &config.fal_queue_url,
        config.fal_key.as_ref(),
        &options.model,
        &input(audio, options),
    )
    .await
    .map_err(|e| match e {
        FalError::NotConfigured => TranscribeError::NotConfigured {
            provider: NAME,
            env: "FAL_KEY",
        },
        FalError::Status { status, message } => TranscribeError::Status {
            provider: NAME,
            status,
            message,
        },
        FalError::Timeout => TranscribeError::Timeout(NAME),
        FalError::Protocol(message) => TranscribeError::Protocol {
            provider: NAME,
            message,
        },
    })?;
    let text = output["text"]
        .as_str()
        .ok_or_else(|| TranscribeError::Protocol {
            provider: NAME,
            message: "no text in the result".into(),
        })?
        .trim()
        .to_owned();
    let chunks = output["chunks"]
        .as_array()
        .map(|chunks| {
            chunks
                .iter()
                .map(|c| Chunk {
                    start: c
                        .pointer("/timestamp/0")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0),
                    end: c
                        .pointer("/timestamp/1")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0),
                    text: c["text"].as_str().unwrap_or("").to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Transcript {
        text,
        chunks,
        language: output
            .pointer("/languages/0")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| options.language.clone()),
        duration: None,
    })
}
