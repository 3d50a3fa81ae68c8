//! The command line's other verbs, beside `serve`: signing and verifying files, checking
//! a running instance's attestation, restoring a backup. Each prints what it found and returns the exit status.

mod attest_verify;
mod restore;
mod signing;

pub use attest_verify::attest_verify;
pub use restore::restore;
pub use signing::{sign, verify};
