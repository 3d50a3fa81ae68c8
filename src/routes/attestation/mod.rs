//! `/api/attestation`: evidence that binds a caller's nonce to this exact executable and this
//! instance's key — a hardware report on AMD SEV-SNP and Intel TDX guests (configfs-tsm),
//! elsewhere a statement signed by the instance key and marked as not hardware-backed. The
//! instance never says "verified": `toolshed attest verify` does the checking.

mod handlers;
pub mod instance_key;
pub mod schemas;
mod state;
pub mod statement;
pub mod tsm;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::platform::state::AppState;

/// Loads (or, on first start, makes) the instance key: a key that cannot be read stops the
/// start.
pub fn router(app: &AppState) -> Result<OpenApiRouter<AppState>, String> {
    let key = instance_key::load_or_create(&app.config.data_dir)?;
    let state = state::Attestation::new(key, app.config.attestation_tsm_dir.clone());
    Ok(OpenApiRouter::new()
        .routes(routes!(handlers::evidence))
        .with_state(state))
}
