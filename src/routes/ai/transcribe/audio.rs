//! Audio as it arrives: a raw body with its content type, or a multipart form's `file` part.
//! The bytes must be what their type says (checked by the container's magic bytes before a
//! provider is paid for them).

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use bytes::Bytes;

use crate::platform::error::AppError;

/// The audio containers taken: (content types, format name, file extension).
const FORMATS: [(&[&str], &str, &str); 6] = [
    (&["audio/wav", "audio/x-wav", "audio/wave"], "wav", "wav"),
    (&["audio/mpeg", "audio/mp3"], "mp3", "mp3"),
    (&["audio/ogg", "audio/opus"], "ogg", "ogg"),
    (&["audio/webm"], "webm", "webm"),
    (&["audio/mp4", "audio/m4a", "audio/x-m4a"], "mp4", "m4a"),
    (&["audio/flac", "audio/x-flac"], "flac", "flac"),
];

/// The accepted content types, for messages.
pub const ACCEPTED: &str = "audio/wav, audio/mpeg, audio/ogg, audio/webm, audio/mp4, audio/flac (or multipart/form-data with a file part)";

/// An audio file, checked.
#[derive(Debug, Clone)]
pub struct Audio {
    pub bytes: Bytes,
    /// `wav`, `mp3`, `ogg`, `webm`, `mp4` or `flac`.
    pub format: &'static str,
}

impl Audio {
    /// The content type providers are told.
    pub fn content_type(&self) -> &'static str {
        FORMATS
            .iter()
            .find(|(_, name, _)| *name == self.format)
            .map_or("application/octet-stream", |(types, _, _)| types[0])
    }

    /// A file name with the extension providers go by.
    pub fn file_name(&self) -> String {
        let extension = FORMATS
            .iter()
            .find(|(_, name, _)| *name == self.format)
            .map_or("bin", |(_, _, extension)| extension);
        format!("audio.{extension}")
    }
}

/// The container `bytes` are in, read from their first bytes.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let at = |range: std::ops::Range<usize>| bytes.get(range);
    if at(0..4) == Some(b"RIFF") && at(8..12) == Some(b"WAVE") {
        Some("wav")
    } else if bytes.starts_with(b"ID3")
        || (bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0)
    {
        Some("mp3")
    } else if bytes.starts_with(b"OggS") {
        Some("ogg")
    } else if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        Some("webm")
    } else if at(4..8) == Some(b"ftyp") {
        Some("mp4")
    } else if bytes.starts_with(b"fLaC") {
        Some("flac")
    } else {
        None
    }
}

/// The format a content type names (its parameters ignored); `None` for any other type.
fn format_of(content_type: &str) -> Option<&'static str> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    FORMATS
        .iter()
        .find(|(types, _, _)| types.contains(&essence.as_str()))
        .map(|(_, name, _)| *name)
}

/// Checks `bytes` against the type they came with (`None` or a generic type: the bytes
/// alone decide).
pub fn check(bytes: Bytes, content_type: Option<&str>, max: usize) -> Result<Audio, AppError> {
    if bytes.is_empty() {
        return Err(AppError::bad_request("the audio is empty"));
    }
    if bytes.len() > max {
        return Err(AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the audio is larger than {max} bytes"),
        ));
    }
    let declared = match content_type {
        None | Some("application/octet-stream") => None,
        Some(t) => Some(format_of(t).ok_or_else(|| unsupported(t))?),
    };
    let found = sniff(&bytes);
    match (declared, found) {
        (Some(said), Some(is)) if said == is => Ok(Audio { bytes, format: is }),
        (None, Some(is)) => Ok(Audio { bytes, format: is }),
        (Some(said), other) => Err(AppError::bad_request(format!(
            "the body is not {said} audio: its bytes {}",
            other.map_or("are no audio format taken here".to_owned(), |is| format!(
                "are {is}"
            ))
        ))),
        (None, None) => Err(AppError::bad_request(format!(
            "the file is no audio format taken here ({ACCEPTED})"
        ))),
    }
}

fn unsupported(content_type: &str) -> AppError {
    AppError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("{content_type} is not taken; send {ACCEPTED}"),
    )
}

/// A request's audio and its text fields (multipart) — the raw body's fields come from
/// the query instead.
pub struct Upload {
    pub audio: Audio,
    /// The other form fields, in order.
    pub fields: Vec<(String, String)>,
}

/// Reads the audio of a request: a raw body, or a multipart form's `file` part.
pub async fn read(request: Request, max: usize) -> Result<Upload, AppError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let too_large = || {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the audio is larger than {max} bytes"),
        )
    };
    match content_type.as_deref() {
        Some(t) if t.starts_with("multipart/form-data") => {
            let mut form = Multipart::from_request(request, &())
                .await
                .map_err(|e| AppError::bad_request(format!("a malformed form: {e}")))?;
            let mut audio = None;
            let mut fields = Vec::new();
            while let Some(field) = form.next_field().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    AppError::bad_request(format!("a malformed form: {e}"))
                }
            })? {
                let name = field.name().unwrap_or("").to_owned();
                let part_type = field.content_type().map(str::to_owned);
                let data = field.bytes().await.map_err(|e| {
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        too_large()
                    } else {
                        AppError::bad_request(format!("a malformed form: {e}"))
                    }
                })?;
                if name == "file" {
                    audio = Some(check(data, part_type.as_deref(), max)?);
                } else {
                    let text = String::from_utf8(data.to_vec()).map_err(|_| {
                        AppError::bad_request(format!("form field {name} is not text"))
                    })?;
                    fields.push((name, text));
                }
            }
            let audio = audio.ok_or_else(|| AppError::bad_request("the form has no file part"))?;
            Ok(Upload { audio, fields })
        }
        Some(t) => {
            // Refuse an unknown type before reading the body.
            format_of(t).ok_or_else(|| unsupported(t))?;
            let bytes = Bytes::from_request(request, &()).await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    AppError::bad_request(format!("cannot read the body: {e}"))
                }
            })?;
            Ok(Upload {
                audio: check(bytes, Some(t), max)?,
                fields: Vec::new(),
            })
        }
        None => Err(unsupported("a body without a content type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_read_from_their_bytes() {
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), Some("wav"));
        assert_eq!(sniff(b"ID3\x04"), Some("mp3"));
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90]), Some("mp3"));
        assert_eq!(sniff(b"OggS\0"), Some("ogg"));
        assert_eq!(sniff(&[0x1A, 0x45, 0xDF, 0xA3, 1]), Some("webm"));
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A "), Some("mp4"));
        assert_eq!(sniff(b"fLaC\0"), Some("flac"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBP"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn the_bytes_must_be_what_their_type_says() {
        let wav = Bytes::from_static(b"RIFF\x24\0\0\0WAVEfmt ");
        assert_eq!(
            check(wav.clone(), Some("audio/wav"), 100)
                .expect("wav")
                .format,
            "wav"
        );
        assert_eq!(
            check(wav.clone(), Some("Audio/X-WAV; codecs=1"), 100)
                .expect("wav")
                .format,
            "wav"
        );
        assert_eq!(
            check(wav.clone(), None, 100).expect("sniffed").format,
            "wav"
        );
        assert_eq!(
            check(wav.clone(), Some("audio/mpeg"), 100)
                .expect_err("not mp3")
                .status,
            400
        );
        assert_eq!(
            check(wav.clone(), Some("text/plain"), 100)
                .expect_err("type")
                .status,
            415
        );
        assert_eq!(
            check(wav, Some("audio/wav"), 4).expect_err("size").status,
            413
        );
        assert_eq!(
            check(Bytes::new(), None, 100).expect_err("empty").status,
            400
        );
    }
}
