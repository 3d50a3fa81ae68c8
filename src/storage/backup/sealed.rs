//! The encrypted form a backup leaves the machine in: AES-256-GCM in the STREAM
//! construction (`aead::stream`, big-endian 32-bit counter with a last-chunk flag), so an
//! archive of any size is sealed and opened a chunk at a time, and a copy that was cut
//! short, reordered or spliced fails to open instead of restoring part of a backup.
//!
//! Layout: the 8-byte magic, the 7-byte random nonce prefix, then chunks of 64 KiB of
//! plaintext each sealed with its 16-byte tag; the last chunk (possibly empty) is shorter
//! or equal and sealed as the last. Every chunk authenticates the backup's id as associated
//! data: a copy stored under another backup's name does not open.

use aes_gcm::aead::Payload;
use aes_gcm::aead::stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::{Aes256Gcm, KeyInit};

/// Names the format and its version.
pub const MAGIC: &[u8; 8] = b"TSBK-v1\n";
const NONCE_PREFIX: usize = 7;
/// The header's length: magic and nonce prefix.
pub const HEADER: usize = MAGIC.len() + NONCE_PREFIX;
/// Plaintext per chunk.
const CHUNK: usize = 64 * 1024;
/// A sealed chunk: plaintext and tag.
const SEALED_CHUNK: usize = CHUNK + 16;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("this is not an encrypted Toolshed backup (no TSBK-v1 header)")]
    NotSealed,
    #[error(
        "the backup does not open with this TOOLSHED_BACKUP_KEY, or it was altered or cut short"
    )]
    Open,
    #[error("cannot encrypt the backup")]
    Seal,
    #[error("cannot draw a random nonce: {0}")]
    Random(String),
}

/// A 32-byte key from 64 hex digits (`TOOLSHED_BACKUP_KEY`).
pub fn parse_key(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// Seals a stream: feed it bytes, write what it gives back, then what `finish` gives.
pub struct Sealer {
    encryptor: EncryptorBE32<Aes256Gcm>,
    pending: Vec<u8>,
    /// The backup's id, authenticated with every chunk.
    id: Vec<u8>,
}

impl Sealer {
    /// A sealer for backup `id` and the header to write first.
    pub fn new(key: &[u8; 32], id: &str) -> Result<(Sealer, Vec<u8>), SealError> {
        let mut prefix = [0u8; NONCE_PREFIX];
        getrandom::fill(&mut prefix).map_err(|e| SealError::Random(e.to_string()))?;
        let aead = Aes256Gcm::new(key.into());
        let encryptor = EncryptorBE32::from_aead(aead, (&prefix).into());
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&prefix);
        Ok((
            Sealer {
                encryptor,
                pending: Vec::with_capacity(CHUNK * 2),
                id: id.as_bytes().to_vec(),
            },
            header,
        ))
    }

    /// Takes `data`; answers the chunks it completed, sealed.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<u8>, SealError> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        // A full chunk is sealed only once more follows: the last must be sealed as last.
        let mut start = 0;
        while self.pending.len() - start > CHUNK {
            let sealed = self
                .encryptor
                .encrypt_next(Payload {
                    msg: &self.pending[start..start + CHUNK],
                    aad: &self.id,
                })
                .map_err(|_| SealError::Seal)?;
            out.extend_from_slice(&sealed);
            start += CHUNK;
        }
        self.pending.drain(..start);
        Ok(out)
    }

    /// Seals what is left as the last chunk.
    pub fn finish(self) -> Result<Vec<u8>, SealError> {
        self.encryptor
            .encrypt_last(Payload {
                msg: self.pending.as_slice(),
                aad: &self.id,
            })
            .map_err(|_| SealError::Seal)
    }
}

/// Opens a sealed stream: the header first, then bytes as they come, then `finish`.
pub struct Opener {
    decryptor: DecryptorBE32<Aes256Gcm>,
    pending: Vec<u8>,
    id: Vec<u8>,
}

impl Opener {
    /// An opener for what was sealed as backup `id`, given its header.
    pub fn new(key: &[u8; 32], header: &[u8], id: &str) -> Result<Opener, SealError> {
        if header.len() != HEADER || &header[..MAGIC.len()] != MAGIC {
            return Err(SealError::NotSealed);
        }
        let prefix: [u8; NONCE_PREFIX] = header[MAGIC.len()..]
            .try_into()
            .map_err(|_| SealError::NotSealed)?;
        let aead = Aes256Gcm::new(key.into());
        Ok(Opener {
            decryptor: DecryptorBE32::from_aead(aead, (&prefix).into()),
            pending: Vec::with_capacity(SEALED_CHUNK * 2),
            id: id.as_bytes().to_vec(),
        })
    }

    /// Takes sealed bytes; answers the plaintext of the chunks it completed.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<u8>, SealError> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        let mut start = 0;
        while self.pending.len() - start > SEALED_CHUNK {
            let plain = self
                .decryptor
                .decrypt_next(Payload {
                    msg: &self.pending[start..start + SEALED_CHUNK],
                    aad: &self.id,
                })
                .map_err(|_| SealError::Open)?;
            out.extend_from_slice(&plain);
            start += SEALED_CHUNK;
        }
        self.pending.drain(..start);
        Ok(out)
    }

    /// Opens the last chunk; fails if the stream was cut short.
    pub fn finish(self) -> Result<Vec<u8>, SealError> {
        self.decryptor
            .decrypt_last(Payload {
                msg: self.pending.as_slice(),
                aad: &self.id,
            })
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(key: &[u8; 32], data: &[u8], piece: usize) -> Vec<u8> {
        let (mut sealer, mut out) = Sealer::new(key, "20261203T081500.123Z").expect("sealer");
        for part in data.chunks(piece.max(1)) {
            out.extend(sealer.push(part).expect("push"));
        }
        out.extend(sealer.finish().expect("finish"));
        out
    }

    fn open(key: &[u8; 32], sealed: &[u8], piece: usize) -> Result<Vec<u8>, SealError> {
        open_as(key, sealed, piece, "20261203T081500.123Z")
    }

    fn open_as(
        key: &[u8; 32],
        sealed: &[u8],
        piece: usize,
        id: &str,
    ) -> Result<Vec<u8>, SealError> {
        if sealed.len() < HEADER {
            return Err(SealError::NotSealed);
        }
        let mut opener = Opener::new(key, &sealed[..HEADER], id)?;
        let mut out = Vec::new();
        for part in sealed[HEADER..].chunks(piece.max(1)) {
            out.extend(opener.push(part)?);
        }
        out.extend(opener.finish()?);
        Ok(out)
    }

    #[test]
    fn any_size_round_trips_in_any_pieces() {
        let key = [7u8; 32];
        for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            for piece in [1000, CHUNK, 5 * CHUNK] {
                let sealed = seal(&key, &data, piece);
                assert_ne!(&sealed[HEADER..], data.as_slice());
                assert_eq!(
                    open(&key, &sealed, 777).expect("opens"),
                    data,
                    "{size}/{piece}"
                );
            }
        }
    }

    #[test]
    fn a_wrong_key_a_flipped_bit_or_a_cut_copy_does_not_open() {
        let key = [7u8; 32];
        let data = vec![42u8; 2 * CHUNK + 5];
        let sealed = seal(&key, &data, CHUNK);
        assert!(matches!(
            open(&[8u8; 32], &sealed, 999),
            Err(SealError::Open)
        ));
        let mut flipped = sealed.clone();
        flipped[HEADER + 10] ^= 1;
        assert!(matches!(open(&key, &flipped, 999), Err(SealError::Open)));
        // Cut after the first whole chunk: that chunk was not sealed as the last.
        let cut = &sealed[..HEADER + SEALED_CHUNK];
        assert!(matches!(open(&key, cut, 999), Err(SealError::Open)));
        assert!(matches!(
            open(&key, b"not a backup at all", 4),
            Err(SealError::NotSealed)
        ));
        assert_eq!(
            parse_key(&"0a".repeat(32)),
            Some([10u8; 32]),
            "64 hex digits"
        );
        assert_eq!(parse_key("0a0a"), None);
        assert_eq!(parse_key(&"zz".repeat(32)), None);
    }
}
