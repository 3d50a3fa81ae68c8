//! fal.ai's queue API, for every service that runs a fal model: submit the input to
//! `<queue>/<model>`, poll the returned `status_url` through `IN_QUEUE` and `IN_PROGRESS`
//! to `COMPLETED`, read the `response_url`. Every call carries `Authorization: Key
//! $FAL_KEY`, so the URLs fal hands back are followed only on the queue's own host.

use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use crate::env::Secret;
use crate::platform::outbound::{OutboundError, classify, read_capped};

/// First wait between status polls; it doubles up to `MAX_POLL`.
const FIRST_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_secs(1);
/// Largest answer read from the queue.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FalError {
    #[error("fal is not configured: set FAL_KEY")]
    NotConfigured,
    #[error("fal answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("fal did not answer in time")]
    Timeout,
    #[error("fal: {0}")]
    Protocol(String),
}

fn transport(e: OutboundError) -> FalError {
    match e {
        OutboundError::Timeout => FalError::Timeout,
        other => FalError::Protocol(other.to_string()),
    }
}

/// The message of a fal error body (`detail`, which may be a list of problems), else the body.
fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => match value
            .get("detail")
            .or_else(|| value.pointer("/error/message"))
        {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => value.to_string(),
        },
        Err(_) => String::from_utf8_lossy(body).chars().take(500).collect(),
    }
}

/// A URL fal returned, if it is on the queue's host.
fn own_url(queue: &Url, value: &Value, what: &str) -> Result<Url, FalError> {
    let text = value[what]
        .as_str()
        .ok_or_else(|| FalError::Protocol(format!("no {what} in the queue's answer")))?;
    let url = Url::parse(text).map_err(|e| FalError::Protocol(format!("{what} {text:?}: {e}")))?;
    if url.host_str() != queue.host_str()
        || url.port_or_known_default() != queue.port_or_known_default()
    {
        return Err(FalError::Protocol(format!(
            "{what} {text} is not on the queue's host"
        )));
    }
    Ok(url)
}

async fn send(request: reqwest::RequestBuilder, authorization: &str) -> Result<Value, FalError> {
    let response = request
        .header(reqwest::header::AUTHORIZATION, authorization)
        .send()
        .await
        .map_err(|e| transport(classify(e)))?;
    let status = response.status();
    let body = read_capped(response, MAX_ANSWER).await.map_err(transport)?;
    if !status.is_success() {
        return Err(FalError::Status {
            status: status.as_u16(),
            message: error_message(&body),
        });
    }
    serde_json::from_slice(&body)
        .map_err(|e| FalError::Protocol(format!("an answer that is not JSON ({e})")))
}

/// Runs `model` on `input` through the queue at `base` and returns its output.
pub async fn run(
    client: &reqwest::Client,
    base: &str,
    key: Option<&Secret>,
    model: &str,
    input: &Value,
) -> Result<Value, FalError> {
    let key = key.ok_or(FalError::NotConfigured)?;
    let authorization = format!("Key {}", key.expose());
    let base = base.trim_end_matches('/');
    let queue = Url::parse(base).map_err(|e| FalError::Protocol(format!("FAL_QUEUE_URL: {e}")))?;
    let submitted = send(
        client.post(format!("{base}/{model}")).json(input),
        &authorization,
    )
    .await?;
    let status_url = own_url(&queue, &submitted, "status_url")?;
    let response_url = own_url(&queue, &submitted, "response_url")?;
    let mut wait = FIRST_POLL;
    loop {
        let status = send(client.get(status_url.clone()), &authorization).await?;
        match status["status"].as_str() {
            Some("COMPLETED") => break,
            Some("IN_QUEUE" | "IN_PROGRESS") => {}
            other => {
                return Err(FalError::Protocol(format!(
                    "the queue says the request is {other:?}"
                )));
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_POLL);
    }
    send(client.get(response_url), &authorization).await
}
