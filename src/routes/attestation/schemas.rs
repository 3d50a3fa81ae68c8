//! The attestation answer, read alike by `toolshed attest verify`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    /// 16 to 64 fresh random bytes, as hex: the evidence is bound to them, so an old answer
    /// cannot be replayed.
    #[param(
        pattern = r"^([0-9a-fA-F]{2}){16,64}$",
        example = "00112233445566778899aabbccddeeff"
    )]
    pub nonce: String,
}

/// Evidence binding the nonce to this executable and this instance key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "platform": "none", "hardware_backed": false,
    "nonce": "000102030405060708090a0b0c0d0e0f",
    "binary_sha256": "9f0c…", "instance_public_key": "RWQ…", "instance_key_sha256": "51a2…",
    "report_data": "c0ff…", "report_data_preimage": "SHA-512(…)",
    "evidence": null, "aux": null,
    "signature": "untrusted comment: …\n…\ntrusted comment: …\n…\n",
    "version": "0.1.0", "commit": "abc123", "note": "…"
}))]
pub struct Evidence {
    /// `sev_guest` or `tdx_guest` (a hardware report), or `none` (only the instance key's
    /// signature).
    pub platform: String,
    /// Whether `evidence` holds a report signed by the platform's hardware.
    pub hardware_backed: bool,
    /// The caller's nonce, as hex.
    pub nonce: String,
    /// SHA-256 of the running executable, as hex.
    pub binary_sha256: String,
    /// The instance's Ed25519 key, as a minisign public key (base64).
    pub instance_public_key: String,
    /// SHA-256 of the instance key's 32 raw bytes, as hex.
    pub instance_key_sha256: String,
    /// The 64 bytes bound into the evidence, as hex.
    pub report_data: String,
    /// How report_data is computed from the fields above.
    pub report_data_preimage: String,
    /// The hardware report (SNP) or quote (TDX), base64; null on platform `none`.
    pub evidence: Option<String>,
    /// The SNP certificate table from configfs-tsm's auxblob, base64, when there is one.
    pub aux: Option<String>,
    /// A minisign signature (the file's text) over the 64 report_data bytes by the instance
    /// key; its trusted comment names the platform.
    pub signature: String,
    pub version: String,
    pub commit: String,
    /// What this evidence does and does not show.
    pub note: String,
}
