//! What this binary is: version, git commit, build date and target, fixed at build time by
//! `build.rs`.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("TOOLSHED_GIT_COMMIT");
pub const BUILD_DATE: &str = env!("TOOLSHED_BUILD_DATE");
pub const TARGET: &str = env!("TOOLSHED_TARGET");

/// The text `toolshed version` prints.
pub fn describe() -> String {
    format!("toolshed {VERSION}\ncommit: {GIT_COMMIT}\nbuilt: {BUILD_DATE}\ntarget: {TARGET}")
}
