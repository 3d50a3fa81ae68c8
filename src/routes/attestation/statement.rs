//! What attestation evidence binds, computed alike by the instance and by
//! `toolshed attest verify`: the caller's nonce, the running executable and the instance key.

use sha2::{Digest, Sha256, Sha512};

/// Domain separation: a report_data made for anything else never equals one of ours.
pub const DOMAIN: &[u8] = b"toolshed-attestation-v1";
/// How the preimage is laid out, stated in every answer.
pub const PREIMAGE: &str = "SHA-512(\"toolshed-attestation-v1\" || nonce || binary_sha256 || instance_key_sha256), the hashes as raw 32 bytes";
/// A nonce's length bounds, in bytes.
pub const NONCE_MIN: usize = 16;
pub const NONCE_MAX: usize = 64;
/// Where an AMD SEV-SNP attestation report carries report_data, and its length.
pub const SNP_REPORT_DATA_OFFSET: usize = 0x50;
pub const SNP_REPORT_LEN: usize = 1184;
/// Where an Intel TDX quote carries REPORTDATA: after the 48-byte header (v4), or the header
/// and a 6-byte body descriptor (v5), 520 bytes into the TD report body.
pub const TDX_REPORT_DATA_OFFSET_V4: usize = 48 + 520;
pub const TDX_REPORT_DATA_OFFSET_V5: usize = 48 + 6 + 520;
/// A quote header's TEE type (bytes 4..8) for TDX.
pub const TDX_TEE_TYPE: u32 = 0x81;

/// `SHA-512(DOMAIN ‖ nonce ‖ binary_sha256 ‖ instance_key_sha256)`.
pub fn report_data(
    nonce: &[u8],
    binary_sha256: &[u8; 32],
    instance_key_sha256: &[u8; 32],
) -> [u8; 64] {
    let mut hasher = Sha512::new();
    hasher.update(DOMAIN);
    hasher.update(nonce);
    hasher.update(binary_sha256);
    hasher.update(instance_key_sha256);
    hasher.finalize().into()
}

/// The SHA-256 that stands for the instance key: of its 32 raw Ed25519 bytes.
pub fn instance_key_sha256(ed25519_public_key: &[u8]) -> [u8; 32] {
    Sha256::digest(ed25519_public_key).into()
}

/// The 64 report_data bytes a hardware report carries, when it is long enough to hold them.
pub fn report_data_in(platform: &str, report: &[u8]) -> Result<[u8; 64], String> {
    let offset = match platform {
        "sev_guest" => {
            if report.len() < SNP_REPORT_LEN {
                return Err(format!(
                    "an SEV-SNP report is {SNP_REPORT_LEN} bytes; this one has {}",
                    report.len()
                ));
            }
            SNP_REPORT_DATA_OFFSET
        }
        "tdx_guest" => match report.get(..8).map(|v| {
            (
                u16::from_le_bytes([v[0], v[1]]),
                u32::from_le_bytes([v[4], v[5], v[6], v[7]]),
            )
        }) {
            Some((_, tee)) if tee != TDX_TEE_TYPE => {
                return Err(format!(
                    "the quote's TEE type is {tee:#x}, not TDX's {TDX_TEE_TYPE:#x}"
                ));
            }
            Some((4, _)) => TDX_REPORT_DATA_OFFSET_V4,
            Some((5, _)) => TDX_REPORT_DATA_OFFSET_V5,
            Some((version, _)) => {
                return Err(format!(
                    "a TDX quote of version 4 or 5 was expected, not {version}"
                ));
            }
            None => return Err("the quote is shorter than its header".into()),
        },
        other => return Err(format!("no hardware report format for platform {other:?}")),
    };
    report
        .get(offset..offset + 64)
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .ok_or_else(|| {
            format!(
                "the report is too short ({} bytes) to hold report_data",
                report.len()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_data_binds_every_part() {
        let base = report_data(&[1; 16], &[2; 32], &[3; 32]);
        assert_ne!(base, report_data(&[9; 16], &[2; 32], &[3; 32]));
        assert_ne!(base, report_data(&[1; 16], &[9; 32], &[3; 32]));
        assert_ne!(base, report_data(&[1; 16], &[2; 32], &[9; 32]));
        // The domain is part of it: a plain SHA-512 of the same parts differs.
        let mut plain = Sha512::new();
        plain.update([1; 16]);
        plain.update([2; 32]);
        plain.update([3; 32]);
        assert_ne!(base.as_slice(), plain.finalize().as_slice());
    }

    #[test]
    fn report_data_is_found_where_each_platform_puts_it() {
        let mut snp = vec![0u8; SNP_REPORT_LEN];
        snp[0x50..0x90].copy_from_slice(&[7; 64]);
        assert_eq!(report_data_in("sev_guest", &snp), Ok([7; 64]));
        assert!(report_data_in("sev_guest", &snp[..1000]).is_err());
        let mut tdx = vec![0u8; 1024];
        tdx[..2].copy_from_slice(&4u16.to_le_bytes());
        assert!(
            report_data_in("tdx_guest", &tdx).is_err(),
            "TEE type 0 is SGX"
        );
        tdx[4..8].copy_from_slice(&TDX_TEE_TYPE.to_le_bytes());
        tdx[568..632].copy_from_slice(&[5; 64]);
        assert_eq!(report_data_in("tdx_guest", &tdx), Ok([5; 64]));
        tdx[..2].copy_from_slice(&5u16.to_le_bytes());
        tdx[574..638].copy_from_slice(&[6; 64]);
        assert_eq!(report_data_in("tdx_guest", &tdx), Ok([6; 64]));
        tdx[..2].copy_from_slice(&3u16.to_le_bytes());
        assert!(report_data_in("tdx_guest", &tdx).is_err());
        assert!(report_data_in("none", &snp).is_err());
    }
}
