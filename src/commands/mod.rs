//! The command line's other verbs, beside `serve`: signing and verifying files, and checking
//! a running instance's attestation. Each prints what it found and returns the exit status.

mod attest_verify;
mod signing;

pub use attest_verify::attest_verify;
pub use signing::{sign, verify};
