//! `/api/admin`: the instance's owner's controls, behind admin tokens
//! (`TOOLSHED_ADMIN_TOKENS`, checked in `middlewares::access`), separate from the API's.
//! Today: backups of the data directory (`storage::backup`), taken on demand or by the
//! `backup` task kind a schedule enqueues.

pub mod backup_task;
mod backups;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::platform::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(backups::start_backup, backups::list_backups))
        .routes(routes!(backups::download_backup, backups::delete_backup))
}
