//! Every request gets an id: the caller's `X-Request-Id` when it is sane, else a new UUID.
//! The id is echoed in the response and attached to every log line of the request.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

/// The id of the request being served, stored in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("-")
    }
}

/// A caller's id is kept only if it is short and made of safe characters, so it cannot
/// forge log lines or headers.
fn is_acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b))
}

fn fresh() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid-uuid"))
}

/// Assigns the id and echoes it in the response.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = match request.headers().get(HEADER) {
        Some(value) if is_acceptable(value) => value.clone(),
        _ => fresh(),
    };
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    response.headers_mut().insert(HEADER, id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids_and_refuses_odd_ones() {
        assert!(is_acceptable(&HeaderValue::from_static("abc-123_x.y")));
        assert!(!is_acceptable(&HeaderValue::from_static("has space")));
        assert!(!is_acceptable(&HeaderValue::from_static("")));
        let long = "a".repeat(MAX_LEN + 1);
        assert!(!is_acceptable(
            &HeaderValue::from_str(&long).expect("ascii")
        ));
    }
}
