//! OpenAI's Images API, `POST /images/generations` (also OpenAI-compatible local image
//! servers, through `OPENAI_BASE_URL`): the image comes back as `b64_json` (GPT image models
//! always) or as a `url` to download.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{Context, ImgError, check_status, download, read_json};
use crate::routes::ai::img::params::Params;

const NAME: &str = "openai";

/// The request body (public for tests of the translation).
pub fn body(params: &Params) -> Value {
    let mut body = json!({
        "model": params.model,
        "prompt": params.prompt,
        "n": 1,
        "size": format!("{}x{}", params.width, params.height),
    });
    if let Some(format) = &params.format {
        body["output_format"] = json!(format);
    }
    body
}

pub async fn generate(cx: &Context<'_>, params: &Params) -> Result<Bytes, ImgError> {
    let key = cx
        .config
        .openai_api_key
        .as_ref()
        .ok_or(ImgError::NotConfigured {
            provider: NAME,
            env: "OPENAI_API_KEY",
        })?;
    let client = cx.outbound.trusted().map_err(|e| ImgError::Protocol {
        provider: NAME,
        message: e.to_string(),
    })?;
    let response = client
        .post(format!(
            "{}/images/generations",
            cx.config.openai_base_url.trim_end_matches('/')
        ))
        .bearer_auth(key.expose())
        .json(&body(params))
        .send()
        .await
        .map_err(|e| super::transport(NAME, crate::platform::outbound::classify(e)))?;
    let response = match check_status(NAME, response).await {
        // OpenAI's moderation refuses with a 400 whose code says so.
        Err(ImgError::Status {
            status: 400,
            message,
            code: Some(code),
            ..
        }) if code == "content_policy_violation" || code == "moderation_blocked" => {
            return Err(ImgError::Refused {
                provider: NAME,
                message,
            });
        }
        other => other?,
    };
    let answer = read_json(NAME, response).await?;
    let image = answer
        .pointer("/data/0")
        .ok_or_else(|| ImgError::Protocol {
            provider: NAME,
            message: "no data[0] in the answer".into(),
        })?;
    if let Some(data) = image["b64_json"].as_str() {
        return STANDARD
            .decode(data)
            .map(Bytes::from)
            .map_err(|e| ImgError::Protocol {
                provider: NAME,
                message: format!("b64_json is not base64 ({e})"),
            });
    }
    match image["url"].as_str() {
        Some(url) => download(cx, url, cx.config.img_timeout_s).await,
        None => Err(ImgError::Protocol {
            provider: NAME,
            message: "data[0] has neither b64_json nor url".into(),
        }),
    }
}
