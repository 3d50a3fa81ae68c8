//! The KV service over HTTP.

use crate::support::{self, client, spawn};
use serde_json::{Value, json};

#[tokio::test]
async fn put_get_delete_an_entry() {
    let server = spawn();
    let http = client();
    let response = server
        .put_json(
            "/api/kv/entries/users/ada",
            &json!({"value": {"name": "Ada"}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let first: Value = response.json().await.expect("json");
    let versionstamp = first["versionstamp"]
        .as_str()
        .expect("versionstamp")
        .to_owned();
    assert_eq!(versionstamp.len(), 20);

    let entry: Value = server.get_json("/api/kv/entries/users/ada").await;
    assert_eq!(entry["key"], json!(["users", "ada"]));
    assert_eq!(entry["value"], json!({"name": "Ada"}));
    assert_eq!(entry["versionstamp"], versionstamp.as_str());

    let second: Value = server
        .put_json("/api/kv/entries/users/ada", &json!({"value": 2}))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        second["versionstamp"].as_str().expect("vs") > versionstamp.as_str(),
        "increasing"
    );

    let deleted = http
        .delete(server.url("/api/kv/entries/users/ada"))
        .send()
        .await
        .expect("send");
    assert_eq!(deleted.status(), 200);
    let gone = http
        .get(server.url("/api/kv/entries/users/ada"))
        .send()
        .await
        .expect("send");
    assert_eq!(gone.status(), 404);
    let body: Value = gone.json().await.expect("json");
    assert!(body["error"].as_str().expect("error").contains("users/ada"));
}

#[tokio::test]
async fn raw_bytes_values_round_trip_as_base64() {
    let server = spawn();
    let response = client()
        .put(server.url("/api/kv/entries/blobs/one"))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 1, 2, 255])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let entry: Value = server.get_json("/api/kv/entries/blobs/one").await;
    assert_eq!(entry["encoding"], "bytes");
    assert_eq!(entry["value"], "AAEC/w==");
}

#[tokio::test]
async fn expiring_entries_disappear() {
    let server = spawn();
    server
        .put_json(
            "/api/kv/entries/tmp/x",
            &json!({"value": 1, "expire_in_ms": 100}),
        )
        .await;
    let entry = client()
        .get(server.url("/api/kv/entries/tmp/x"))
        .send()
        .await
        .expect("send");
    assert_eq!(entry.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let entry = client()
        .get(server.url("/api/kv/entries/tmp/x"))
        .send()
        .await
        .expect("send");
    assert_eq!(entry.status(), 404);
}

#[tokio::test]
async fn list_pages_through_a_prefix_in_order_with_a_cursor() {
    let server = spawn();
    for name in ["c", "a", "e", "b", "d"] {
        server
            .put_json(
                &format!("/api/kv/entries/letters/{name}"),
                &json!({"value": name}),
            )
            .await;
    }
    server
        .put_json("/api/kv/entries/other/z", &json!({"value": "z"}))
        .await;
    let http = client();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = String::from("/api/kv/list?prefix=letters&limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = server.get_json(&url).await;
        for e in page["entries"].as_array().expect("entries") {
            seen.push(e["value"].as_str().expect("value").to_owned());
        }
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);

    let reversed: Value = server
        .get_json("/api/kv/list?prefix=letters&reverse=true&limit=3")
        .await;
    let values: Vec<&str> = reversed["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["value"].as_str().expect("v"))
        .collect();
    assert_eq!(values, ["e", "d", "c"]);
    assert!(reversed["cursor"].is_string());

    let range: Value = server
        .get_json("/api/kv/list?start=letters/b&end=letters/d")
        .await;
    assert_eq!(range["entries"].as_array().expect("entries").len(), 2);

    let bad = http
        .get(server.url("/api/kv/list?prefix=letters&cursor=!!!"))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 400);
    let bad = http
        .get(server.url("/api/kv/list?limit=0"))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 400);
    let bad = http
        .get(server.url("/api/kv/list?limit=abc"))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn atomic_commits_all_or_answers_409() {
    let server = spawn();
    let http = client();
    let atomic = |body: Value| http.post(server.url("/api/kv/atomic")).json(&body).send();
    let created = atomic(json!({
        "checks": [{"key": ["users", {"int": 42}], "versionstamp": null}],
        "mutations": [
            {"type": "set", "key": ["users", {"int": 42}], "value": {"name": "Grace"}},
            {"type": "sum", "key": ["stats", "users"], "value": 1}
        ]
    }))
    .await
    .expect("send");
    assert_eq!(created.status(), 200);
    let created: Value = created.json().await.expect("json");
    assert_eq!(created["ok"], true);
    let versionstamp = created["versionstamp"].as_str().expect("vs").to_owned();

    let again = atomic(json!({
        "checks": [{"key": ["users", {"int": 42}], "versionstamp": null}],
        "mutations": [{"type": "sum", "key": ["stats", "users"], "value": 1}]
    }))
    .await
    .expect("send");
    assert_eq!(again.status(), 409);
    assert_eq!(
        again.json::<Value>().await.expect("json"),
        json!({"ok": false})
    );

    let many: Value = http
        .post(server.url("/api/kv/get-many"))
        .json(&json!({"keys": [["users", {"int": 42}], ["stats", "users"], ["nope"]]}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(many["entries"][0]["versionstamp"], versionstamp.as_str());
    assert_eq!(many["entries"][0]["key"], json!(["users", {"int": 42}]));
    assert_eq!(
        many["entries"][1]["value"], 1,
        "the failed operation applied nothing"
    );
    assert!(many["entries"][2].is_null());

    let updated = atomic(json!({
        "checks": [{"key": ["users", {"int": 42}], "versionstamp": versionstamp}],
        "mutations": [{"type": "delete", "key": ["users", {"int": 42}]}, {"type": "max", "key": ["stats", "users"], "value": 10}]
    }))
    .await
    .expect("send");
    assert_eq!(updated.status(), 200);
}

#[tokio::test]
async fn bad_input_gets_clear_json_errors() {
    let server = spawn();
    let http = client();
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            http.post(server.url("/api/kv/atomic"))
                .json(&json!({"mutations": [{"type": "set", "key": "notalist", "value": 1}]})),
            400,
            "mutations[0].key",
        ),
        (
            http.post(server.url("/api/kv/atomic"))
                .json(&json!({"checks": [{"key": ["a"], "versionstamp": "xyz"}]})),
            400,
            "versionstamp",
        ),
        (
            http.post(server.url("/api/kv/atomic"))
                .json(&json!({"mutations": [{"type": "explode", "key": ["a"]}]})),
            422,
            "explode",
        ),
        (
            http.post(server.url("/api/kv/atomic"))
                .header("content-type", "application/json")
                .body("{nope"),
            400,
            "",
        ),
        (
            http.put(server.url("/api/kv/entries/a"))
                .header("content-type", "text/plain")
                .body("x"),
            415,
            "content-type",
        ),
        (
            http.put(server.url("/api/kv/entries/a"))
                .json(&json!({"valu": 1})),
            422,
            "",
        ),
        (
            http.put(server.url("/api/kv/entries/a"))
                .json(&json!({"value": "x".repeat(1_100_000)})),
            413,
            "limit",
        ),
        (
            http.put(server.url(&format!("/api/kv/entries/{}", "k".repeat(3000))))
                .json(&json!({"value": 1})),
            413,
            "key",
        ),
        (
            http.post(server.url("/api/kv/atomic"))
                .json(&json!({"mutations": [{"type": "sum", "key": ["s"], "value": 1.5}]})),
            422,
            "",
        ),
    ];
    for (request, status, needle) in cases {
        let response = request.send().await.expect("send");
        assert_eq!(response.status().as_u16(), status, "{needle}");
        let body: Value = response.json().await.expect("JSON error body");
        let message = body["error"].as_str().expect("error message");
        assert!(message.contains(needle), "{message:?} mentions {needle:?}");
    }
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"type": "delete", "key": [format!("k{i}")]}))
        .collect();
    let response = http
        .post(server.url("/api/kv/atomic"))
        .json(&json!({"mutations": many}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn path_keys_mean_what_they_say() {
    let server = spawn();
    let put = server
        .put_json("/api/kv/entries/a%2Fb", &json!({"value": "one part"}))
        .await;
    assert_eq!(put.status(), 200);
    let entry: Value = server.get_json("/api/kv/entries/a%2Fb").await;
    assert_eq!(
        entry["key"],
        json!(["a/b"]),
        "an encoded slash stays in its part"
    );
    assert_eq!(
        server.get("/api/kv/entries/a/b").await.status(),
        404,
        "[\"a\", \"b\"] is another key"
    );

    server
        .put_json("/api/kv/entries/users/", &json!({"value": "trailing"}))
        .await;
    let entry: Value = server.get_json("/api/kv/entries/users/").await;
    assert_eq!(
        entry["key"],
        json!(["users", ""]),
        "an empty last part is a part"
    );
    assert_eq!(server.get("/api/kv/entries/users").await.status(), 404);

    let listed: Value = server.get_json("/api/kv/list?prefix=a%2Fb").await;
    assert_eq!(
        listed["entries"],
        json!([]),
        "prefix [\"a/b\"] has no children"
    );
    let listed: Value = server.get_json("/api/kv/list?prefix=users").await;
    assert_eq!(listed["entries"][0]["key"], json!(["users", ""]));

    let empty = server.get("/api/kv/entries/").await;
    assert_eq!(empty.status(), 404, "no key, no route");
    let bad = server.get("/api/kv/entries/%FF").await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn typed_keys_are_listed_from_a_json_query_or_a_body() {
    let server = spawn();
    let http = client();
    let set = |key: Value| {
        http.post(server.url("/api/kv/atomic"))
            .json(&json!({"mutations": [{"type": "set", "key": key, "value": 1}]}))
            .send()
    };
    for key in [
        json!(["users", {"int": 7}, "a"]),
        json!(["users", {"int": 7}, "b"]),
        json!(["users", {"int": 8}, "a"]),
        json!(["users", 7.5]),
        json!(["flags", true]),
        json!(["blobs", {"bytes": "AAE="}]),
    ] {
        assert_eq!(set(key).await.expect("send").status(), 200);
    }
    let keys = |page: &Value| -> Vec<Value> {
        page["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["key"].clone())
            .collect()
    };
    let prefix = "%5B%22users%22%2C%7B%22int%22%3A7%7D%5D"; // ["users",{"int":7}]
    let page: Value = server
        .get_json(&format!("/api/kv/list?prefix={prefix}"))
        .await;
    assert_eq!(
        keys(&page),
        vec![
            json!(["users", {"int": 7}, "a"]),
            json!(["users", {"int": 7}, "b"])
        ]
    );
    let page: Value = server
        .post_json("/api/kv/list", &json!({"prefix": ["flags"]}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(keys(&page), vec![json!(["flags", true])]);
    let page: Value = server
        .post_json(
            "/api/kv/list",
            &json!({"start": ["users", {"int": 8}], "end": ["users", 8.0], "limit": 5}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        keys(&page),
        vec![json!(["users", {"int": 8}, "a"]), json!(["users", 7.5])],
        "integers sort before floats, as in Deno"
    );
    let page: Value = server
        .post_json("/api/kv/list", &json!({"prefix": ["blobs"]}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(keys(&page), vec![json!(["blobs", {"bytes": "AAE="}])]);
}

#[tokio::test]
async fn selectors_deno_refuses_are_refused() {
    let server = spawn();
    for (query, needle) in [
        (
            "prefix=users&start=other/a",
            "start key is not in the keyspace",
        ),
        (
            "prefix=users&start=users",
            "start key is not in the keyspace",
        ),
        ("prefix=users&end=zzz", "end key is not in the keyspace"),
        ("prefix=a&start=a/b&end=a/c", "not all three"),
        ("start=b&end=a", "greater than end"),
    ] {
        let response = server.get(&format!("/api/kv/list?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.expect("json");
        assert!(
            body["error"].as_str().expect("error").contains(needle),
            "{query}: {body}"
        );
    }
    let within: Value = server
        .get_json("/api/kv/list?prefix=users&start=users/m")
        .await;
    assert_eq!(within["entries"], json!([]));
}

#[tokio::test]
async fn any_twenty_hex_digit_versionstamp_is_a_check_that_fails() {
    let server = spawn();
    server
        .put_json("/api/kv/entries/v", &json!({"value": 1}))
        .await;
    let response = server
        .post_json(
            "/api/kv/atomic",
            &json!({"checks": [{"key": ["v"], "versionstamp": "0000000000000001ab12"}],
                    "mutations": [{"type": "set", "key": ["v"], "value": 2}]}),
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"ok": false})
    );
}

async fn atomic(server: &support::TestServer, mutations: Value) -> reqwest::Response {
    server
        .post_json("/api/kv/atomic", &json!({"mutations": mutations}))
        .await
}

async fn value_at(server: &support::TestServer, path: &str) -> Value {
    server.get_json(&format!("/api/kv/entries/{path}")).await["value"].clone()
}

/// `sum` adds signed 64-bit integers (an absent key counts as 0, negatives subtract); a
/// result outside the 64-bit range is refused (400) and nothing is applied — unlike Deno's
/// `KvU64`, which wraps modulo 2^64 and has no negatives. `min` and `max` keep the smaller or
/// larger. A stored value that is not an integer is refused.
#[tokio::test]
async fn sum_min_and_max_are_signed_64_bit_integers() {
    let server = spawn();
    let summed = atomic(
        &server,
        json!([{"type": "sum", "key": ["n"], "value": 5}, {"type": "sum", "key": ["n"], "value": -8}]),
    )
    .await;
    assert_eq!(summed.status(), 200);
    assert_eq!(value_at(&server, "n").await, json!(-3));
    atomic(
        &server,
        json!([{"type": "set", "key": ["big"], "value": i64::MAX}]),
    )
    .await;
    let overflow = atomic(
        &server,
        json!([
            {"type": "set", "key": ["untouched"], "value": 1},
            {"type": "sum", "key": ["big"], "value": 1}
        ]),
    )
    .await;
    assert_eq!(overflow.status(), 400);
    let body: Value = overflow.json().await.expect("json");
    assert!(
        body["error"].as_str().expect("error").contains("overflows"),
        "{body}"
    );
    assert_eq!(value_at(&server, "big").await, json!(i64::MAX));
    assert_eq!(server.get("/api/kv/entries/untouched").await.status(), 404);
    atomic(
        &server,
        json!([{"type": "min", "key": ["n"], "value": -10}, {"type": "max", "key": ["m"], "value": 4}]),
    )
    .await;
    assert_eq!(value_at(&server, "n").await, json!(-10));
    assert_eq!(value_at(&server, "m").await, json!(4));
    atomic(
        &server,
        json!([{"type": "set", "key": ["text"], "value": "x"}]),
    )
    .await;
    let not_integer = atomic(
        &server,
        json!([{"type": "sum", "key": ["text"], "value": 1}]),
    )
    .await;
    assert_eq!(not_integer.status(), 400);
}

#[tokio::test]
async fn media_types_are_case_insensitive() {
    let server = spawn();
    let response = client()
        .put(server.url("/api/kv/entries/case"))
        .header("content-type", "Application/JSON; charset=UTF-8")
        .body(r#"{"value": 1}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
}
