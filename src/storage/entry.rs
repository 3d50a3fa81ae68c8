//! KV entries as rows of the `kv` table: the value codec, versionstamps, and reading and
//! writing one row inside a transaction. The KV store and the queue (whose dead letters are
//! KV entries) both write through here, so neither imports the other.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::storage::error::{Result, StorageError};
use crate::storage::key::{self, Key};

const ENCODING_JSON: i64 = 1;
const ENCODING_BYTES: i64 = 2;

/// The columns a row is read with, in `Row`'s order.
pub(crate) const ENTRY_COLUMNS: &str = "key, value, encoding, versionstamp, expires_at";

/// A stored value: JSON, or raw bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum KvValue {
    Json(Value),
    Bytes(Vec<u8>),
}

/// A value as stored: its bytes and their encoding.
#[derive(Debug, Clone)]
pub(crate) struct EncodedValue {
    pub(crate) raw: Vec<u8>,
    encoding: i64,
}

impl KvValue {
    pub(crate) fn encode(&self) -> Result<EncodedValue> {
        match self {
            KvValue::Json(v) => serde_json::to_vec(v)
                .map(|raw| EncodedValue {
                    raw,
                    encoding: ENCODING_JSON,
                })
                .map_err(|e| StorageError::invalid(format!("value is not serialisable: {e}"))),
            KvValue::Bytes(b) => Ok(EncodedValue {
                raw: b.clone(),
                encoding: ENCODING_BYTES,
            }),
        }
    }

    fn decode(raw: Vec<u8>, encoding: i64) -> Result<KvValue> {
        match encoding {
            ENCODING_JSON => serde_json::from_slice(&raw)
                .map(KvValue::Json)
                .map_err(|e| StorageError::Corrupt(format!("stored JSON: {e}"))),
            ENCODING_BYTES => Ok(KvValue::Bytes(raw)),
            other => Err(StorageError::Corrupt(format!("value encoding {other}"))),
        }
    }
}

/// One entry as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Key,
    pub value: KvValue,
    pub versionstamp: u64,
    /// Milliseconds since the Unix epoch after which the entry is gone.
    pub expires_at: Option<i64>,
}

/// Versionstamps are shown as 20 hex digits, like Deno's: an 8-byte counter and 2 zero bytes.
pub fn format_versionstamp(v: u64) -> String {
    format!("{v:016x}0000")
}

/// Parses a versionstamp as callers write it: any 20 hex digits, as its 80-bit value. Ours
/// always end in `0000` (see [`versionstamp_bits`]); any other is still a versionstamp, one
/// that no entry has, so a check against it fails (as in Deno) instead of being refused.
pub fn parse_versionstamp(s: &str) -> Option<u128> {
    if s.len() != 20 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(s, 16).ok()
}

/// The 80-bit value of one of our versionstamps (what [`format_versionstamp`] shows).
pub fn versionstamp_bits(v: u64) -> u128 {
    u128::from(v) << 16
}

/// A row as SQLite returns it, in `ENTRY_COLUMNS` order.
pub(crate) type Row = (Vec<u8>, Vec<u8>, i64, i64, Option<i64>);

pub(crate) fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

pub(crate) fn row_to_entry(row: Row) -> Result<Entry> {
    let (raw_key, raw_value, encoding, version, expires_at) = row;
    Ok(Entry {
        key: key::decode(&raw_key)?,
        value: KvValue::decode(raw_value, encoding)?,
        versionstamp: u64::try_from(version).unwrap_or(0),
        expires_at,
    })
}

/// The live entry at an encoded key (expired entries are absent).
pub(crate) fn read_entry(conn: &Connection, encoded: &[u8], now: i64) -> Result<Option<Entry>> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM kv WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)"
    );
    let found: Option<Row> = conn
        .prepare_cached(&sql)?
        .query_row(params![encoded, now], row)
        .optional()?;
    found.map(row_to_entry).transpose()
}

/// Writes one entry at an encoded key, replacing what was there.
pub(crate) fn write_entry(
    conn: &Connection,
    encoded: &[u8],
    value: &EncodedValue,
    version: u64,
    expires_at: Option<i64>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO kv (key, value, encoding, versionstamp, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value, encoding = excluded.encoding,
           versionstamp = excluded.versionstamp, expires_at = excluded.expires_at",
    )?
    .execute(params![
        encoded,
        value.raw,
        value.encoding,
        i64::try_from(version).unwrap_or(i64::MAX),
        expires_at
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versionstamps_are_twenty_hex_digits() {
        assert_eq!(format_versionstamp(1), "00000000000000010000");
        assert_eq!(
            parse_versionstamp(&format_versionstamp(7)),
            Some(versionstamp_bits(7))
        );
        assert_eq!(parse_versionstamp("0000000000000001ab12"), Some(0x1ab12));
        assert_eq!(parse_versionstamp("zz"), None);
        assert_eq!(parse_versionstamp("+000000000000001ab12"), None);
    }

    #[test]
    fn values_round_trip_through_their_encoding() {
        for value in [
            KvValue::Json(serde_json::json!({"a": [1, "b"]})),
            KvValue::Bytes(vec![0, 255, 7]),
        ] {
            let encoded = value.encode().expect("encode");
            let decoded = KvValue::decode(encoded.raw, encoded.encoding).expect("decode");
            assert_eq!(decoded, value);
        }
    }
}
