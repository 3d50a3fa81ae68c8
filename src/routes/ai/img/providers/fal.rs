//! fal.ai's queue API: submit to `<queue>/<model>`, poll the returned `status_url` through
//! `IN_QUEUE` and `IN_PROGRESS` to `COMPLETED`, read the `response_url`, download
//! `images[0].url`. Every call carries `Authorization: Key $FAL_KEY`, so the URLs fal hands
//! back are followed only on fal's own host.

use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use serde_json::{Map, Value, json};

use super::{Context, ImgError, check_status, download, read_json};
use crate::routes::ai::img::params::Params;

const NAME: &str = "fal";
/// First wait between status polls; it doubles up to `MAX_POLL`.
const FIRST_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_secs(1);

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

/// A URL fal returned, if it is on fal's queue host.
fn own_url(queue: &Url, value: &Value, what: &str) -> Result<Url, ImgError> {
    let protocol = |message: String| ImgError::Protocol {
        provider: NAME,
        message,
    };
    let text = value[what]
        .as_str()
        .ok_or_else(|| protocol(format!("no {what} in the queue's answer")))?;
    let url = Url::parse(text).map_err(|e| protocol(format!("{what} {text:?}: {e}")))?;
    if url.host_str() != queue.host_str()
        || url.port_or_known_default() != queue.port_or_known_default()
    {
        return Err(protocol(format!(
            "{what} {text} is not on the queue's host"
        )));
    }
    Ok(url)
}

pub async fn generate(cx: &Context<'_>, params: &Params) -> Result<Bytes, ImgError> {
    let key = cx.config.fal_key.as_ref().ok_or(ImgError::NotConfigured {
        provider: NAME,
        env: "FAL_KEY",
    })?;
    let authorization = format!("Key {}", key.expose());
    let client = cx.outbound.trusted().map_err(|e| ImgError::Protocol {
        provider: NAME,
        message: e.to_string(),
    })?;
    let base = cx.config.fal_queue_url.trim_end_matches('/');
    let queue = Url::parse(base).map_err(|e| ImgError::Protocol {
        provider: NAME,
        message: format!("FAL_QUEUE_URL: {e}"),
    })?;
    let send = |request: reqwest::RequestBuilder| async {
        let response = request
            .header(reqwest::header::AUTHORIZATION, &authorization)
            .send()
            .await
            .map_err(|e| super::transport(NAME, crate::platform::outbound::classify(e)))?;
        check_status(NAME, response).await
    };
    let submitted = read_json(
        NAME,
        send(
            client
                .post(format!("{base}/{}", params.model))
                .json(&input(params)),
        )
        .await?,
    )
    .await?;
    let status_url = own_url(&queue, &submitted, "status_url")?;
    let response_url = own_url(&queue, &submitted, "response_url")?;
    let mut wait = FIRST_POLL;
    loop {
        let status = read_json(NAME, send(client.get(status_url.clone())).await?).await?;
        match status["status"].as_str() {
            Some("COMPLETED") => break,
            Some("IN_QUEUE" | "IN_PROGRESS") => {}
            other => {
                return Err(ImgError::Protocol {
                    provider: NAME,
                    message: format!("the queue says the request is {other:?}"),
                });
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_POLL);
    }
    let output = read_json(NAME, send(client.get(response_url)).await?).await?;
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
