//! Where instances run, behind one small trait: the control plane asks a provider to make
//! an instance's place, start it on a verified release, tell whether it still runs, and
//! stop it; it reaches the instance only over HTTP at the provider's address for it.
//! `process.rs` is the one built (a child process per instance on this machine); the
//! confidential-VM provider is described in docs/OPERATIONS.md ("Providers").

use std::path::Path;

use futures_util::future::BoxFuture;

use super::store::Limits;

pub trait Provider: Send + Sync {
    /// Makes instance `id`'s place, holding the user's API token and the metrics token
    /// (once, at creation).
    fn prepare(&self, id: &str, token: &str, metrics_token: &str) -> std::io::Result<()>;

    /// Starts instance `id` serving on `port`, running `program` (a verified release)
    /// within `limits`; the handle it is known by from then on (a pid).
    fn start(&self, id: &str, port: u16, program: &Path, limits: &Limits) -> std::io::Result<u32>;

    /// Whether `handle` still runs and is instance `id` (not a recycled pid).
    fn is_running(&self, id: &str, handle: u32) -> bool;

    /// Once `handle` ended: whether it exited cleanly; `None` when nobody here can know.
    fn take_exit(&self, handle: u32) -> Option<bool>;

    /// Stops it gracefully, forcibly after a grace.
    fn stop<'a>(&'a self, id: &'a str, handle: u32) -> BoxFuture<'a, ()>;

    /// Removes instance `id`'s place, its data too.
    fn purge(&self, id: &str) -> std::io::Result<()>;

    /// Where instance `id`, serving on `port`, is reached.
    fn address(&self, id: &str, port: u16) -> String;

    /// The user's API token for instance `id` (which its attestation route takes).
    fn api_token(&self, id: &str) -> Option<String>;

    /// The token instance `id`'s `/metrics` takes, and nothing else does.
    fn metrics_token(&self, id: &str) -> Option<String>;
}
