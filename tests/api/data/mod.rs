//! `/api/data`: synopsys' protocol (`wire`), live queries over SSE (`live`), the JSON
//! conveniences (`json_api`) and proxy mode (`proxy`).

mod json_api;
mod judge;
mod live;
mod proxy;
mod wire;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::TestServer;

pub const QUERY_MEDIA: &str = "application/synopsys-query+json";
pub const EMPTY_REVISION: &str = "NcuV3vKyQgcxiZDMdE37fv";

/// A client that shows redirects instead of following them.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

pub async fn patch(server: &TestServer, transaction: &Value) -> reqwest::Response {
    http()
        .patch(server.url("/api/data"))
        .json(transaction)
        .send()
        .await
        .expect("patch")
}

/// Stores `query`; its path (`/api/data/<id>`).
pub async fn store_query(server: &TestServer, query: &str) -> String {
    let response = http()
        .put(server.url("/api/data"))
        .header("content-type", QUERY_MEDIA)
        .body(query.to_owned())
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

pub async fn answer(server: &TestServer, path: &str) -> Value {
    let response = http()
        .get(server.url(path))
        .header("accept", "application/json")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

pub fn link(id: &str) -> Value {
    json!({"/": id})
}

/// The todo lists of REFERENCE.md's first example, as synopsys' own test data.
pub const L1: &str = "baedreibc2zyxfii55ollky4pzjnqhb3c3xttdr5jnpsesrvrrdbgoml6za";
pub const L2: &str = "baedreihkvt37s35k7qq46r23ibtohpsyypgdtgcsug6mpgmhardgolpbhu";
pub const I1: &str = "baedreihzfeb4fj3n4nhcmuyhvxbtywlk6o4fqqhrri5lktd5eorfgxunt4";
pub const I2: &str = "baedreiby4iodzcfstagcrqotth5aeqsxjlxjhn263qt326b6kn3kmjefwe";
pub const I3: &str = "baedreibrtxj3grtnlac2puu63q3iw55i5kluov4igikzf7a2u4lponthoe";
pub const I4: &str = "baedreighxr24f7hnbywxuiostcpovqzpofcqpvum3acejbl4ukzn5igcwe";

pub fn todo_lists() -> Value {
    let assert = |e: &str, a: &str, v: Value| json!({"Assert": [link(e), a, v]});
    json!([
        assert(L1, "name", json!("Groceries")),
        assert(L1, "todo", link(I1)),
        assert(L1, "todo", link(I2)),
        assert(L1, "todo", link(I3)),
        assert(I1, "title", json!("Milk")),
        assert(I1, "done", json!(true)),
        assert(I2, "title", json!("Bread")),
        assert(I2, "done", json!(false)),
        assert(I3, "title", json!("Eggs")),
        assert(L2, "name", json!("Chores")),
        assert(L2, "todo", link(I4)),
        assert(I4, "title", json!("Laundry")),
    ])
}

pub const TODO_QUERY: &str = r#"{"select":{"id":"?list","name":"?name","todo":[{"id":"?item","title":"?title","completed":"?done"}]},"where":[{"Case":["?list","name","?name"]},{"Case":["?list","todo","?item"]},{"Case":["?item","title","?title"]},{"Or":[{"Case":["?item","done","?done"]},{"And":[{"Not":{"Case":["?item","done","?done"]}},{"Is":["?done",false]}]}]}]}"#;
/// synopsys 5.1.1's id for `TODO_QUERY`.
pub const TODO_QUERY_ID: &str = "ba4jcbngroaqr5xj4ieyirrxgofmkkyl33h7iu7qu7qza2ghjkz5zwsnj";

pub fn todo_answer() -> Value {
    let item = |id: &str, title: &str, done: bool| json!({"completed": done, "id": link(id), "title": title});
    json!([
        {"id": link(L1), "name": "Groceries", "todo": [item(I2, "Bread", false), item(I1, "Milk", true), item(I3, "Eggs", false)]},
        {"id": link(L2), "name": "Chores", "todo": [item(I4, "Laundry", false)]},
    ])
}

/// One server-sent event.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads server-sent events off a response.
pub struct Events {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Events {
    pub fn new(response: reqwest::Response) -> Events {
        Events {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event within `wait`, skipping comments.
    pub async fn next(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event::default();
                let mut data = Vec::new();
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "id" => event.id = Some(value.to_owned()),
                        "event" => event.event = Some(value.to_owned()),
                        "data" => data.push(value.to_owned()),
                        _ => {}
                    }
                }
                if data.is_empty() && event.id.is_none() && event.event.is_none() {
                    continue;
                }
                event.data = data.join("\n");
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        }
    }
}

pub async fn subscribe(
    server: &TestServer,
    path: &str,
    last_event_id: Option<&str>,
) -> (reqwest::header::HeaderMap, Events) {
    let mut request = reqwest::Client::new()
        .get(server.url(path))
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.expect("subscribe");
    assert_eq!(response.status(), 200);
    (response.headers().clone(), Events::new(response))
}
