//! Which Chat Completions parameters the OpenAI face honours. A parameter it cannot honour
//! is refused with a 400 that names it, never dropped: a caller who sends `seed` or `tools`
//! must be able to tell that they took no effect. Parameters at the value that changes
//! nothing (`logprobs: false`, …) or `null` pass.

use serde_json::Value;

use super::schemas::ChatCompletionRequest;
use crate::platform::error::AppError;

/// The request fields `ChatCompletionRequest` reads.
pub const HONOURED: [&str; 20] = [
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "temperature",
    "stream",
    "stream_options",
    "top_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "user",
    "n",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "fallbacks",
    "cache",
];

/// Whether `value` is the one at which `name` changes nothing.
fn is_no_op(name: &str, value: &Value) -> bool {
    match name {
        "logprobs" => value == &Value::Bool(false),
        _ => false,
    }
}

/// The request, once every field in it is one the face honours.
pub fn parse(mut body: Value) -> Result<ChatCompletionRequest, AppError> {
    let Some(fields) = body.as_object_mut() else {
        return Err(AppError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    let mut refused = Vec::new();
    fields.retain(|name, value| {
        if HONOURED.contains(&name.as_str()) {
            return true;
        }
        if !value.is_null() && !is_no_op(name, value) {
            refused.push(name.clone());
        }
        false
    });
    if let Some(first) = refused.first() {
        let model = fields
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("any model");
        return Err(AppError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "unsupported_parameter",
            format!(
                "Toolshed does not support {} for {model} yet, and will not drop {}: remove {}",
                refused
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if refused.len() == 1 {
                    "it silently"
                } else {
                    "them silently"
                },
                if refused.len() == 1 { "it" } else { "them" },
            ),
        )
        .with_param(first.clone()));
    }
    serde_json::from_value(body).map_err(|e| {
        AppError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            format!("the request does not have Chat Completions' shape: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ask(extra: Value) -> Value {
        let mut body =
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    }

    #[test]
    fn every_honoured_field_is_read() {
        let body = json!({
            "model": "m", "messages": [], "max_tokens": 1, "max_completion_tokens": 1,
            "stop": "x", "temperature": 0.5, "stream": false,
            "stream_options": {"include_usage": true}, "top_p": 0.9, "seed": 1,
            "presence_penalty": 0.1, "frequency_penalty": 0.1, "user": "u", "n": 1, "response_format": {"type": "text"}, "fallbacks": [],
            "tools": [], "tool_choice": "auto", "parallel_tool_calls": true,
            "cache": false,
        });
        assert_eq!(body.as_object().expect("object").len(), HONOURED.len());
        parse(body).expect("every honoured field parses");
    }

    #[test]
    fn what_is_not_honoured_is_named() {
        for field in ["functions", "logit_bias", "top_logprobs", "function_call"] {
            let err = parse(ask(json!({field: 2}))).expect_err(field);
            assert_eq!(err.status, 400);
            assert_eq!(err.code, "unsupported_parameter");
            assert_eq!(err.param.as_deref(), Some(field));
            assert!(
                err.message.contains(&format!("`{field}`")),
                "{}",
                err.message
            );
        }
        let err = parse(ask(json!({"functions": [], "logprobs": true}))).expect_err("two");
        assert!(
            err.message.contains("`functions`") && err.message.contains("`logprobs`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn no_op_values_and_nulls_pass() {
        let body = ask(json!({
            "logprobs": false, "functions": null,
        }));
        parse(body).expect("nothing to refuse");
    }

    #[test]
    fn a_wrong_shape_is_422() {
        let err = parse(json!({"model": 3, "messages": []})).expect_err("shape");
        assert_eq!(err.status, 422);
        assert_eq!(parse(json!([1])).expect_err("array").status, 400);
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        let parsed =
            parse(ask(json!({"max_tokens": 64.0, "n": 2.0, "seed": -3.0}))).expect("whole");
        assert_eq!(
            (parsed.max_tokens, parsed.n, parsed.seed),
            (Some(64), Some(2), Some(-3))
        );
        assert_eq!(
            parse(ask(json!({"max_tokens": 64.5})))
                .expect_err("fraction")
                .status,
            422
        );
        assert_eq!(
            parse(ask(json!({"max_tokens": -1})))
                .expect_err("negative")
                .status,
            422
        );
        assert_eq!(
            parse(ask(json!({"n": 1e20}))).expect_err("range").status,
            422
        );
    }
}
