//! Health for load balancers and orchestrators: `/healthz` says the process answers, `/readyz`
//! that it can do its work (the database answers and every migration this build knows is applied).
//! Neither needs signing in, and neither says more than the phase that failed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// `GET /healthz`: 200 while the process serves requests.
pub async fn alive() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 when the database answers with every migration applied, else 503 with the
/// phase that failed.
pub async fn ready(State(state): State<AppState>) -> Response {
    match state.store.ready().await {
        Ok(()) => "ready\n".into_response(),
        Err(error) => {
            tracing::warn!(%error, "readyz: not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {error}\n"),
            )
                .into_response()
        }
    }
}
