//! The one attestation route: evidence for a caller's nonce.

use std::io::Cursor;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;

use super::schemas::{Evidence, EvidenceQuery};
use super::state::Attestation;
use super::statement::{self, NONCE_MAX, NONCE_MIN};
use super::tsm::{self, Kernel};
use crate::build_info;
use crate::platform::error::{AppError, ErrorBody};
use crate::platform::extract::AppQuery;
use crate::platform::hex::{from_hex, to_hex};

const SOFTWARE_NOTE: &str = "NOT hardware-backed: this statement is signed by the instance's own key only. It shows that whoever holds this instance key answered your nonce; the binary hash is the instance's own claim.";
const HARDWARE_NOTE: &str = "The report is signed by the platform (AMD VCEK or Intel's quoting enclave); this instance has not checked it. Check report_data against the fields above, and the report's signature against the vendor's certificate chain.";

/// Attestation evidence for a nonce.
///
/// On an AMD SEV-SNP or Intel TDX guest, a hardware report whose report_data is
/// `SHA-512("toolshed-attestation-v1" ‖ nonce ‖ binary_sha256 ‖ instance_key_sha256)`;
/// elsewhere `platform: "none"` and only the instance key's signature over the same bytes.
/// `toolshed attest verify --url …` checks an answer.
#[utoipa::path(
    get,
    path = "/api/attestation",
    tag = "attestation",
    params(EvidenceQuery),
    responses(
        (status = 200, description = "Evidence for the nonce", body = Evidence),
        (status = 400, description = "No nonce, not hex, or not 16 to 64 bytes", body = ErrorBody),
        (status = 500, description = "The hardware would not make a report", body = ErrorBody),
    )
)]
pub async fn evidence(
    State(attestation): State<Attestation>,
    AppQuery(query): AppQuery<EvidenceQuery>,
) -> Result<Json<Evidence>, AppError> {
    let nonce = from_hex(&query.nonce)
        .filter(|n| (NONCE_MIN..=NONCE_MAX).contains(&n.len()))
        .ok_or_else(|| {
            AppError::bad_request(format!(
                "nonce must be {NONCE_MIN} to {NONCE_MAX} bytes as hex ({} to {} hex digits)",
                NONCE_MIN * 2,
                NONCE_MAX * 2
            ))
        })?;
    let binary_sha256 = attestation
        .binary_sha256()
        .await
        .map_err(AppError::internal)?;
    let report_data = statement::report_data(&nonce, &binary_sha256, &attestation.key_sha256);
    let hardware = if attestation.tsm_dir.is_dir() {
        let root = attestation.tsm_dir.clone();
        let report = tokio::task::spawn_blocking(move || tsm::report(&root, &report_data, &Kernel))
            .await
            .map_err(AppError::internal)?
            .map_err(|e| {
                AppError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "attestation_failed",
                    format!("no hardware report: {e}"),
                )
            })?;
        Some(report)
    } else {
        None
    };
    let platform = hardware
        .as_ref()
        .map_or("none", |report| report.provider.as_str())
        .to_owned();
    let trusted_comment = format!(
        "toolshed-attestation-v1\tplatform:{platform}\thardware_backed:{}",
        hardware.is_some()
    );
    let signature = minisign::sign(
        None,
        &attestation.key.secret,
        Cursor::new(report_data),
        Some(&trusted_comment),
        Some("signature of report_data by the toolshed instance key"),
    )
    .map_err(AppError::internal)?
    .into_string();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(Json(Evidence {
        hardware_backed: hardware.is_some(),
        nonce: to_hex(&nonce),
        binary_sha256: to_hex(&binary_sha256),
        instance_public_key: attestation.key.public.to_base64(),
        instance_key_sha256: to_hex(&attestation.key_sha256),
        report_data: to_hex(&report_data),
        report_data_preimage: statement::PREIMAGE.to_owned(),
        evidence: hardware.as_ref().map(|r| b64(&r.outblob)),
        aux: hardware
            .as_ref()
            .and_then(|r| r.auxblob.as_deref().map(b64)),
        signature,
        version: build_info::VERSION.to_owned(),
        commit: build_info::GIT_COMMIT.to_owned(),
        note: if hardware.is_some() {
            HARDWARE_NOTE
        } else {
            SOFTWARE_NOTE
        }
        .to_owned(),
        platform,
    }))
}
