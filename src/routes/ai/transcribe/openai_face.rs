//! OpenAI's transcription route beside the LLM gateway's `/v1` ones,
//! `POST /api/ai/llm/v1/audio/transcriptions`, so the OpenAI SDKs'
//! `audio.transcriptions.create` works against an instance: a multipart `file` and `model`,
//! answered as `json`, `text`, `verbose_json`, `srt` or `vtt`.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::audio;
use super::providers::{Options, Transcript};
use super::run;
use super::state::Speech;
use crate::platform::error::AppError;
use crate::platform::openai_error::{OpenAiError, OpenAiErrorBody};

/// `seconds` as `HH:MM:SS` and milliseconds after `separator`.
fn timestamp(seconds: f64, separator: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{separator}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Subtitles of a transcription: SRT or WebVTT.
fn subtitles(transcript: &Transcript, vtt: bool) -> String {
    let mut out = String::new();
    if vtt {
        out.push_str("WEBVTT\n\n");
    }
    for (i, chunk) in transcript.chunks.iter().enumerate() {
        let separator = if vtt { '.' } else { ',' };
        if !vtt {
            out.push_str(&format!("{}\n", i + 1));
        }
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            timestamp(chunk.start, separator),
            timestamp(chunk.end, separator),
            chunk.text.trim()
        ));
    }
    out
}

/// Transcriptions, as OpenAI's API.
///
/// `model` may be `whisper-1` (this instance's default speech model), `fal-ai/<model>`,
/// `openai/<model>`, or another OpenAI model name. Fields Toolshed cannot honour are refused
/// by name.
#[utoipa::path(
    post,
    path = "/api/ai/llm/v1/audio/transcriptions",
    operation_id = "openai_audio_transcriptions",
    tag = "ai",
    request_body(content = Object, description = "multipart/form-data: `file`, `model`, `language`, `prompt`, `temperature`, `response_format` (json, text, verbose_json, srt, vtt), `timestamp_granularities[]` (segment)", content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The transcription in the asked format", content(
            (Object = "application/json", example = json!({"text": "Hello there."})),
            (String = "text/plain"),
        )),
        (status = 400, description = "A missing file, bytes that are not audio, a field Toolshed does not honour (named in `param`)", body = OpenAiErrorBody),
        (status = 413, description = "Audio over the limit", body = OpenAiErrorBody),
        (status = 415, description = "Not multipart or not an audio type taken", body = OpenAiErrorBody),
        (status = 502, description = "The provider failed", body = OpenAiErrorBody),
        (status = 504, description = "The provider did not finish in time", body = OpenAiErrorBody),
    )
)]
pub async fn transcriptions(
    State(speech): State<Speech>,
    request: Request,
) -> Result<Response, OpenAiError> {
    let config = &speech.app.config;
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    if !is_form {
        return Err(AppError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send multipart/form-data with a file part",
        )
        .into());
    }
    let upload = audio::read(request, config.transcribe_max_bytes).await?;
    let (mut model, mut language, mut prompt, mut temperature) = (None, None, None, None);
    let mut format = "json".to_owned();
    for (name, value) in upload.fields {
        let refuse = |why: &str| {
            AppError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "unsupported_parameter",
                format!("{name} {why}"),
            )
            .with_param(&name)
        };
        match name.as_str() {
            "model" => model = Some(value),
            "language" => language = Some(value),
            "prompt" => prompt = Some(value),
            "response_format" => format = value,
            "temperature" => {
                temperature = Some(
                    value
                        .parse::<f64>()
                        .map_err(|_| refuse("must be a number"))?,
                );
            }
            "timestamp_granularities[]" | "timestamp_granularities" if value == "segment" => {}
            "stream" if value == "false" => {}
            _ => {
                return Err(refuse(
                    "is not supported by Toolshed, and will not be dropped silently: remove it",
                )
                .into());
            }
        }
    }
    if !matches!(
        format.as_str(),
        "json" | "text" | "verbose_json" | "srt" | "vtt"
    ) {
        return Err(AppError::bad_request(format!(
            "response_format {format:?} is not json, text, verbose_json, srt or vtt"
        ))
        .with_param("response_format")
        .into());
    }
    // `whisper-1`, the name every OpenAI example uses, means this instance's default.
    let model = model.filter(|m| m != "whisper-1").map(|m| {
        if m.starts_with("fal-ai/") || m.starts_with("openai/") {
            m
        } else {
            format!("openai/{m}")
        }
    });
    let options = Options::new(
        model,
        &config.transcribe_model,
        language,
        prompt,
        temperature,
    )?;
    let done = run::transcribe(&speech, &upload.audio, &options).await?;
    let t = &done.transcript;
    let cache = if done.cached { "HIT" } else { "MISS" };
    let mut response = match format.as_str() {
        "text" => t.text.clone().into_response(),
        "srt" | "vtt" => subtitles(t, format == "vtt").into_response(),
        "verbose_json" => {
            let segments: Vec<_> = t
                .chunks
                .iter()
                .enumerate()
                .map(|(id, c)| {
                    json!({"id": id, "seek": 0, "start": c.start, "end": c.end, "text": c.text,
                           "tokens": [], "temperature": 0.0, "avg_logprob": 0.0,
                           "compression_ratio": 0.0, "no_speech_prob": 0.0})
                })
                .collect();
            let duration = t
                .duration
                .or_else(|| t.chunks.last().map(|c| c.end))
                .unwrap_or(0.0);
            Json(json!({"task": "transcribe", "language": t.language.clone().unwrap_or_else(|| "unknown".into()),
                        "duration": duration, "text": t.text, "segments": segments}))
            .into_response()
        }
        _ => Json(json!({"text": t.text})).into_response(),
    };
    response
        .headers_mut()
        .insert("x-cache", axum::http::HeaderValue::from_static(cache));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::ai::transcribe::providers::Chunk;

    #[test]
    fn subtitles_are_srt_and_webvtt() {
        let transcript = Transcript {
            text: "Hello there. Bye.".into(),
            chunks: vec![
                Chunk {
                    start: 0.0,
                    end: 1.25,
                    text: " Hello there.".into(),
                },
                Chunk {
                    start: 3661.5,
                    end: 3662.0,
                    text: "Bye.".into(),
                },
            ],
            language: None,
            duration: None,
        };
        assert_eq!(
            subtitles(&transcript, false),
            "1\n00:00:00,000 --> 00:00:01,250\nHello there.\n\n2\n01:01:01,500 --> 01:01:02,000\nBye.\n\n"
        );
        assert!(
            subtitles(&transcript, true).starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.250\n")
        );
    }
}
