//! `toolshed sign` and `toolshed verify`: minisign-format signatures, which the stock
//! `minisign -V` checks too.

use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::platform::signature;

/// Signs `file` into `file.minisig`.
pub fn sign(secret_key: &Path, trusted_comment: Option<&str>, file: &Path) -> ExitCode {
    let key = match signature::load_secret_key(secret_key) {
        Ok(key) => key,
        Err(e) => return fail(&e.to_string()),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let comment = trusted_comment
        .map(str::to_owned)
        .unwrap_or_else(|| signature::default_trusted_comment(file, now));
    match signature::sign_file(&key, file, &comment) {
        Ok(out) => {
            println!("wrote {}", out.display());
            println!("trusted comment: {comment}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Verifies `file` against its signature; prints the trusted comment when it holds.
pub fn verify(public_key: &str, signature_file: Option<&Path>, file: &Path) -> ExitCode {
    let key = match signature::load_public_key(public_key) {
        Ok(key) => key,
        Err(e) => return fail(&e.to_string()),
    };
    let sig = signature_file
        .map(Path::to_owned)
        .unwrap_or_else(|| signature::signature_path(file));
    match signature::verify_file(&key, file, &sig) {
        Ok(verified) => {
            println!(
                "Signature and comment signature verified (key {})",
                verified.key_id
            );
            println!("Trusted comment: {}", verified.trusted_comment);
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("toolshed: {message}");
    ExitCode::from(1)
}
