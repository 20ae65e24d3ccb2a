//! Server functions (served by `leptos_axum` under `/api/web/`, behind sign-in): what the islands
//! ask the server for besides the event stream.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::status::StatusView;

/// The latest message status of each of a clinic's appointments. The live island polls this when
/// its event stream cannot get through (for example a proxy that buffers streamed responses).
#[server(prefix = "/api/web", endpoint = "clinic-statuses", input = GetUrl)]
pub async fn clinic_statuses(
    /// The clinic, by id.
    clinic_id: String,
) -> Result<Vec<StatusView>, ServerFnError> {
    use screening_core::ids::ClinicId;
    let state = expect_context::<crate::server::AppState>();
    let clinic_id = ClinicId::parse(&clinic_id).map_err(ServerFnError::new)?;
    let messages = state
        .store
        .clinic_latest_messages(clinic_id)
        .await
        .map_err(ServerFnError::new)?;
    Ok(messages
        .iter()
        .map(crate::server::pages::clinics::status_view)
        .collect())
}
