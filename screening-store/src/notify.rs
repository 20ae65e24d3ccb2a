//! Wakes, within this process, the waiters of a gateway when one of its messages becomes pending,
//! and the watchers of appointments (the clinic page's live stream and its cached table) when an
//! appointment or its messages change.
//!
//! PostgreSQL adapters feed it from `LISTEN` as well, so waiters in every instance wake up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use screening_core::ids::{AppointmentId, GatewayId};
use tokio::sync::{broadcast, Notify};

/// How many status changes a slow watcher may fall behind by before it is told to look at
/// everything ([`StatusChange::Unknown`]) instead.
const STATUS_BACKLOG: usize = 1024;

/// How long after a take that left nothing pending its gateway's next long poll may skip its
/// look, if nothing has woken the gateway since the take began. A delivery's next poll comes
/// milliseconds later; the bound caps what a write this process is never told of (another
/// process on the same SQLite file) can cost: one long poll's wait, as when it lands while a poll
/// waits.
pub const QUIET_KEEP: Duration = Duration::from_secs(1);

/// One gateway's waiters, created when anyone first waits for or takes from it.
#[derive(Default)]
pub(crate) struct GatewayWaiters {
    notify: Notify,
    /// Wake-ups so far: every commit that may have made something pending for the gateway
    /// (a message, a release, a redelivery, an echo asked for) adds one before it wakes.
    wakes: AtomicU64,
    /// What the gateway's last takes found, each with the wake-ups counted before it began:
    /// no message left pending, and no echo waiting to be taken.
    quiet: Mutex<QuietTakes>,
}

#[derive(Default)]
struct QuietTakes {
    messages: Option<(u64, Instant)>,
    echo: Option<(u64, Instant)>,
}

/// A take's view of the gateway's wake-ups, counted before the take reads anything.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WakesSeen(u64);

impl GatewayWaiters {
    /// The wake-up to wait for: enable it before looking, so a commit after the look still wakes.
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Counted before a take reads, for [`Self::messages_quiet`] and [`Self::echo_quiet`].
    pub(crate) fn wakes_seen(&self) -> WakesSeen {
        WakesSeen(self.wakes.load(Ordering::SeqCst))
    }

    /// Whether a take that began at `seen` left no message of the gateway pending.
    pub(crate) fn messages_quiet(&self, seen: WakesSeen, quiet: bool) {
        self.quiet_takes().messages = quiet.then(|| (seen.0, Instant::now()));
    }

    /// Whether a take that began at `seen` found no echo waiting to be taken.
    pub(crate) fn echo_quiet(&self, seen: WakesSeen, quiet: bool) {
        self.quiet_takes().echo = quiet.then(|| (seen.0, Instant::now()));
    }

    fn quiet_takes(&self) -> std::sync::MutexGuard<'_, QuietTakes> {
        self.quiet
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether nothing can have become pending since the gateway's last takes, so a long poll
    /// need not look: both found nothing left (messages and echo) within [`QUIET_KEEP`], and
    /// nothing has woken the gateway since they began. Every commit that makes something pending
    /// wakes its gateway after it commits, so one that a take did not see counts a wake-up after
    /// that take began. Answers once: the next poll after this one looks.
    pub(crate) fn quiet_since_take(&self) -> bool {
        let (messages, echo) = {
            let mut takes = self.quiet_takes();
            (takes.messages.take(), takes.echo.take())
        };
        let wakes = self.wakes.load(Ordering::SeqCst);
        let still = |take: Option<(u64, Instant)>| {
            take.is_some_and(|(seen, at)| seen == wakes && at.elapsed() < QUIET_KEEP)
        };
        still(messages) && still(echo)
    }

    fn wake(&self) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

/// One [`GatewayWaiters`] per gateway that anyone has waited for or taken from, and the status
/// changes' broadcast.
pub(crate) struct Notifier {
    gateways: Mutex<HashMap<GatewayId, Arc<GatewayWaiters>>>,
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

    /// The gateway's waiters, created on first use.
    pub fn handle(&self, gateway_id: GatewayId) -> Arc<GatewayWaiters> {
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
        if let Some(waiters) = gateways.get(&gateway_id) {
            waiters.wake();
        }
    }

    /// Wakes every waiter of every gateway, so each looks again: for when wake-ups may have been
    /// missed (the `LISTEN` connection was lost for a moment).
    pub fn notify_all(&self) {
        let gateways = self
            .gateways
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for waiters in gateways.values() {
            waiters.wake();
        }
        self.everything_changed();
    }

    /// Tells this process's status watchers to look at everything again.
    pub fn everything_changed(&self) {
        let _ = self.statuses.send(StatusChange::Unknown);
    }
}
