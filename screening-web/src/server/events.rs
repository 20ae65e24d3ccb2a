//! The clinic page's live message status: a server-sent events stream.
//!
//! On connect it sends every appointment's latest message status (so nothing that changed between
//! rendering the page and connecting is missed), then each change as it is seen. It reads the
//! database once per interval: that notices changes made by any instance of the web app or hub on
//! a shared PostgreSQL, and costs one indexed query per open clinic page.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::stream::{self, Stream, StreamExt};
use screening_core::prelude::*;

use crate::server::auth::{token_hash, Session};
use crate::server::limits::{StreamSlot, MAX_STREAMS_PER_SESSION};
use crate::server::pages::clinics::status_view;
use crate::server::pages::errors::{message_page, PageError};
use crate::server::AppState;
use crate::status::StatusView;

/// `GET /clinics/{clinic_id}/events`: `data:` lines, each a JSON [`StatusView`].
/// A session may hold [`MAX_STREAMS_PER_SESSION`] open; another is answered 429.
pub async fn clinic_events(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(clinic_id): Path<String>,
) -> Result<Response, PageError> {
    let clinic_id = ClinicId::parse(&clinic_id).map_err(|_| PageError::NotFound("clinic"))?;
    state.store.clinic(clinic_id).await?;
    let Some(slot) = state.streams.open(token_hash(&session.token)) else {
        return Ok(message_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many live clinic pages",
            &format!(
                "You have {MAX_STREAMS_PER_SESSION} clinic pages updating live already. Close \
                 one and reload this page to see live updates here."
            ),
        ));
    };
    // The stream ends when the server shuts down, so open clinic pages cannot hold it up.
    let shutting_down = state.shutting_down();
    Ok(
        Sse::new(status_changes(state, clinic_id, slot).take_until(shutting_down))
            .keep_alive(KeepAlive::default())
            .into_response(),
    )
}

struct Watch {
    /// Counted as an open stream while the stream lives.
    _open: super::metrics::OpenStream,
    /// The session's place among its open streams, given back when the stream ends.
    _slot: StreamSlot,
    state: AppState,
    clinic_id: ClinicId,
    sent: HashMap<String, StatusView>,
    queued: Vec<StatusView>,
    first: bool,
}

fn status_changes(
    state: AppState,
    clinic_id: ClinicId,
    slot: StreamSlot,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let watch = Watch {
        _open: super::metrics::OpenStream::open(),
        _slot: slot,
        state,
        clinic_id,
        sent: HashMap::new(),
        queued: Vec::new(),
        first: true,
    };
    stream::unfold(watch, |mut watch| async move {
        loop {
            if let Some(view) = watch.queued.pop() {
                let event = Event::default()
                    .json_data(&view)
                    .unwrap_or_else(|_| Event::default().comment("unserialisable"));
                watch.sent.insert(view.appointment_id.clone(), view);
                return Some((Ok(event), watch));
            }
            if !watch.first {
                tokio::time::sleep(watch.state.config.events_interval).await;
            }
            watch.first = false;
            match watch
                .state
                .store
                .clinic_latest_messages(watch.clinic_id)
                .await
            {
                Ok(messages) => {
                    watch.queued = messages
                        .iter()
                        .map(status_view)
                        .filter(|view| watch.sent.get(&view.appointment_id) != Some(view))
                        .collect();
                }
                // A passing database fault: keep the stream, try again next interval.
                Err(error) => {
                    tracing::warn!(clinic_id = %watch.clinic_id, %error, "live status: reading statuses failed (store)")
                }
            }
        }
    })
}
