//! Limits that keep one slow request or one busy browser from holding the server's resources: a
//! time limit on every page request, and a cap on the live status streams one session may hold
//! open (each is a connection and a database read per interval).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::pages::errors::message_page;
use super::AppState;

/// The most live status streams one session may hold open: a few clinic pages in tabs. Browsers
/// allow six HTTP/1.1 connections to a host, so more would starve the session's own page loads.
pub const MAX_STREAMS_PER_SESSION: usize = 4;

/// Answers 503 when a page request takes longer than the configured limit. The handler is
/// dropped, so its open transaction rolls back; the live stream's handler returns at once (its
/// events flow in the body, which no limit cuts).
pub async fn time_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.config.request_timeout;
    let path = request.uri().path().to_string();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%path, limit_ms = limit.as_millis() as u64, "request took too long (503)");
            message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sorry, the service is taking too long",
                &format!(
                    "The server gave up after {} seconds. If you were saving a change, look at \
                     the page again to see whether it was made before you try again.",
                    limit.as_secs_f64()
                ),
            )
        }
    }
}

/// Open live status streams, counted per session (by the hash of its token, never the token).
/// Entries exist only while a stream is open, so the map is bounded by open connections.
#[derive(Clone, Default)]
pub struct StreamCounts(Arc<Mutex<HashMap<String, usize>>>);

/// One open stream's place in [`StreamCounts`], given back when the stream ends.
pub struct StreamSlot {
    counts: StreamCounts,
    session: String,
}

impl StreamCounts {
    /// A slot for another stream of `session_hash`, or `None` when it has
    /// [`MAX_STREAMS_PER_SESSION`] open.
    pub fn open(&self, session_hash: String) -> Option<StreamSlot> {
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let open = counts.entry(session_hash.clone()).or_default();
        if *open >= MAX_STREAMS_PER_SESSION {
            return None;
        }
        *open += 1;
        Some(StreamSlot {
            counts: self.clone(),
            session: session_hash,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(open) = counts.get_mut(&self.session) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_gets_its_streams_back_as_they_close_and_others_are_unaffected() {
        let counts = StreamCounts::default();
        let held: Vec<_> = (0..MAX_STREAMS_PER_SESSION)
            .map(|_| counts.open("a".into()).expect("under the cap"))
            .collect();
        assert!(counts.open("a".into()).is_none(), "over the cap");
        assert!(counts.open("b".into()).is_some(), "another session");
        drop(held);
        assert!(
            counts.0.lock().unwrap().is_empty(),
            "no entry outlives its streams"
        );
        assert!(counts.open("a".into()).is_some());
    }
}
