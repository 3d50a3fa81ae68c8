//! A live query over server-sent events: the current selection first, then the new one
//! after every transaction that changes it. Each event's `id` is the selection's merkle
//! reference, so a client reconnecting with `Last-Event-ID` equal to the current one gets
//! no duplicate; comments keep idle connections open through proxies every 15 s.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::storage::facts::Facts;
use crate::storage::facts::live::Subscription;
use crate::storage::facts::query::Query;
use crate::storage::facts::reference::Reference;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct Subscriber {
    facts: Facts,
    query: Arc<Query>,
    subscription: Subscription,
    /// The id of the selection the client has.
    seen: Option<String>,
    first: bool,
    failed: bool,
}

pub async fn subscribe(facts: Facts, query: Arc<Query>, last_event_id: Option<String>) -> Response {
    // Registered before the first answer, so no transaction falls between the two.
    let subscription = facts.live().subscribe(&query);
    let subscriber = Subscriber {
        facts,
        query,
        subscription,
        seen: last_event_id,
        first: true,
        failed: false,
    };
    let events = futures_util::stream::unfold(subscriber, |mut s| async move {
        if s.failed {
            return None;
        }
        loop {
            if !s.first {
                s.subscription.notify.notified().await;
            }
            s.first = false;
            let rows = match s.facts.query_recorded(s.query.clone()).await {
                Ok((rows, lookups, tx)) => {
                    s.facts.live().record(&s.subscription, lookups, tx);
                    Value::Array(rows)
                }
                Err(e) => {
                    s.failed = true;
                    let event = Event::default()
                        .event("error")
                        .data(serde_json::json!({"error": {"message": e.to_string()}}).to_string());
                    return Some((Ok::<_, Infallible>(event), s));
                }
            };
            let id = Reference::of(&rows)
                .map(|r| r.to_url_form())
                .unwrap_or_default();
            if s.seen.as_deref() == Some(id.as_str()) {
                continue;
            }
            s.seen = Some(id.clone());
            let event = Event::default()
                .id(id)
                .event("change")
                .data(rows.to_string());
            return Some((Ok(event), s));
        }
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    let headers = response.headers_mut();
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
