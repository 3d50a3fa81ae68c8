//! Revision ids: `{"ok":{"before":{"id":…},"after":{"id":…}}}`. synopsys writes the root hash
//! of its index tree, 16 bytes in base58 (docs/design/synopsys-ids.md §4); that hash covers
//! the commit's clock time, so clients can only compare them, never compute them. Ours are
//! 16 bytes in base58 too: the empty database has synopsys' own id, and each transaction's
//! id hashes the one before, its number, its time and every change it made.

use sha2::{Digest, Sha256};

/// synopsys' id of an empty database (BLAKE3 of nothing, 16 bytes).
pub const EMPTY: &str = "NcuV3vKyQgcxiZDMdE37fv";

/// Accumulates a transaction's changes into its revision id.
pub struct RevisionHasher(Sha256);

impl RevisionHasher {
    pub fn new(before: &str, tx: i64, at_ms: i64) -> RevisionHasher {
        let mut hasher = Sha256::new();
        hasher.update(b"toolshed/facts/revision\0");
        hasher.update(before.as_bytes());
        hasher.update(tx.to_be_bytes());
        hasher.update(at_ms.to_be_bytes());
        RevisionHasher(hasher)
    }

    /// One change: `kind` says assert or retract.
    pub fn change(&mut self, kind: u8, entity: &[u8], attribute: &str, value: &[u8]) {
        self.0.update([kind]);
        self.0.update(entity);
        self.0.update((attribute.len() as u64).to_be_bytes());
        self.0.update(attribute.as_bytes());
        self.0.update(value);
    }

    pub fn finish(self) -> String {
        base58(&self.0.finalize()[..16])
    }
}

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Bitcoin's base58 (no multibase prefix), as synopsys writes revision ids.
pub fn base58(bytes: &[u8]) -> String {
    // Little-endian base-58 digits of the big-endian number `bytes`.
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &byte in bytes {
        let mut carry = u32::from(byte);
        for digit in digits.iter_mut() {
            carry += u32::from(*digit) << 8;
            *digit = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    std::iter::repeat_n(b'1', zeros)
        .chain(digits.iter().rev().map(|d| ALPHABET[usize::from(*d)]))
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_is_bitcoins() {
        // BLAKE3("") truncated to 16 bytes is synopsys' empty-database id.
        let empty = [
            0xaf, 0x13, 0x49, 0xb9, 0xf5, 0xf9, 0xa1, 0xa6, 0xa0, 0x40, 0x4d, 0xea, 0x36, 0xdc,
            0xc9, 0x49,
        ];
        assert_eq!(base58(&empty), EMPTY);
        assert_eq!(base58(&[0, 0, 1]), "112");
        assert_eq!(base58(b"hello world"), "StV1DL6CwTryKyV");
        assert_eq!(base58(&[]), "");
    }

    #[test]
    fn every_change_moves_the_id() {
        let id = |kind: u8, value: &[u8]| {
            let mut h = RevisionHasher::new(EMPTY, 1, 5);
            h.change(kind, &[1; 32], "name", value);
            h.finish()
        };
        assert_ne!(id(1, b"a"), id(1, b"b"));
        assert_ne!(id(1, b"a"), id(2, b"a"));
        assert_eq!(id(1, b"a"), id(1, b"a"));
        assert!((21..=22).contains(&id(1, b"a").len()));
    }
}
