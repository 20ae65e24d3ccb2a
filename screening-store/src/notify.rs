//! Wakes, within this process, the waiters of a gateway when one of its messages becomes pending,
//! and the watchers of appointments (the clinic page's live stream and its cached table) when an
//! appointment or its messages change.
//!
//! PostgreSQL adapters feed it from `LISTEN` as well, so waiters in every instance wake up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use screening_core::ids::{AppointmentId, GatewayId};
use tokio::sync::{broadcast, Notify};

/// How many status changes a slow watcher may fall behind by before it is told to look at
/// everything ([`StatusChange::Unknown`]) instead.
const STATUS_BACKLOG: usize = 1024;

/// One [`Notify`] per gateway that anyone has waited for, and the status changes' broadcast.
pub(crate) struct Notifier {
    gateways: Mutex<HashMap<GatewayId, Arc<Notify>>>,
    statuses: broadcast::Sender<StatusChange>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self {
            gateways: Mutex::default(),
            statuses: broadcast::channel(STATUS_BACKLOG).0,
        }
    }
}

/// What changed, as a watcher of message statuses hears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    /// These appointments changed: their state (an action was committed), or their messages
    /// (created, taken, confirmed, failed, released, redelivered or a modality's report recorded).
    Appointments(Arc<[AppointmentId]>),
    /// Changes may have been missed (the watcher fell behind, or the database's notifications
    /// were interrupted), or many rows changed at once (seeding, retention), or an alert opened
    /// or resolved: look at everything again.
    Unknown,
}

impl StatusChange {
    /// Whether a watcher of `watched` should look again.
    pub fn concerns(&self, watched: impl Fn(&AppointmentId) -> bool) -> bool {
        match self {
            Self::Appointments(ids) => ids.iter().any(watched),
            Self::Unknown => true,
        }
    }
}

/// A watcher's place in the store's status changes ([`crate::ScreeningStore::status_changes`]).
/// Made before reading the statuses, it hears every change committed after it was made.
pub struct StatusSubscription {
    receiver: broadcast::Receiver<StatusChange>,
}

impl StatusSubscription {
    /// The next change; `None` once the store is gone.
    pub async fn next(&mut self) -> Option<StatusChange> {
        match self.receiver.recv().await {
            Ok(change) => Some(change),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(StatusChange::Unknown),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next change already announced, without waiting; `None` when there is none (yet).
    /// A change is announced before its writer hears "committed", so whoever asks after that
    /// hears it here.
    pub fn try_next(&mut self) -> Option<StatusChange> {
        match self.receiver.try_recv() {
            Ok(change) => Some(change),
            Err(broadcast::error::TryRecvError::Lagged(_)) => Some(StatusChange::Unknown),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => {
                None
            }
        }
    }
}

impl Notifier {
    /// A new watcher of status changes.
    pub fn subscribe_statuses(&self) -> StatusSubscription {
        StatusSubscription {
            receiver: self.statuses.subscribe(),
        }
    }

    /// Tells this process's status watchers that these appointments or their messages changed.
    pub fn statuses_changed(&self, appointments: Arc<[AppointmentId]>) {
        if !appointments.is_empty() {
            // Nobody watching is not an error.
            let _ = self.statuses.send(StatusChange::Appointments(appointments));
        }
    }

    /// The handle to wait on for a gateway, created on first use.
    pub fn handle(&self, gateway_id: GatewayId) -> Arc<Notify> {
        let mut gateways = self
            .gateways
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        gateways.entry(gateway_id).or_default().clone()
    }

    /// Wakes everyone currently waiting for the gateway; nobody waiting means nothing to do.
    pub fn notify(&self, gateway_id: GatewayId) {
        let gateways = self
            .gateways
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(notify) = gateways.get(&gateway_id) {
            notify.notify_waiters();
        }
    }

    /// Wakes every waiter of every gateway, so each looks again: for when wake-ups may have been
    /// missed (the `LISTEN` connection was lost for a moment).
    pub fn notify_all(&self) {
        let gateways = self
            .gateways
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for notify in gateways.values() {
            notify.notify_waiters();
        }
        self.everything_changed();
    }

    /// Tells this process's status watchers to look at everything again.
    pub fn everything_changed(&self) {
        let _ = self.statuses.send(StatusChange::Unknown);
    }
}
