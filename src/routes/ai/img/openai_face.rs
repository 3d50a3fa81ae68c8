//! OpenAI's image route beside the LLM gateway's `/v1` ones,
//! `POST /api/ai/llm/v1/images/generations`, so the OpenAI SDKs' `images.generate` works
//! against an instance (over fal models too): one image, as a `url` on this instance or as
//! `b64_json`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::generate;
use super::params::ImageRequest;
use super::state::Img;
use crate::platform::error::AppError;
use crate::platform::extract::AppJson;
use crate::platform::openai_error::{OpenAiError, OpenAiErrorBody};

/// The request fields read here; the others are refused by name.
const HONOURED: [&str; 7] = [
    "prompt",
    "model",
    "n",
    "size",
    "response_format",
    "output_format",
    "quality",
];

fn unsupported(name: &str, why: &str) -> AppError {
    AppError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "unsupported_parameter",
        format!("{name} {why}"),
    )
    .with_param(name)
}

/// Images, as OpenAI's API.
///
/// `model` may be `dall-e-3`, `gpt-image-1` or another OpenAI model (sent to OpenAI),
/// `fal-ai/<model>` or `openai/<model>`; absent, the instance's default. One image a
/// request (`n` 1); `size` `WxH` or `auto`; `quality` only `auto` or `standard`.
#[utoipa::path(
    post,
    path = "/api/ai/llm/v1/images/generations",
    operation_id = "openai_images_generations",
    tag = "ai",
    request_body(content = Object, description = "OpenAI's image request: `prompt`, `model`, `n` (1), `size`, `response_format` (`url` or `b64_json`), `output_format`, `quality` (`auto`, `standard`)",
        example = json!({"model": "gpt-image-1", "prompt": "a lighthouse", "size": "1024x1024"})),
    responses(
        (status = 200, description = "`{created, data: [{url} | {b64_json}]}`", body = Object,
            example = json!({"created": 1795487569, "data": [{"url": "http://127.0.0.1:8000/api/ai/img/files/2cf2…"}]})),
        (status = 400, description = "A bad or unsupported parameter (named in `param`), or the provider refused the request", body = OpenAiErrorBody),
        (status = 413, description = "Body over the limit", body = OpenAiErrorBody),
        (status = 415, description = "Not JSON", body = OpenAiErrorBody),
        (status = 422, description = "JSON of the wrong shape, or the provider's safety checker refused the image", body = OpenAiErrorBody),
        (status = 502, description = "The provider failed", body = OpenAiErrorBody),
        (status = 504, description = "The provider did not finish in time", body = OpenAiErrorBody),
    )
)]
pub async fn generations(
    State(img): State<Img>,
    headers: HeaderMap,
    body: Result<AppJson<Value>, AppError>,
) -> Result<Json<Value>, OpenAiError> {
    let AppJson(body) = body?;
    let Some(fields) = body.as_object() else {
        return Err(AppError::bad_request("the request body must be a JSON object").into());
    };
    if let Some(name) = fields
        .iter()
        .find(|(name, value)| !HONOURED.contains(&name.as_str()) && !value.is_null())
        .map(|(name, _)| name)
    {
        return Err(unsupported(
            name,
            "is not supported by Toolshed, and will not be dropped silently: remove it",
        )
        .into());
    }
    let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
    if fields
        .get("n")
        .is_some_and(|n| !n.is_null() && n.as_u64() != Some(1))
    {
        return Err(unsupported("n", "must be 1: ask once per image").into());
    }
    if let Some(quality) = text("quality").filter(|q| q != "auto" && q != "standard") {
        return Err(unsupported(
            "quality",
            &format!("{quality:?} is not supported (auto, standard)"),
        )
        .into());
    }
    let b64 = match text("response_format").as_deref() {
        None | Some("url") => false,
        Some("b64_json") => true,
        Some(other) => {
            return Err(unsupported(
                "response_format",
                &format!("{other:?} is not url or b64_json"),
            )
            .into());
        }
    };
    let (width, height) = match text("size").as_deref() {
        None | Some("auto") => (None, None),
        Some(size) => {
            let parsed = size
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
            match parsed {
                Some((w, h)) => (Some(w), Some(h)),
                None => {
                    return Err(unsupported(
                        "size",
                        &format!("{size:?} is not WIDTHxHEIGHT or auto"),
                    )
                    .into());
                }
            }
        }
    };
    // A bare OpenAI name (`dall-e-3`) is OpenAI's model.
    let model = text("model").map(|m| {
        if m.starts_with("fal-ai/") || m.starts_with("openai/") {
            m
        } else {
            format!("openai/{m}")
        }
    });
    let request = ImageRequest {
        prompt: text("prompt")
            .ok_or_else(|| AppError::bad_request("prompt is required").with_param("prompt"))?,
        model,
        image_size: None,
        width,
        height,
        seed: None,
        num_inference_steps: None,
        guidance_scale: None,
        output_format: text("output_format"),
    };
    let params = request.normalize(&img.app.config.img_model)?;
    let image = generate::image(&img, &params).await?;
    let datum = if b64 {
        let bytes = tokio::fs::read(img.app.store.blobs.path(&image.blob))
            .await
            .map_err(|e| AppError::internal(format!("cannot read the image: {e}")))?;
        json!({"b64_json": STANDARD.encode(bytes)})
    } else {
        // An absolute URL, as OpenAI gives: on the host the caller reached.
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1");
        json!({"url": format!("http://{host}/api/ai/img/files/{}", image.blob)})
    };
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(Json(json!({"created": created, "data": [datum]})))
}
