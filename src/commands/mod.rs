//! The command line's other verbs, beside `serve`: signing and verifying files, checking
//! a running instance's attestation, restoring a backup,
//! installing a signed release. Each prints what it found and returns the exit status.

pub(crate) mod attest_verify;
mod restore;
mod signing;
mod update;

pub use attest_verify::attest_verify;
pub use restore::{list_backups, restore};
pub use signing::{sign, verify};
pub use update::{UpdateArgs, update};
