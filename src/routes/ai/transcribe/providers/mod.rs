//! The speech-to-text providers, each in its own file speaking its own wire format: fal.ai's
//! Whisper models (wizper) through its queue API, and OpenAI's
//! `/v1/audio/transcriptions` (also Groq, whisper.cpp's and faster-whisper's servers).

pub mod fal;
pub mod openai;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::audio::Audio;
use crate::env::Config;
use crate::platform::error::AppError;

/// A transcription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub text: String,
    pub chunks: Vec<Chunk>,
    pub language: Option<String>,
    /// Seconds of audio, where the provider says.
    pub duration: Option<f64>,
}

/// A timed piece of a transcription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// Who transcribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Fal,
    OpenAi,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Fal => "fal",
            Provider::OpenAi => "openai",
        }
    }
}

/// What is asked, checked: the provider and its model, and the options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub provider: Provider,
    /// The model id the provider knows.
    pub model: String,
    pub language: Option<String>,
    pub prompt: Option<String>,
    pub temperature: Option<f64>,
}

impl Options {
    /// The options for `model` (`fal-ai/…` or `openai/…`, else the default); what the
    /// provider cannot take is refused by name.
    pub fn new(
        model: Option<String>,
        default_model: &str,
        language: Option<String>,
        prompt: Option<String>,
        temperature: Option<f64>,
    ) -> Result<Options, AppError> {
        let bad = |message: String, param: &str| AppError::bad_request(message).with_param(param);
        let named = model.unwrap_or_else(|| default_model.to_owned());
        let (provider, model) = if named.starts_with("fal-ai/") {
            (Provider::Fal, named.clone())
        } else if let Some(model) = named.strip_prefix("openai/") {
            (Provider::OpenAi, model.to_owned())
        } else {
            return Err(bad(
                format!("model {named:?} is not fal-ai/<model> or openai/<model>"),
                "model",
            ));
        };
        if let Some(language) = &language
            && !(2..=3).contains(&language.len())
        {
            return Err(bad(
                format!("language {language:?} is not an ISO-639-1 code such as en"),
                "language",
            ));
        }
        if temperature.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            return Err(bad("temperature must be from 0 to 1".into(), "temperature"));
        }
        if provider == Provider::Fal {
            for (name, given) in [
                ("prompt", prompt.is_some()),
                ("temperature", temperature.is_some()),
            ] {
                if given {
                    return Err(bad(
                        format!(
                            "fal speech models take no {name}; remove it or use an openai/ model"
                        ),
                        name,
                    ));
                }
            }
        }
        Ok(Options {
            provider,
            model,
            language,
            prompt,
            temperature,
        })
    }

    /// What the cache key adds to the audio's hash.
    pub fn key_part(&self) -> serde_json::Value {
        serde_json::json!([
            self.provider.name(),
            self.model,
            self.language,
            self.prompt,
            self.temperature
        ])
    }
}

/// Why a transcription was not made.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error("{provider} is not configured: set {env}")]
    NotConfigured {
        provider: &'static str,
        env: &'static str,
    },
    #[error("{provider} answered {status}: {message}")]
    Status {
        provider: &'static str,
        status: u16,
        message: String,
    },
    #[error("{0} did not finish the transcription in time")]
    Timeout(&'static str),
    #[error("{provider}: {message}")]
    Protocol {
        provider: &'static str,
        message: String,
    },
}

impl From<TranscribeError> for AppError {
    fn from(e: TranscribeError) -> Self {
        let message = e.to_string();
        let (status, code) = match &e {
            TranscribeError::NotConfigured { .. } => {
                (StatusCode::BAD_REQUEST, "provider_not_configured")
            }
            TranscribeError::Status { status, .. } => match status {
                400 | 404 | 413 | 415 | 422 => (StatusCode::BAD_REQUEST, "upstream_bad_request"),
                429 => (StatusCode::TOO_MANY_REQUESTS, "upstream_rate_limited"),
                _ => (StatusCode::BAD_GATEWAY, "upstream_error"),
            },
            TranscribeError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
            TranscribeError::Protocol { .. } => (StatusCode::BAD_GATEWAY, "upstream_error"),
        };
        AppError::new(status, code, message)
    }
}

/// The transcription of `audio` by the provider the options name.
pub async fn transcribe(
    config: &Config,
    client: &reqwest::Client,
    audio: &Audio,
    options: &Options,
) -> Result<Transcript, TranscribeError> {
    match options.provider {
        Provider::Fal => fal::transcribe(config, client, audio, options).await,
        Provider::OpenAi => openai::transcribe(config, client, audio, options).await,
    }
}
