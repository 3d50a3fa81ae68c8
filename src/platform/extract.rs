//! Request extractors whose rejections are `AppError`s, so bad input always gets the JSON
//! error shape instead of axum's plain-text default.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::platform::error::AppError;
use crate::platform::state::AppState;

/// A JSON body, rejecting with `AppError`: 415 when the content type is not JSON
/// (`application/json` or `…+json`, in any case), 413 over the body limit, 400 when
/// malformed, 422 when of the wrong shape.
///
/// Whole numbers written with a fraction (`2.0`) count as integers, as JSON Schema says they
/// are (and as every JavaScript client means them): a body is read as it is first, and only
/// when that fails is it read again with such numbers made integers.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<T, S> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        if !is_json(request.headers()) {
            return Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a request body with content-type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_error)?;
        parse_json(&bytes).map(AppJson)
    }
}

/// A raw body, rejecting with `AppError` (413 over the body limit, 400 when broken off).
#[derive(Debug)]
pub struct AppBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for AppBytes {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        Bytes::from_request(request, state)
            .await
            .map(AppBytes)
            .map_err(body_error)
    }
}

/// The media type of `Content-Type`, lower-cased (media types are case-insensitive, RFC
/// 9110 §8.3.1), without parameters; empty when there is none.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether the headers name a JSON media type.
pub fn is_json(headers: &HeaderMap) -> bool {
    let media = media_type(headers);
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// The body could not be read: over the limit (413) or broken off (400).
fn body_error(rejection: BytesRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::payload_too_large("request body is larger than this route accepts")
    } else {
        AppError::bad_request(rejection.body_text())
    }
}

/// Parses a JSON body (see [`AppJson`]). Every body this API takes is a JSON object: serde
/// would also read a struct from an array of its fields, which no schema here allows.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            "the body must be a JSON object",
        ));
    }
    match axum::Json::<T>::from_bytes(bytes) {
        Ok(axum::Json(value)) => Ok(value),
        Err(JsonRejection::JsonDataError(first)) => {
            let retried = serde_json::from_slice::<Value>(bytes)
                .ok()
                .and_then(|mut value| integral_numbers(&mut value).then_some(value))
                .and_then(|value| serde_json::to_vec(&value).ok())
                .map(|normalized| axum::Json::<T>::from_bytes(&normalized));
            match retried {
                Some(Ok(axum::Json(value))) => Ok(value),
                Some(Err(rejection)) => Err(rejection.into()),
                None => Err(JsonRejection::JsonDataError(first).into()),
            }
        }
        Err(rejection) => Err(rejection.into()),
    }
}

/// The largest whole number a JSON float holds exactly (2^53).
const EXACT: f64 = 9_007_199_254_740_992.0;

/// Turns whole numbers written with a fraction into integers, everywhere in `value`;
/// answers whether it changed anything.
fn integral_numbers(value: &mut Value) -> bool {
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() <= EXACT => {
                *value = Value::from(f as i64);
                true
            }
            _ => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |c, v| integral_numbers(v) | c),
        Value::Object(map) => map.values_mut().fold(false, |c, v| integral_numbers(v) | c),
        _ => false,
    }
}

/// `axum::extract::Query`, rejecting with a JSON 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct AppQuery<T>(pub T);

/// `axum::extract::Path`, rejecting with a JSON 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct AppPath<T>(pub T);

/// Who made the request (the token's fingerprint, or the caller a task acts for), as the
/// text stored with what it creates; `None` on an instance without tokens.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<String>);

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        Ok(Caller(
            state
                .access
                .caller(parts)
                .map(|fingerprint| fingerprint.to_string()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Limits {
        delay_ms: u64,
        ratio: f64,
        nested: Vec<i32>,
    }

    #[test]
    fn whole_numbers_with_a_fraction_are_integers_and_fractions_are_not() {
        let parsed: Limits =
            parse_json(br#"{"delay_ms": 2000.0, "ratio": 0.5, "nested": [-3.0]}"#).expect("ok");
        assert_eq!(
            parsed,
            Limits {
                delay_ms: 2000,
                ratio: 0.5,
                nested: vec![-3]
            }
        );
        let error = parse_json::<Limits>(br#"{"delay_ms": 2.5, "ratio": 1, "nested": []}"#)
            .expect_err("a fraction is no integer");
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        let error = parse_json::<Limits>(b"{").expect_err("malformed");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn json_media_types_in_any_case_are_json() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().expect("header"));
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=UTF-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/json"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
