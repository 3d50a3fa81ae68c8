//! Every request gets an id: the caller's `X-Request-Id` when it is sane, else a new UUID.
//! The id is echoed in the response and attached to every log line of the request (the
//! request log middleware applies both).

use std::cell::Cell;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The header, as a constant name: a `&str` would be parsed and validated on every use.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");
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

thread_local! {
    /// Per-thread generator state, seeded once from the OS: asking the OS for randomness on
    /// every request costs a syscall.
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u64::from_le_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[8],
    ]) | 1
}

/// wyrand: small, fast, and good enough for identifiers (not for secrets).
fn next_u64() -> u64 {
    RNG.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// A new random (version 4) UUID.
fn fresh() -> HeaderValue {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&next_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&next_u64().to_le_bytes());
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut buf);
    // Owned by one shared allocation: the id is cloned for the log scope and the response,
    // and a value copied from a slice would allocate again on its first clone.
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid-uuid"))
}

/// The id for a request with these headers.
pub fn resolve(headers: &HeaderMap) -> RequestId {
    match headers.get(&HEADER) {
        Some(value) if is_acceptable(value) => RequestId(value.clone()),
        _ => RequestId(fresh()),
    }
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

    #[test]
    fn fresh_ids_are_distinct_v4_uuids() {
        let a = fresh();
        let b = fresh();
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(a.to_str().expect("ascii")).expect("uuid");
        assert_eq!(parsed.get_version_num(), 4);
    }
}
