//! Images in messages, made ready before planning: a `data:` URL is checked, an `http(s)`
//! URL fetched through the shared outbound guard (size-capped, its type read from the
//! bytes), so every provider receives base64 and none has to reach the caller's URL.

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Url;

use super::plan::Ask;
use super::providers::{Part, data_url};
use crate::platform::error::AppError;
use crate::platform::media_type;
use crate::platform::outbound::{FETCH_HEADER, Outbound, OutboundError, classify, read_capped};

/// Largest image, fetched or inline (what every provider takes).
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;
/// How long fetching one image may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

fn bad(message: String) -> AppError {
    AppError::bad_request(message).with_param("messages")
}

/// Most images in one request.
const MAX_IMAGES: usize = 20;

/// Turns every image of the request into a checked `data:` URL.
pub async fn inline(outbound: &Outbound, ask: &mut Ask) -> Result<(), AppError> {
    let count = ask
        .messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter(|p| matches!(p, Part::Image(_)))
        .count();
    if count > MAX_IMAGES {
        return Err(bad(format!(
            "at most {MAX_IMAGES} images a request, not {count}"
        )));
    }
    for message in &mut ask.messages {
        for part in &mut message.parts {
            if let Part::Image(url) = part {
                *url = ready(outbound, url).await?;
            }
        }
    }
    Ok(())
}

async fn ready(outbound: &Outbound, url: &str) -> Result<String, AppError> {
    if url.starts_with("data:") {
        let (_, data) = data_url(url)
            .ok_or_else(|| bad("an image data: URL must be data:<type>;base64,<data>".into()))?;
        let bytes = STANDARD
            .decode(data)
            .map_err(|e| bad(format!("an image data: URL is not valid base64 ({e})")))?;
        return checked(&bytes);
    }
    let parsed = Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| bad("an image URL must be https:, http: or data:".into()))?;
    outbound.check(&parsed)?;
    let fetch = outbound.begin_fetch(FETCH_TIMEOUT).await?;
    let response = outbound
        .guarded()?
        .get(parsed)
        .header(FETCH_HEADER, fetch.token.as_str())
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(classify)?;
    let status = response.status();
    if !status.is_success() {
        return Err(AppError::new(
            StatusCode::BAD_REQUEST,
            "image_unavailable",
            format!("the image at {url} answered {status}"),
        )
        .with_param("messages"));
    }
    let bytes = read_capped(response, MAX_IMAGE_BYTES)
        .await
        .map_err(|e| match e {
            OutboundError::TooLarge(_) => too_large(),
            other => other.into(),
        })?;
    checked(&bytes)
}

fn too_large() -> AppError {
    AppError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "image_too_large",
        format!("an image is larger than {MAX_IMAGE_BYTES} bytes"),
    )
    .with_param("messages")
}

/// The bytes as a `data:` URL, if they are an image of a type providers take.
fn checked(bytes: &[u8]) -> Result<String, AppError> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(too_large());
    }
    let media_type = media_type::image(bytes)
        .ok_or_else(|| bad("an image is not PNG, JPEG, GIF or WebP".into()))?;
    Ok(format!(
        "data:{media_type};base64,{}",
        STANDARD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_images_become_data_urls() {
        let url = checked(b"GIF89a..").expect("gif");
        assert!(url.starts_with("data:image/gif;base64,"));
        assert!(checked(b"%PDF").is_err());
    }
}
