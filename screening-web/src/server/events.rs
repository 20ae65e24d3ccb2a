//! The clinic page's live message status: a server-sent events stream.
//!
//! On connect it sends every appointment's latest message status (so nothing that changed between
//! rendering the page and connecting is missed), then each change. The database is read only when
//! the store says one of the clinic's appointments changed (in this process, or in any instance on
//! a shared PostgreSQL through LISTEN/NOTIFY), and once per change for all the clinic's open pages
//! together: open pages cost no queries while nothing changes.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::stream::{self, Stream, StreamExt};
use screening_core::prelude::*;
use tokio::sync::watch;

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

/// The clinics being watched, each by one feed (a reader of the store) that every open page of
/// the clinic shares.
#[derive(Default)]
pub struct ClinicFeeds {
    feeds: Mutex<HashMap<ClinicId, Weak<Feed>>>,
}

impl ClinicFeeds {
    /// The clinic's feed, started if no page watches the clinic yet.
    fn watch(&self, state: &AppState, clinic_id: ClinicId) -> Arc<Feed> {
        let mut feeds = self
            .feeds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(feed) = feeds.get(&clinic_id).and_then(Weak::upgrade) {
            return feed;
        }
        feeds.retain(|_, feed| feed.strong_count() > 0);
        let (publish, views) = watch::channel(None);
        let reader = tokio::spawn(read_on_change(state.clone(), clinic_id, publish));
        let feed = Arc::new(Feed { views, reader });
        feeds.insert(clinic_id, Arc::downgrade(&feed));
        feed
    }
}

/// One clinic's statuses as last read, for every open page of it; its reader stops when the last
/// page closes.
struct Feed {
    views: watch::Receiver<Option<Arc<[StatusView]>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Reads the clinic's statuses, then again each time the store says one of its appointments
/// changed, and publishes each reading: one query per change for all its open pages.
async fn read_on_change(
    state: AppState,
    clinic_id: ClinicId,
    publish: watch::Sender<Option<Arc<[StatusView]>>>,
) {
    // Made before the first read, so no change committed after it is missed.
    let mut changes = state.store.status_changes();
    let appointments: HashSet<AppointmentId> = loop {
        match state.store.clinic_appointments(clinic_id).await {
            Ok(rows) => break rows.iter().map(|row| row.appointment.id).collect(),
            Err(error) => {
                tracing::warn!(%clinic_id, %error, "live status: reading the clinic's appointments failed (store); trying again");
                tokio::time::sleep(READ_RETRY).await;
            }
        }
    };
    loop {
        state.live_status_read();
        match state.store.clinic_latest_messages(clinic_id).await {
            Ok(messages) => {
                publish.send_replace(Some(messages.iter().map(status_view).collect()));
            }
            // A passing database fault: try again shortly (a change since is still heard).
            Err(error) => {
                tracing::warn!(%clinic_id, %error, "live status: reading statuses failed (store); trying again");
                tokio::time::sleep(READ_RETRY).await;
                continue;
            }
        }
        loop {
            let Some(change) = changes.next().await else {
                return;
            };
            if change.concerns(|id| appointments.contains(id)) {
                break;
            }
        }
    }
}

/// How long a feed waits before reading again after the database failed it.
const READ_RETRY: Duration = Duration::from_secs(1);

struct Watch {
    /// Counted as an open stream while the stream lives.
    _open: super::metrics::OpenStream,
    /// The session's place among its open streams, given back when the stream ends.
    _slot: StreamSlot,
    /// Keeps the clinic's feed reading while the page is open.
    _feed: Arc<Feed>,
    views: watch::Receiver<Option<Arc<[StatusView]>>>,
    sent: HashMap<String, StatusView>,
    queued: Vec<StatusView>,
    first: bool,
}

fn status_changes(
    state: AppState,
    clinic_id: ClinicId,
    slot: StreamSlot,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let feed = state.clinic_feeds.watch(&state, clinic_id);
    let watch = Watch {
        _open: super::metrics::OpenStream::open(),
        _slot: slot,
        views: feed.views.clone(),
        _feed: feed,
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
            // The first look takes what the feed has read already, if anything.
            if !watch.first && watch.views.changed().await.is_err() {
                return None;
            }
            watch.first = false;
            let latest = watch.views.borrow_and_update().clone();
            if let Some(views) = latest {
                watch.queued = views
                    .iter()
                    .filter(|view| watch.sent.get(&view.appointment_id) != Some(view))
                    .cloned()
                    .collect();
            }
        }
    })
}
