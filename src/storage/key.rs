//! KV keys: tuples of typed parts, encoded so that byte order equals key order.
//!
//! The encoding is the FoundationDB tuple layer that Deno KV uses, so keys sort exactly as
//! they do in Deno: bytes < string < integer (Deno's bigint) < float (Deno's number) < false
//! < true; bytes and strings by byte order, numbers by value with
//! -NaN < -Inf < … < -0.0 < 0.0 < … < Inf < NaN. SQLite compares BLOBs with memcmp, so a
//! range scan over encoded keys is a range scan in key order.

use std::cmp::Ordering;

use crate::storage::error::{Result, StorageError};

/// Longest encoded key accepted, as in Deno KV.
pub const MAX_KEY_BYTES: usize = 2048;

const BYTES: u8 = 0x01;
const STRING: u8 = 0x02;
const INT_ZERO: u8 = 0x14;
const DOUBLE: u8 = 0x21;
const FALSE: u8 = 0x26;
const TRUE: u8 = 0x27;

/// One part of a key.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyPart {
    Bytes(Vec<u8>),
    String(String),
    /// A whole number (Deno's `bigint`, limited here to 64 bits).
    Int(i64),
    /// A floating-point number (Deno's `number`).
    Float(f64),
    Bool(bool),
}

/// A whole key: a tuple of parts.
pub type Key = Vec<KeyPart>;

/// Appends `bytes`, escaping NUL as 0x00 0xFF and ending with 0x00.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.push(0);
}

fn push_int(out: &mut Vec<u8>, n: i64) {
    if n == 0 {
        out.push(INT_ZERO);
        return;
    }
    let magnitude = n.unsigned_abs();
    let len = 8 - (magnitude.leading_zeros() / 8) as usize;
    let be = magnitude.to_be_bytes();
    let digits = &be[8 - len..];
    if n > 0 {
        out.push(INT_ZERO + len as u8);
        out.extend_from_slice(digits);
    } else {
        // Negative numbers store the ones' complement so that larger magnitudes sort first.
        out.push(INT_ZERO - len as u8);
        out.extend(digits.iter().map(|b| !b));
    }
}

fn push_float(out: &mut Vec<u8>, f: f64) {
    let bits = f.to_bits();
    let ordered = if bits & (1 << 63) != 0 {
        !bits
    } else {
        bits | (1 << 63)
    };
    out.push(DOUBLE);
    out.extend_from_slice(&ordered.to_be_bytes());
}

/// Encodes a key to its ordered byte form, without the length check.
pub fn encode_unchecked(key: &[KeyPart]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * key.len());
    for part in key {
        match part {
            KeyPart::Bytes(b) => {
                out.push(BYTES);
                push_escaped(&mut out, b);
            }
            KeyPart::String(s) => {
                out.push(STRING);
                push_escaped(&mut out, s.as_bytes());
            }
            KeyPart::Int(n) => push_int(&mut out, *n),
            KeyPart::Float(f) => push_float(&mut out, *f),
            KeyPart::Bool(false) => out.push(FALSE),
            KeyPart::Bool(true) => out.push(TRUE),
        }
    }
    out
}

/// Encodes a key, refusing empty keys and keys over [`MAX_KEY_BYTES`].
pub fn encode(key: &[KeyPart]) -> Result<Vec<u8>> {
    if key.is_empty() {
        return Err(StorageError::invalid("a key needs at least one part"));
    }
    encode_prefix(key)
}

/// Encodes a prefix or range bound (which may be empty), refusing ones over the limit.
pub fn encode_prefix(key: &[KeyPart]) -> Result<Vec<u8>> {
    let encoded = encode_unchecked(key);
    if encoded.len() > MAX_KEY_BYTES {
        return Err(StorageError::TooLarge(format!(
            "key is {} bytes encoded; the limit is {MAX_KEY_BYTES}",
            encoded.len()
        )));
    }
    Ok(encoded)
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(format!("bad key encoding: {what}"))
}

fn take_escaped(bytes: &[u8], pos: &mut usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let b = *bytes.get(*pos).ok_or_else(|| corrupt("unterminated"))?;
        *pos += 1;
        if b == 0 {
            if bytes.get(*pos) == Some(&0xFF) {
                out.push(0);
                *pos += 1;
            } else {
                return Ok(out);
            }
        } else {
            out.push(b);
        }
    }
}

/// Decodes the byte form back to a key.
pub fn decode(bytes: &[u8]) -> Result<Key> {
    let mut key = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let tag = bytes[pos];
        pos += 1;
        let part = match tag {
            BYTES => KeyPart::Bytes(take_escaped(bytes, &mut pos)?),
            STRING => {
                let raw = take_escaped(bytes, &mut pos)?;
                KeyPart::String(String::from_utf8(raw).map_err(|_| corrupt("string not UTF-8"))?)
            }
            0x0c..=0x1c => {
                let len = usize::from(tag.abs_diff(INT_ZERO));
                let digits = bytes
                    .get(pos..pos + len)
                    .ok_or_else(|| corrupt("short integer"))?;
                pos += len;
                let mut be = [0u8; 8];
                if tag >= INT_ZERO {
                    be[8 - len..].copy_from_slice(digits);
                    let magnitude = u64::from_be_bytes(be);
                    KeyPart::Int(i64::try_from(magnitude).map_err(|_| corrupt("integer range"))?)
                } else {
                    for (slot, d) in be[8 - len..].iter_mut().zip(digits) {
                        *slot = !d;
                    }
                    let magnitude = u64::from_be_bytes(be);
                    let n = 0i128 - i128::from(magnitude);
                    KeyPart::Int(i64::try_from(n).map_err(|_| corrupt("integer range"))?)
                }
            }
            DOUBLE => {
                let raw = bytes
                    .get(pos..pos + 8)
                    .ok_or_else(|| corrupt("short float"))?;
                pos += 8;
                let mut be = [0u8; 8];
                be.copy_from_slice(raw);
                let ordered = u64::from_be_bytes(be);
                let bits = if ordered & (1 << 63) != 0 {
                    ordered & !(1 << 63)
                } else {
                    !ordered
                };
                KeyPart::Float(f64::from_bits(bits))
            }
            FALSE => KeyPart::Bool(false),
            TRUE => KeyPart::Bool(true),
            _ => return Err(corrupt("unknown type tag")),
        };
        key.push(part);
    }
    Ok(key)
}

/// The order Deno KV gives two keys (what the encoding must reproduce).
pub fn compare(a: &[KeyPart], b: &[KeyPart]) -> Ordering {
    fn rank(p: &KeyPart) -> u8 {
        match p {
            KeyPart::Bytes(_) => 0,
            KeyPart::String(_) => 1,
            KeyPart::Int(_) => 2,
            KeyPart::Float(_) => 3,
            KeyPart::Bool(false) => 4,
            KeyPart::Bool(true) => 5,
        }
    }
    for (x, y) in a.iter().zip(b) {
        let ord = rank(x).cmp(&rank(y)).then_with(|| match (x, y) {
            (KeyPart::Bytes(x), KeyPart::Bytes(y)) => x.cmp(y),
            (KeyPart::String(x), KeyPart::String(y)) => x.as_bytes().cmp(y.as_bytes()),
            (KeyPart::Int(x), KeyPart::Int(y)) => x.cmp(y),
            (KeyPart::Float(x), KeyPart::Float(y)) => x.total_cmp(y),
            _ => Ordering::Equal,
        });
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn part() -> impl Strategy<Value = KeyPart> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..6).prop_map(KeyPart::Bytes),
            "[a-c\\x00\u{e9}]{0,4}".prop_map(KeyPart::String),
            any::<i64>().prop_map(KeyPart::Int),
            prop_oneof![Just(0i64), -300i64..300].prop_map(KeyPart::Int),
            any::<f64>().prop_map(KeyPart::Float),
            prop_oneof![
                Just(f64::NAN),
                Just(-f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(0.0),
                Just(-0.0)
            ]
            .prop_map(KeyPart::Float),
            any::<bool>().prop_map(KeyPart::Bool),
        ]
    }

    fn key() -> impl Strategy<Value = Key> {
        proptest::collection::vec(part(), 1..4)
    }

    fn same(a: &[KeyPart], b: &[KeyPart]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| match (x, y) {
                (KeyPart::Float(x), KeyPart::Float(y)) => x.to_bits() == y.to_bits(),
                _ => x == y,
            })
    }

    proptest! {
        #[test]
        fn byte_order_equals_key_order(a in key(), b in key()) {
            let (ea, eb) = (encode_unchecked(&a), encode_unchecked(&b));
            prop_assert_eq!(ea.cmp(&eb), compare(&a, &b), "{:?} vs {:?}", a, b);
        }

        #[test]
        fn decode_inverts_encode(k in key()) {
            let decoded = decode(&encode_unchecked(&k)).expect("decodes");
            prop_assert!(same(&decoded, &k), "{:?} != {:?}", decoded, k);
        }

        #[test]
        fn a_prefix_range_holds_exactly_the_keys_under_it(prefix in key(), rest in key(), other in key()) {
            let p = encode_unchecked(&prefix);
            let (mut lo, mut hi) = (p.clone(), p.clone());
            lo.push(0x00);
            hi.push(0xFF);
            let mut child = prefix.clone();
            child.extend(rest);
            let c = encode_unchecked(&child);
            prop_assert!(lo <= c && c < hi);
            let o = encode_unchecked(&other);
            let under = other.len() > prefix.len() && same(&other[..prefix.len()], &prefix);
            prop_assert_eq!(lo <= o && o < hi, under);
        }
    }

    #[test]
    fn types_sort_as_deno_does() {
        let ordered = [
            KeyPart::Bytes(vec![0xFF]),
            KeyPart::String(String::new()),
            KeyPart::String("a".into()),
            KeyPart::Int(i64::MIN),
            KeyPart::Int(-1),
            KeyPart::Int(0),
            KeyPart::Int(1),
            KeyPart::Int(i64::MAX),
            KeyPart::Float(-f64::NAN),
            KeyPart::Float(f64::NEG_INFINITY),
            KeyPart::Float(-0.0),
            KeyPart::Float(0.0),
            KeyPart::Float(f64::INFINITY),
            KeyPart::Float(f64::NAN),
            KeyPart::Bool(false),
            KeyPart::Bool(true),
        ];
        for pair in ordered.windows(2) {
            let a = encode_unchecked(&pair[..1]);
            let b = encode_unchecked(&pair[1..]);
            assert!(a < b, "{:?} < {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn matches_the_tuple_layer_bytes() {
        assert_eq!(
            encode_unchecked(&[KeyPart::String("a\0b".into())]),
            b"\x02a\x00\xffb\x00"
        );
        assert_eq!(encode_unchecked(&[KeyPart::Int(0)]), [0x14]);
        assert_eq!(encode_unchecked(&[KeyPart::Int(300)]), [0x16, 0x01, 0x2c]);
        assert_eq!(encode_unchecked(&[KeyPart::Int(-1)]), [0x13, 0xfe]);
        assert_eq!(encode_unchecked(&[KeyPart::Bool(true)]), [0x27]);
    }

    #[test]
    fn refuses_empty_and_oversized_keys() {
        assert!(encode(&[]).is_err());
        let long = vec![KeyPart::String("x".repeat(MAX_KEY_BYTES))];
        assert!(matches!(encode(&long), Err(StorageError::TooLarge(_))));
    }
}
