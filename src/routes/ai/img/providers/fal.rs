//! fal.ai image models (Flux …) through the queue API (`platform::fal_queue`): the input in
//! fal's names, the output's `images[0].url` downloaded, its safety flag honoured.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{Context, ImgError, download};
use crate::platform::fal_queue::{self, FalError};
use crate::routes::ai::img::params::Params;

const NAME: &str = "fal";

/// The model input (public for tests of the translation).
pub fn input(params: &Params) -> Value {
    let mut input = Map::new();
    input.insert("prompt".into(), json!(params.prompt));
    input.insert(
        "image_size".into(),
        json!({"width": params.width, "height": params.height}),
    );
    input.insert("num_images".into(), json!(1));
    input.insert("enable_safety_checker".into(), json!(true));
    for (name, value) in [
        ("seed", params.seed.map(|v| json!(v))),
        ("num_inference_steps", params.steps.map(|v| json!(v))),
        ("guidance_scale", params.guidance.map(|v| json!(v))),
        ("output_format", params.format.as_ref().map(|v| json!(v))),
    ] {
        if let Some(value) = value {
            input.insert(name.into(), value);
        }
    }
    Value::Object(input)
}

pub async fn generate(cx: &Context<'_>, params: &Params) -> Result<Bytes, ImgError> {
    let client = cx.outbound.trusted().map_err(|e| ImgError::Protocol {
        provider: NAME,
        message: e.to_string(),
    })?;
    let output = fal_queue::run(
        client,
        &cx.config.fal_queue_url,
        cx.config.fal_key.as_ref(),
        &params.model,
        &input(params),
    )
    .await
    .map_err(|e| match e {
        FalError::NotConfigured => ImgError::NotConfigured {
            provider: NAME,
            env: "FAL_KEY",
        },
        FalError::Status { status, message } => ImgError::Status {
            provider: NAME,
            status,
            message,
            code: None,
        },
        FalError::Timeout => ImgError::Timeout(NAME),
        FalError::Protocol(message) => ImgError::Protocol {
            provider: NAME,
            message,
        },
    })?;
    if output
        .pointer("/has_nsfw_concepts/0")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Err(ImgError::Refused {
            provider: NAME,
            message: "its safety checker flagged the image".into(),
        });
    }
    let url = output
        .pointer("/images/0/url")
        .and_then(Value::as_str)
        .ok_or_else(|| ImgError::Protocol {
            provider: NAME,
            message: "no images[0].url in the result".into(),
        })?;
    download(cx, url, cx.config.img_timeout_s).await
}
