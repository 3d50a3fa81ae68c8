//! The task kind `webhook`: a request to a URL outside this instance (an `https://` URL, or
//! an `http://` one the outbound guard allows), with the queue's retries and dead letters.
//!
//! - It goes through the guarded outbound client: internal addresses are refused, as for
//!   every caller-supplied URL, and redirects are not followed (a webhook's answer is its
//!   receiver's, and a redirected POST would change meaning).
//! - Secrets are never stored in the payload: a header's value may name a setting instead
//!   (`{"secret": "TOOLSHED_WEBHOOK_HEADER_GITHUB_TOKEN"}`), read from the environment at
//!   start. Only names starting with `TOOLSHED_WEBHOOK_HEADER_` may be named, so a task can
//!   send neither the instance's other keys nor the signing key anywhere.
//! - A payload cannot set the headers that frame the request or that Toolshed sets itself
//!   (`host`, `content-length`, `transfer-encoding`, `connection`, …, `x-toolshed-*`).
//! - Each delivery takes one of the outbound fetch slots (`TOOLSHED_OUTBOUND_CONCURRENCY`)
//!   and carries its token, so a webhook that points back at this instance is refused
//!   (508) instead of enqueueing itself again and again.
//! - With `TOOLSHED_WEBHOOK_SECRET` set, every delivery carries
//!   `X-Toolshed-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, so the receiver can
//!   tell it came from this instance; `X-Toolshed-Delivery` (the task id) lets it drop
//!   repeats (delivery is at least once).
//! - A 2xx answer is success; the statuses in `retry_on` (default 408, 425, 429 and every
//!   5xx), timeouts and connection failures are retried along the backoff schedule; any
//!   other answer kills the task at once. The status and up to 64 KiB of the answer are
//!   kept as the result.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue, Method};
use hmac::{Hmac, Mac};
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::env::{NamedSecrets, Secret};
use crate::platform::outbound::{FETCH_HEADER, Outbound, OutboundError};
use crate::storage::queue::Outcome;
use crate::storage::worker::{TaskFuture, TaskHandler, TaskRun};

/// The kind's name in `POST /api/queue/tasks`.
pub const KIND: &str = "webhook";
/// The prefix of the settings a header may name as its secret value.
pub const SECRET_PREFIX: &str = "TOOLSHED_WEBHOOK_HEADER_";
/// Headers a payload may not set: they frame the request, or Toolshed sets them.
const RESERVED_HEADERS: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];
/// The most of an answer kept as the result.
const MAX_RESULT_BYTES: usize = 64 * 1024;
/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-toolshed-signature-256";

/// `{url, method?, headers?, body?, retry_on?}` of a `webhook` task.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "url": "https://hooks.example.com/toolshed",
    "method": "POST",
    "headers": {"authorization": {"secret": "TOOLSHED_WEBHOOK_HEADER_EXAMPLE"}, "x-source": "toolshed"},
    "body": {"event": "signed-up", "user": "ada"},
    "retry_on": [408, 429, 503]
}))]
pub struct WebhookPayload {
    /// `https://…` (or an `http://` URL the outbound guard allows).
    pub url: String,
    /// The HTTP method (default `POST`).
    pub method: Option<String>,
    /// Headers: a value is text, or `{"secret": "TOOLSHED_WEBHOOK_HEADER_…"}` naming the
    /// setting that holds it.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub headers: BTreeMap<String, HeaderSource>,
    /// Sent as JSON when present.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub body: Option<Value>,
    /// Statuses to retry (default 408, 425, 429 and 500–599); timeouts and connection
    /// failures are always retried.
    pub retry_on: Option<Vec<u16>>,
}

/// A header's value: written out, or named by the setting that holds it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum HeaderSource {
    Text(String),
    Secret { secret: String },
}

/// The handler: the outbound client, the secrets headers may name, the signing key.
pub struct WebhookTask {
    outbound: Outbound,
    secrets: NamedSecrets,
    signing_key: Option<Secret>,
}

/// A payload checked and resolved into what is sent.
struct Delivery {
    method: Method,
    url: Url,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Vec<u8>>,
    retry_on: Vec<u16>,
}

impl WebhookTask {
    pub fn new(outbound: Outbound, secrets: NamedSecrets, signing_key: Option<Secret>) -> Self {
        WebhookTask {
            outbound,
            secrets,
            signing_key,
        }
    }

    /// Checks a payload and resolves its secrets: refused at enqueue time when it could
    /// never be sent.
    fn prepare(&self, payload: &Value) -> Result<Delivery, String> {
        let parsed: WebhookPayload = serde_json::from_value(payload.clone())
            .map_err(|e| format!("payload of a webhook task: {e}"))?;
        let url = Url::parse(&parsed.url)
            .map_err(|e| format!("payload.url {:?} is not a URL: {e}", parsed.url))?;
        self.outbound
            .check(&url)
            .map_err(|e| format!("payload.url: {e}"))?;
        if url.scheme() != "https" && !self.outbound.allows_host(url.host_str().unwrap_or("")) {
            return Err(format!(
                "payload.url must be https:// (http:// only where the outbound guard lets the host through: TOOLSHED_OUTBOUND_ALLOW_HOSTS, or TOOLSHED_OUTBOUND_ALLOW_PRIVATE); got {}",
                url.scheme()
            ));
        }
        let method = parsed
            .method
            .as_deref()
            .unwrap_or("POST")
            .to_ascii_uppercase();
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("payload.method {method:?} is not an HTTP method"))?;
        let mut headers = Vec::with_capacity(parsed.headers.len());
        for (name, source) in &parsed.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("payload.headers: {name:?} is not a header name"))?;
            if RESERVED_HEADERS.contains(&header.as_str())
                || header.as_str().starts_with("x-toolshed-")
            {
                return Err(format!(
                    "payload.headers: {name:?} is set by the HTTP layer or by Toolshed, not by a task"
                ));
            }
            let value = match source {
                HeaderSource::Text(text) => HeaderValue::from_str(text),
                HeaderSource::Secret { secret } => {
                    if !secret.starts_with(SECRET_PREFIX) {
                        return Err(format!(
                            "payload.headers[{name:?}]: a secret must name a setting starting with {SECRET_PREFIX}, not {secret:?}"
                        ));
                    }
                    let value = self.secrets.get(secret).ok_or_else(|| {
                        format!("payload.headers[{name:?}]: the setting {secret} is not set")
                    })?;
                    HeaderValue::from_str(value.expose()).map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
                }
            }
            .map_err(|_| format!("payload.headers[{name:?}] is not a valid header value"))?;
            headers.push((header, value));
        }
        if let Some(bad) = parsed
            .retry_on
            .iter()
            .flatten()
            .find(|s| !(100..=599).contains(*s))
        {
            return Err(format!("payload.retry_on: {bad} is not an HTTP status"));
        }
        let body = parsed
            .body
            .map(|b| serde_json::to_vec(&b).map_err(|e| e.to_string()))
            .transpose()?;
        Ok(Delivery {
            method,
            url,
            headers,
            body,
            retry_on: parsed.retry_on.unwrap_or_else(default_retry_on),
        })
    }
}

/// 408, 425, 429 and every 5xx.
fn default_retry_on() -> Vec<u16> {
    [408, 425, 429].into_iter().chain(500..=599).collect()
}

/// The `sha256=<hex>` HMAC-SHA256 of `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

impl TaskHandler for WebhookTask {
    fn validate(&self, payload: &Value) -> Result<(), String> {
        self.prepare(payload).map(|_| ())
    }

    fn run(&self, run: TaskRun) -> TaskFuture {
        let TaskRun {
            payload,
            attempt,
            task_id,
            ..
        } = run;
        let delivery = self.prepare(&payload);
        let client = self.outbound.webhooks().cloned();
        let outbound = self.outbound.clone();
        let signing_key = self.signing_key.clone();
        Box::pin(async move {
            let delivery = match delivery {
                Ok(delivery) => delivery,
                // A setting it names was removed since it was enqueued, say.
                Err(e) => return Outcome::Fatal(e),
            };
            let client = match client {
                Ok(client) => client,
                Err(e) => return Outcome::Retry(e.to_string()),
            };
            // The attempt's own timeout (the worker's) bounds the wait for a slot too.
            let fetch = match outbound
                .begin_fetch(std::time::Duration::from_secs(3600))
                .await
            {
                Ok(fetch) => fetch,
                Err(e) => return Outcome::Retry(e.to_string()),
            };
            let body = delivery.body.unwrap_or_default();
            let mut request = client
                .request(delivery.method, delivery.url)
                .header(FETCH_HEADER, fetch.token.as_str())
                .header("x-toolshed-delivery", task_id.to_string())
                .header("x-toolshed-delivery-attempt", attempt.to_string());
            if !body.is_empty() {
                request = request.header("content-type", "application/json");
            }
            for (name, value) in delivery.headers {
                request = request.header(name, value);
            }
            if let Some(key) = signing_key {
                request =
                    request.header(SIGNATURE_HEADER, signature(key.expose().as_bytes(), &body));
            }
            let response = match request.body(body).send().await {
                Ok(response) => response,
                Err(e) => {
                    let error = crate::platform::outbound::classify(e);
                    return match error {
                        OutboundError::Blocked(_) | OutboundError::BadUrl(_) => {
                            Outcome::Fatal(error.to_string())
                        }
                        other => Outcome::Retry(format!("the webhook did not answer: {other}")),
                    };
                }
            };
            let status = response.status().as_u16();
            let headers: BTreeMap<String, String> = response
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
                .collect();
            let (text, truncated) = read_some(response, MAX_RESULT_BYTES).await;
            drop(fetch);
            let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
            let mut result = json!({"status": status, "headers": headers, "body": body});
            if truncated {
                result["truncated"] = json!(true);
            }
            if (200..300).contains(&status) {
                Outcome::Succeeded(result)
            } else if delivery.retry_on.contains(&status) {
                Outcome::Retry(format!("the webhook answered {status}: {}", result["body"]))
            } else {
                Outcome::Fatal(format!("the webhook answered {status}: {}", result["body"]))
            }
        })
    }
}

/// Up to `max` bytes of an answer, as text, and whether there was more. A broken-off answer
/// keeps what arrived.
async fn read_some(mut response: reqwest::Response, max: usize) -> (String, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = max - kept.len();
        if chunk.len() > room {
            kept.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        kept.extend_from_slice(&chunk);
    }
    (String::from_utf8_lossy(&kept).into_owned(), truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_default_retries_the_usual_transient_statuses() {
        let retry = default_retry_on();
        for status in [408, 425, 429, 500, 503, 599] {
            assert!(retry.contains(&status), "{status}");
        }
        for status in [400, 401, 404, 409, 422] {
            assert!(!retry.contains(&status), "{status}");
        }
    }
}
