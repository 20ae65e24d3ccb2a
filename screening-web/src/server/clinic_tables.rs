//! The clinic pages' appointment tables, rendered once per change instead of once per request.
//!
//! A table is read and rendered when first asked for, then served from memory until the store
//! announces that one of its appointments (or their messages) changed, in this process or, on a
//! shared PostgreSQL, in another instance ([`ScreeningStore::status_changes`]). Changes are
//! collected when a page is asked for, not by a background task: the store announces a change
//! before its writer hears "committed", so a page asked for after that never comes from before it.
//! A table is also read again once it is `max_age` old ([`MAX_AGE`] unless configured), so a
//! notification lost between instances cannot leave a page behind for longer than that.
//!
//! The HTML is the same for every member of staff except for the forms' CSRF token: it is
//! rendered with a stand-in token, random per process, and each response puts its session's in.
//!
//! The open alerts the pages' banner shows are kept the same way: the store announces an alert
//! opening or resolving as "look at everything again".

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use screening_core::ids::{AppointmentId, ClinicId};
use screening_store::{
    AlertRecord, ClinicSummary, ScreeningStore, StatusChange, StatusSubscription,
};

/// How long a table is served before it is read again, changes or not, unless configured.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// Changes remembered, so a table read while they happened is not kept. A reading that takes
/// longer than this many changes is simply not kept.
const REMEMBERED_CHANGES: usize = 4096;

/// One clinic's table as rendered for everyone.
pub struct ClinicTable {
    /// The clinic, its site and counts.
    pub summary: ClinicSummary,
    /// Each appointment's participant, by name, for the banner after an action.
    names: HashMap<AppointmentId, String>,
    /// The rows' HTML, in pieces between which each response puts its CSRF token.
    pieces: Vec<String>,
    /// When the reading began.
    read_at: Instant,
}

impl ClinicTable {
    /// The rows' HTML with `csrf` in each form.
    pub fn rows_html(&self, csrf: &str) -> String {
        let length = self.pieces.iter().map(String::len).sum::<usize>()
            + csrf.len() * self.pieces.len().saturating_sub(1);
        let mut html = String::with_capacity(length);
        for (index, piece) in self.pieces.iter().enumerate() {
            if index > 0 {
                html.push_str(csrf);
            }
            html.push_str(piece);
        }
        html
    }

    /// The participant of the clinic's appointment `id`, by name.
    pub fn participant_name(&self, id: &AppointmentId) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }
}

/// A reading's place among the changes: taken before reading the database.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    heard: u64,
    at: Instant,
}

/// The tables of the clinics whose pages were asked for.
pub struct ClinicTables {
    inner: Mutex<Inner>,
    stand_in: String,
    max_age: Duration,
    /// Tables read from the database so far.
    readings: AtomicU64,
}

struct Inner {
    changes: StatusSubscription,
    tables: HashMap<ClinicId, Arc<ClinicTable>>,
    /// The open alerts, and when their reading began.
    alerts: Option<(Arc<[AlertRecord]>, Instant)>,
    /// How many changes have been heard.
    heard: u64,
    /// The latest changes, the last of them change number `heard`.
    recent: VecDeque<StatusChange>,
}

impl Inner {
    /// Takes in the changes announced since last time, dropping the tables they concern.
    fn hear(&mut self) {
        while let Some(change) = self.changes.try_next() {
            self.tables
                .retain(|_, table| !change.concerns(|id| table.names.contains_key(id)));
            if change == StatusChange::Unknown {
                self.alerts = None;
            }
            self.heard += 1;
            if self.recent.len() == REMEMBERED_CHANGES {
                self.recent.pop_front();
            }
            self.recent.push_back(change);
        }
    }

    /// The changes heard since `mark`; `None` if some are no longer remembered.
    fn since(&self, mark: Mark) -> Option<impl Iterator<Item = &StatusChange>> {
        let since = usize::try_from(self.heard - mark.heard).ok()?;
        (since <= self.recent.len()).then(|| self.recent.iter().rev().take(since))
    }

    /// Whether nothing heard since `mark` concerns `table`.
    fn untouched_since(&self, mark: Mark, table: &ClinicTable) -> bool {
        self.since(mark).is_some_and(|mut changes| {
            changes.all(|change| !change.concerns(|id| table.names.contains_key(id)))
        })
    }
}

impl ClinicTables {
    /// Tables kept fresh by `store`'s announcements, and read again at least every `max_age`.
    pub fn new(store: &dyn ScreeningStore, max_age: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                changes: store.status_changes(),
                tables: HashMap::new(),
                alerts: None,
                heard: 0,
                recent: VecDeque::new(),
            }),
            stand_in: crate::server::auth::random_token(),
            max_age,
            readings: AtomicU64::new(0),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.hear();
        inner
    }

    /// The clinic's table, if one is kept that no change has overtaken and is not too old.
    pub fn cached(&self, clinic_id: ClinicId) -> Option<Arc<ClinicTable>> {
        let mut inner = self.inner();
        let table = inner.tables.get(&clinic_id)?;
        if table.read_at.elapsed() < self.max_age {
            Some(table.clone())
        } else {
            inner.tables.remove(&clinic_id);
            None
        }
    }

    /// Where the changes stand: take it before reading a table or the alerts from the database.
    pub fn mark(&self) -> Mark {
        Mark {
            heard: self.inner().heard,
            at: Instant::now(),
        }
    }

    /// The table of a clinic read since `mark`: `render` makes the rows' HTML with the CSRF token
    /// it is given. Kept for the next request unless a change heard meanwhile concerns it.
    pub fn keep(
        &self,
        clinic_id: ClinicId,
        mark: Mark,
        summary: ClinicSummary,
        names: HashMap<AppointmentId, String>,
        render: impl FnOnce(&str) -> String,
    ) -> Arc<ClinicTable> {
        self.readings.fetch_add(1, Ordering::Relaxed);
        let table = Arc::new(ClinicTable {
            summary,
            names,
            pieces: render(&self.stand_in)
                .split(self.stand_in.as_str())
                .map(str::to_string)
                .collect(),
            read_at: mark.at,
        });
        let mut inner = self.inner();
        // Tables of clinics nobody looked at since they aged out go, so memory stays with the
        // clinics in use.
        let max_age = self.max_age;
        inner
            .tables
            .retain(|_, kept| kept.read_at.elapsed() < max_age);
        if inner.untouched_since(mark, &table) {
            inner.tables.insert(clinic_id, table.clone());
        }
        table
    }

    /// The open alerts, if kept and not too old.
    pub fn cached_alerts(&self) -> Option<Arc<[AlertRecord]>> {
        let inner = self.inner();
        let (alerts, read_at) = inner.alerts.as_ref()?;
        (read_at.elapsed() < self.max_age).then(|| alerts.clone())
    }

    /// Keeps the open alerts read since `mark`, unless an alert changed meanwhile.
    pub fn keep_alerts(&self, mark: Mark, alerts: Arc<[AlertRecord]>) {
        let mut inner = self.inner();
        let untouched = inner
            .since(mark)
            .is_some_and(|mut changes| changes.all(|change| *change != StatusChange::Unknown));
        if untouched {
            inner.alerts = Some((alerts, mark.at));
        }
    }

    /// How many tables have been read from the database (each page served from memory reads
    /// none).
    pub fn readings(&self) -> u64 {
        self.readings.load(Ordering::Relaxed)
    }
}
