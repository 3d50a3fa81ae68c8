//! `toolshed attest verify`: asks an instance for evidence over a fresh random nonce and
//! checks everything that binds it — the nonce, report_data, the instance key (pinned when
//! given), its signature, the binary hash when one is expected, and for SEV-SNP and TDX the
//! report's structure and the report_data it carries. Exit status 0 only when every check
//! passed; what was not checked (the vendors' certificate chains) is said, never implied.

use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use minisign::PublicKey;

use crate::platform::hex::{from_hex, to_hex};
use crate::platform::signature;
use crate::routes::attestation::schemas::Evidence;
use crate::routes::attestation::statement;

/// An answer larger than this is no evidence (an SNP report with its certificates is ~10 KiB).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// One line of the verdict.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Pass(String),
    Fail(String),
    /// Not a check: what the evidence does not show, or what was not asked for.
    Note(String),
}

/// What the caller expects of the instance, beyond a consistent answer.
#[derive(Default)]
pub struct Expectations {
    /// The SHA-256 the instance must report for its executable.
    pub binary_sha256: Option<String>,
    /// The instance key it must use (from an earlier, trusted look at it).
    pub instance_key: Option<PublicKey>,
    /// Refuse a `none` platform: only a hardware report will do.
    pub require_hardware: bool,
}

pub fn attest_verify(
    url: &str,
    expect_binary_sha256: Option<&str>,
    instance_key: Option<&str>,
    require_hardware: bool,
    token: Option<&str>,
) -> ExitCode {
    let fail = |message: String| {
        eprintln!("toolshed: {message}");
        ExitCode::from(1)
    };
    let instance_key = match instance_key.map(signature::load_public_key).transpose() {
        Ok(key) => key,
        Err(e) => return fail(e.to_string()),
    };
    let expectations = Expectations {
        binary_sha256: expect_binary_sha256.map(str::to_owned),
        instance_key,
        require_hardware,
    };
    let mut nonce = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut nonce) {
        return fail(format!("no random nonce: {e}"));
    }
    let evidence = match fetch(url, &nonce, token) {
        Ok(evidence) => evidence,
        Err(e) => return fail(e),
    };
    let checks = check(&evidence, &nonce, &expectations);
    let mut failed = false;
    for c in &checks {
        match c {
            Check::Pass(m) => println!("ok    {m}"),
            Check::Fail(m) => {
                failed = true;
                println!("FAIL  {m}");
            }
            Check::Note(m) => println!("note  {m}"),
        }
    }
    if failed {
        println!("attestation NOT verified");
        return ExitCode::from(1);
    }
    match evidence.platform.as_str() {
        "none" => println!("every check passed: platform none, NOT hardware-backed"),
        platform => println!(
            "every check passed: {platform} report structure and report_data; its vendor signature was not checked (see the note)"
        ),
    }
    ExitCode::SUCCESS
}

fn fetch(url: &str, nonce: &[u8], token: Option<&str>) -> Result<Evidence, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let endpoint = format!(
        "{}/api/attestation?nonce={}",
        url.trim_end_matches('/'),
        to_hex(nonce)
    );
    runtime.block_on(async {
        // No redirects: the evidence must come from the address the caller named.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        let mut request = client.get(&endpoint);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach {endpoint}: {}", with_causes(&e)))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("cannot read the answer of {endpoint}: {e}"))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!(
                    "{endpoint} answered more than {MAX_ANSWER_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(format!(
                "{endpoint} answered {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        serde_json::from_slice(&body).map_err(|e| format!("{endpoint} answered no evidence: {e}"))
    })
}

/// Every check over `evidence` fetched with `nonce`.
pub fn check(evidence: &Evidence, nonce: &[u8], expect: &Expectations) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(verdict(
        evidence.nonce.eq_ignore_ascii_case(&to_hex(nonce)),
        "the nonce is ours".into(),
        format!("the evidence is for nonce {}, not ours", evidence.nonce),
    ));
    let binary = hash32(&evidence.binary_sha256);
    let key = PublicKey::from_base64(&evidence.instance_public_key).ok();
    let raw_key = key
        .as_ref()
        .and_then(|k| k.to_bytes().get(10..42).map(<[u8]>::to_vec));
    let key_sha256 = raw_key.as_deref().map(statement::instance_key_sha256);
    checks.push(verdict(
        key_sha256.is_some() && key_sha256 == hash32(&evidence.instance_key_sha256),
        "instance_key_sha256 is the SHA-256 of the instance key".into(),
        "instance_key_sha256 is not the SHA-256 of instance_public_key".into(),
    ));
    match &expect.instance_key {
        Some(pinned) => checks.push(verdict(
            key.as_ref().is_some_and(|k| k.to_bytes() == pinned.to_bytes()),
            "the instance key is the pinned one".into(),
            format!("the instance key {} is not the pinned one", evidence.instance_public_key),
        )),
        None => checks.push(Check::Note(format!(
            "instance key {} not pinned (pass --instance-key): any holder of a key could have answered",
            evidence.instance_public_key
        ))),
    }
    let expected_report_data = match (binary, key_sha256) {
        (Some(binary), Some(key)) => Some(statement::report_data(nonce, &binary, &key)),
        _ => None,
    };
    let report_data = from_hex(&evidence.report_data);
    checks.push(verdict(
        expected_report_data.is_some()
            && report_data.as_deref() == expected_report_data.as_ref().map(|r| &r[..]),
        "report_data = SHA-512(domain ‖ nonce ‖ binary_sha256 ‖ instance_key_sha256)".into(),
        "report_data does not bind this nonce, binary and instance key".into(),
    ));
    let signed = match (&key, expected_report_data) {
        (Some(key), Some(data)) => {
            signature_holds(key, &evidence.signature, &data, &evidence.platform)
        }
        _ => Err("no instance key or report_data to check it with".into()),
    };
    let signed_ok = signed.is_ok();
    checks.push(verdict(
        signed_ok,
        "the instance key signed report_data and the platform".into(),
        format!(
            "the instance key's signature does not hold: {}",
            signed.err().unwrap_or_default()
        ),
    ));
    match &expect.binary_sha256 {
        Some(expected) => checks.push(verdict(
            binary.is_some() && binary == hash32(expected.trim()),
            format!(
                "the instance reports the expected binary {}",
                evidence.binary_sha256
            ),
            format!(
                "the instance reports binary {}, not {expected}",
                evidence.binary_sha256
            ),
        )),
        None => checks.push(Check::Note(format!(
            "binary {} not compared (pass --expect-binary-sha256)",
            evidence.binary_sha256
        ))),
    }
    match evidence.platform.as_str() {
        "none" => {
            checks.push(verdict(
                !evidence.hardware_backed && evidence.evidence.is_none(),
                "platform none: no hardware report claimed".into(),
                "platform none yet a hardware report is claimed".into(),
            ));
            if expect.require_hardware {
                checks.push(Check::Fail(
                    "platform none, and a hardware report was required".into(),
                ));
            }
            checks.push(Check::Note(
                "NOT hardware-backed: this shows only that the holder of this instance key answered our nonce; the binary hash is the instance's own claim".into(),
            ));
        }
        platform @ ("sev_guest" | "tdx_guest") => {
            checks.push(verdict(
                evidence.hardware_backed,
                "a hardware report is claimed".into(),
                format!("platform {platform} but hardware_backed is false"),
            ));
            let report = evidence
                .evidence
                .as_deref()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            let carried = report
                .as_deref()
                .ok_or_else(|| "no report in the evidence".to_owned())
                .and_then(|r| statement::report_data_in(platform, r));
            let ok = matches!((&carried, expected_report_data), (Ok(c), Some(e)) if *c == e);
            checks.push(verdict(
                ok,
                format!("the {platform} report's structure holds and it carries our report_data"),
                match carried {
                    Err(e) => format!("the {platform} report: {e}"),
                    Ok(_) => format!("the {platform} report carries another report_data"),
                },
            ));
            checks.push(Check::Note(match platform {
                "sev_guest" => "NOT checked here: the report's signature by the chip's VCEK (its certificate from AMD's KDS, or aux's certificate table, chained to AMD's ARK and ASK), the TCB version, and the launch MEASUREMENT against the one expected for this image. Until they are, anyone could have made this report.".into(),
                _ => "NOT checked here: the quote's ECDSA signature and its PCK certificate chain to Intel's root (Intel's DCAP quote verification library), the TCB status, and MRTD/RTMRs against the ones expected for this image. Until they are, anyone could have made this quote.".into(),
            }));
        }
        other => checks.push(Check::Fail(format!("unknown platform {other:?}"))),
    }
    checks
}

/// An error and what caused it ("connection refused" sits a few sources down in reqwest's).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn verdict(ok: bool, pass: String, fail: String) -> Check {
    if ok {
        Check::Pass(pass)
    } else {
        Check::Fail(fail)
    }
}

fn hash32(hex: &str) -> Option<[u8; 32]> {
    from_hex(hex).and_then(|b| <[u8; 32]>::try_from(b).ok())
}

fn signature_holds(
    key: &PublicKey,
    text: &str,
    data: &[u8; 64],
    platform: &str,
) -> Result<(), String> {
    let verified = signature::verify_data(key, data, "report_data", text, "signature")
        .map_err(|e| e.to_string())?;
    let wanted = format!("platform:{platform}");
    if !verified
        .trusted_comment
        .split('\t')
        .any(|field| field == wanted)
    {
        return Err(format!(
            "its trusted comment {:?} names another platform",
            verified.trusted_comment
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use minisign::KeyPair;
    use std::io::Cursor;

    const BINARY: [u8; 32] = [0xb1; 32];

    /// Evidence as an honest instance makes it, over `nonce`.
    fn evidence(nonce: &[u8], platform: &str, report: Option<Vec<u8>>) -> (Evidence, [u8; 64]) {
        let pair = KeyPair::generate_unencrypted_keypair().expect("key pair");
        let raw = pair.pk.to_bytes()[10..42].to_vec();
        let key_sha256 = statement::instance_key_sha256(&raw);
        let report_data = statement::report_data(nonce, &BINARY, &key_sha256);
        let comment = format!("toolshed-attestation-v1\tplatform:{platform}");
        let signature = minisign::sign(
            None,
            &pair.sk,
            Cursor::new(report_data),
            Some(&comment),
            None,
        )
        .expect("sign")
        .into_string();
        let evidence = Evidence {
            platform: platform.into(),
            hardware_backed: report.is_some(),
            nonce: to_hex(nonce),
            binary_sha256: to_hex(&BINARY),
            instance_public_key: pair.pk.to_base64(),
            instance_key_sha256: to_hex(&key_sha256),
            report_data: to_hex(&report_data),
            report_data_preimage: statement::PREIMAGE.into(),
            evidence: report.map(|r| base64::engine::general_purpose::STANDARD.encode(r)),
            aux: None,
            signature,
            version: "0".into(),
            commit: "x".into(),
            note: String::new(),
        };
        (evidence, report_data)
    }

    fn expect_binary(hash: &[u8; 32]) -> Expectations {
        Expectations {
            binary_sha256: Some(to_hex(hash)),
            ..Expectations::default()
        }
    }

    fn failures(checks: &[Check]) -> Vec<&str> {
        checks
            .iter()
            .filter_map(|c| match c {
                Check::Fail(m) => Some(m.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn honest_software_evidence_passes_and_says_it_is_not_hardware() {
        let (e, _) = evidence(&[1; 32], "none", None);
        let checks = check(&e, &[1; 32], &expect_binary(&BINARY));
        assert!(failures(&checks).is_empty(), "{checks:?}");
        assert!(
            checks
                .iter()
                .any(|c| matches!(c, Check::Note(m) if m.contains("NOT hardware-backed")))
        );
    }

    #[test]
    fn a_replayed_or_altered_answer_fails() {
        let (e, _) = evidence(&[1; 32], "none", None);
        assert!(
            !failures(&check(&e, &[2; 32], &Expectations::default())).is_empty(),
            "another nonce"
        );
        let mut other_binary = evidence(&[1; 32], "none", None).0;
        other_binary.binary_sha256 = to_hex(&[0xb2; 32]);
        assert!(
            !failures(&check(&other_binary, &[1; 32], &Expectations::default())).is_empty(),
            "binary swapped"
        );
        let wrong = check(&e, &[1; 32], &expect_binary(&[0xb2; 32]));
        assert_eq!(failures(&wrong).len(), 1, "{wrong:?}");
        let (mut foreign, _) = evidence(&[1; 32], "none", None);
        foreign.signature = e.signature.clone();
        assert!(
            !failures(&check(&foreign, &[1; 32], &Expectations::default())).is_empty(),
            "another key's signature"
        );
    }

    #[test]
    fn a_hardware_report_must_carry_our_report_data() {
        let nonce = [3; 32];
        // Where an SNP report puts it, computed for the key the helper makes next.
        let (mut e, report_data) = evidence(&nonce, "sev_guest", Some(vec![0; 1184]));
        let mut report = vec![0u8; 1184];
        report[0x50..0x90].copy_from_slice(&report_data);
        e.evidence = Some(base64::engine::general_purpose::STANDARD.encode(&report));
        let checks = check(&e, &nonce, &Expectations::default());
        assert!(failures(&checks).is_empty(), "{checks:?}");
        assert!(
            checks
                .iter()
                .any(|c| matches!(c, Check::Note(m) if m.contains("VCEK")))
        );
        report[0x50] ^= 1;
        e.evidence = Some(base64::engine::general_purpose::STANDARD.encode(&report));
        assert_eq!(
            failures(&check(&e, &nonce, &Expectations::default())).len(),
            1
        );
        e.evidence = None;
        assert_eq!(
            failures(&check(&e, &nonce, &Expectations::default())).len(),
            1
        );
    }

    #[test]
    fn a_pinned_key_and_a_required_platform_are_enforced() {
        let (e, _) = evidence(&[1; 32], "none", None);
        let pinned = PublicKey::from_base64(&e.instance_public_key).expect("key");
        let same = Expectations {
            instance_key: Some(pinned),
            ..Expectations::default()
        };
        assert!(failures(&check(&e, &[1; 32], &same)).is_empty());
        let (other, _) = evidence(&[1; 32], "none", None);
        assert_eq!(
            failures(&check(&other, &[1; 32], &same)).len(),
            1,
            "another instance"
        );
        let hardware = Expectations {
            require_hardware: true,
            ..Expectations::default()
        };
        assert_eq!(failures(&check(&e, &[1; 32], &hardware)).len(), 1);
    }

    #[test]
    fn a_hardware_platform_without_the_claim_fails() {
        let nonce = [4; 32];
        let (mut e, report_data) = evidence(&nonce, "sev_guest", Some(vec![0; 1184]));
        let mut report = vec![0u8; 1184];
        report[0x50..0x90].copy_from_slice(&report_data);
        e.evidence = Some(base64::engine::general_purpose::STANDARD.encode(&report));
        e.hardware_backed = false;
        assert_eq!(
            failures(&check(&e, &nonce, &Expectations::default())).len(),
            1
        );
    }

    #[test]
    fn a_truncated_signature_fails_without_a_panic() {
        let (mut e, _) = evidence(&[1; 32], "none", None);
        let mut lines: Vec<String> = e.signature.lines().map(str::to_owned).collect();
        lines[3] = "AAAA".into();
        e.signature = lines.join("\n");
        assert_eq!(
            failures(&check(&e, &[1; 32], &Expectations::default())).len(),
            1
        );
    }
}
