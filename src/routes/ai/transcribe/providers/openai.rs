//! OpenAI's `POST /v1/audio/transcriptions` (multipart), asked for `verbose_json` so the
//! answer has timed segments; Groq, whisper.cpp's and faster-whisper's servers answer alike.

use reqwest::multipart::{Form, Part};
use serde_json::Value;

use super::{Chunk, Options, TranscribeError, Transcript};
use crate::env::Config;
use crate::platform::outbound::{OutboundError, classify, read_capped};
use crate::routes::ai::transcribe::audio::Audio;

const NAME: &str = "openai";

fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(500).collect())
}

fn transport(e: OutboundError) -> TranscribeError {
    match e {
        OutboundError::Timeout => TranscribeError::Timeout(NAME),
        other => TranscribeError::Protocol {
            provider: NAME,
            message: other.to_string(),
        },
    }
}

pub async fn transcribe(
    config: &Config,
    client: &reqwest::Client,
    audio: &Audio,
    options: &Options,
) -> Result<Transcript, TranscribeError> {
    let key = config
        .openai_api_key
        .as_ref()
        .ok_or(TranscribeError::NotConfigured {
            provider: NAME,
            env: "OPENAI_API_KEY",
        })?;
    let file = Part::stream(reqwest::Body::from(audio.bytes.clone()))
        .file_name(audio.file_name())
        .mime_str(audio.content_type())
        .map_err(|e| TranscribeError::Protocol {
            provider: NAME,
            message: e.to_string(),
        })?;
    let mut form = Form::new()
        .part("file", file)
        .text("model", options.model.clone())
        .text("response_format", "verbose_json");
    if let Some(language) = &options.language {
        form = form.text("language", language.clone());
    }
    if let Some(prompt) = &options.prompt {
        form = form.text("prompt", prompt.clone());
    }
    if let Some(temperature) = options.temperature {
        form = form.text("temperature", temperature.to_string());
    }
    let response = client
        .post(format!(
            "{}/audio/transcriptions",
            config.openai_base_url.trim_end_matches('/')
        ))
        .bearer_auth(key.expose())
        .multipart(form)
        .send()
        .await
        .map_err(|e| transport(classify(e)))?;
    let status = response.status();
    let body = read_capped(response, 16 * 1024 * 1024)
        .await
        .map_err(transport)?;
    if !status.is_success() {
        return Err(TranscribeError::Status {
            provider: NAME,
            status: status.as_u16(),
            message: error_message(&body),
        });
    }
    let answer: Value = serde_json::from_slice(&body).map_err(|e| TranscribeError::Protocol {
        provider: NAME,
        message: format!("an answer that is not JSON ({e})"),
    })?;
    let text = answer["text"]
        .as_str()
        .ok_or_else(|| TranscribeError::Protocol {
            provider: NAME,
            message: "no text in the answer".into(),
        })?
        .trim()
        .to_owned();
    let chunks = answer["segments"]
        .as_array()
        .map(|segments| {
            segments
                .iter()
                .map(|s| Chunk {
                    start: s["start"].as_f64().unwrap_or(0.0),
                    end: s["end"].as_f64().unwrap_or(0.0),
                    text: s["text"].as_str().unwrap_or("").to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Transcript {
        text,
        chunks,
        language: answer["language"].as_str().map(str::to_owned),
        duration: answer["duration"].as_f64(),
    })
}
