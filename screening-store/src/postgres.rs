//! The PostgreSQL adapter, for production and for several web or dispatcher instances on one database.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use screening_core::message::LifecycleError;
use screening_core::prelude::*;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Connection as _, PgPool, Postgres};
use tokio::sync::mpsc;

use crate::credentials::CredentialCache;
use crate::notify::Notifier;
use crate::rows::{
    AppointmentParts, AppointmentRow, ClinicAppointment, EventRow, GatewayRow, MessageRow,
    RelayColumns, RouteRow, APPOINTMENT_SELECT,
};
use crate::rows::{ClinicRow, CountRow, LatestRow, ListingRow, PageRow, StaffRow};
use crate::sql::{
    Confirm, ConfirmedRow, QueuedWrite, Readers, Take, WriteConnection, Writer, Written,
};
use crate::web::{
    AdminEvent, ClinicPage, ClinicSummary, GatewayBacklog, GatewayFigures, LatestMessage,
    MessageFilter, MessageListing, StaffAccount, StaffChange, StaffListing, WebStore,
};
use crate::{ConnectError, ScreeningStore};
#[cfg(feature = "demo")]
use screening_core::demo::DemoData;

/// The channel on which instances tell each other that a gateway has pending messages (payload:
/// the gateway's id) or that appointments or their messages changed (payload: [`STATUSES_PREFIX`],
/// the sending instance's id, `:`, and the appointments' ids separated by commas, or
/// [`EVERYTHING`]).
const CHANNEL: &str = "screening_outbox";

/// Marks a status change's payload; an older instance reads it as no gateway and ignores it.
const STATUSES_PREFIX: &str = "statuses:";

/// A status change's payload for "look at every appointment again" (seeding, retention, an
/// alert opening or resolving).
const EVERYTHING: &str = "*";

/// Appointment ids per NOTIFY: 36 characters and a comma each stay well under PostgreSQL's
/// 8,000-byte payload limit.
const STATUSES_PER_NOTIFY: usize = 150;

/// What one instance tells the others, after its commit.
#[derive(Debug)]
enum Announcement {
    /// The gateway has a pending message: wake its waiters.
    Pending(GatewayId),
    /// The appointments or their messages changed: wake the status watchers.
    Statuses(Vec<AppointmentId>),
    /// Many appointments changed: every status watcher looks at everything again.
    Everything,
}

/// Tells of a commit: this instance's waiters and watchers at once, the other instances through
/// the debounced NOTIFY task. Held by the store and by its committer (which cannot hold the store).
#[derive(Clone)]
struct Announcer {
    notifier: Arc<Notifier>,
    others: mpsc::UnboundedSender<Announcement>,
}

impl Announcer {
    // The NOTIFY task ends only with the runtime; a closed channel then means nobody is left to
    // tell, so sends that fail are ignored.

    fn wake(&self, gateway_id: GatewayId) {
        self.notifier.notify(gateway_id);
        let _ = self.others.send(Announcement::Pending(gateway_id));
    }

    fn statuses_changed(&self, appointments: Vec<AppointmentId>) {
        if appointments.is_empty() {
            return;
        }
        self.notifier
            .statuses_changed(appointments.as_slice().into());
        let _ = self.others.send(Announcement::Statuses(appointments));
    }

    fn everything_changed(&self) {
        self.notifier.everything_changed();
        let _ = self.others.send(Announcement::Everything);
    }
}

/// This build's migrations, embedded.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The store on PostgreSQL.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The same pool: its connections can drop, and it replaces them.
    readers: Readers<Postgres>,
    /// The same pool: PostgreSQL handles concurrent writers itself.
    writer: Writer<Postgres>,
    notifier: Arc<Notifier>,
    /// Tells this instance and the others of commits.
    announcer: Announcer,
    /// Appointment changes and new messages, for the committer (`commit_in_groups`).
    commits: mpsc::UnboundedSender<QueuedWrite>,
    /// Gateway credential hashes read in the last moment.
    credentials: Arc<CredentialCache>,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`), runs the migrations and starts the two background tasks
    /// that carry wake-ups between instances (LISTEN, and a debounced NOTIFY).
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|source| ConnectError::connect(url, source))?;
        MIGRATOR.run(&pool).await.map_err(ConnectError::Migrate)?;
        let notifier = Arc::<Notifier>::default();
        let mut listener = PgListener::connect_with(&pool)
            .await
            .map_err(|source| ConnectError::connect(url, source))?;
        listener
            .listen(CHANNEL)
            .await
            .map_err(|source| ConnectError::connect(url, source))?;
        // Status changes carry this instance's id, so it skips its own (it told its watchers at
        // commit already).
        let instance = uuid::Uuid::new_v4().simple().to_string();
        tokio::spawn(relay_notifications(
            listener,
            notifier.clone(),
            instance.clone(),
        ));
        let (others, announcements) = mpsc::unbounded_channel();
        tokio::spawn(announce_changes(pool.clone(), instance, announcements));
        let announcer = Announcer {
            notifier: notifier.clone(),
            others,
        };
        let (commits, queue) = mpsc::unbounded_channel();
        let told = announcer.clone();
        tokio::spawn(Self::commit_in_groups(
            Writer::Pooled(pool.clone()),
            queue,
            move |gateways, appointments| {
                for gateway_id in gateways {
                    told.wake(gateway_id);
                }
                told.statuses_changed(appointments);
            },
        ));
        Ok(Self {
            writer: Writer::Pooled(pool.clone()),
            readers: Readers::Pooled(pool.clone()),
            pool,
            notifier,
            announcer,
            commits,
            credentials: Arc::default(),
        })
    }

    /// The pool, for callers that need a query the ports do not offer.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction that will write, on a write connection.
    async fn begin_write_on(
        connection: &mut WriteConnection<Postgres>,
    ) -> Result<sqlx::Transaction<'_, Postgres>, StoreError> {
        connection.begin().await.map_err(crate::db)
    }

    /// Takes the write lock and writes `group` (see `lock_then_write_in_turn`): PostgreSQL takes
    /// one statement with parameters at a time, so there is nothing to put in one call.
    async fn lock_then_write(
        connection: &mut WriteConnection<Postgres>,
        group: &mut Vec<QueuedWrite>,
    ) -> Option<Written> {
        Self::lock_then_write_in_turn(connection, group).await
    }

    /// Writes an appointment change (state, audit event, message) inside `tx`, only if the
    /// appointment is still at the expected version: a statement each (PostgreSQL takes one
    /// statement with parameters at a time).
    async fn write_change(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        change: &AppointmentChange,
    ) -> Result<(), StoreError> {
        let appointment = &change.appointment;
        let updated = sqlx::query(
            "UPDATE appointments SET state = $1, version = $2 WHERE id = $3 AND version = $4",
        )
        .bind(appointment.state.code())
        .bind(appointment.version)
        .bind(appointment.id.as_uuid())
        .bind(change.expected_version)
        .execute(&mut **tx)
        .await
        .map_err(crate::db)?
        .rows_affected();
        if updated == 0 {
            return Err(Self::change_refused(tx, change).await);
        }
        let event = &change.event;
        sqlx::query(
            "INSERT INTO appointment_events (appointment_id, action, from_state, to_state, at, actor) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(event.appointment_id.as_uuid())
        .bind(event.action.code())
        .bind(event.from.code())
        .bind(event.to.code())
        .bind(event.at)
        .bind(&event.by.0)
        .execute(&mut **tx)
        .await
        .map_err(crate::db)?;
        if let Some(message) = &change.message {
            Self::insert_message(&mut **tx, message).await?;
        }
        Ok(())
    }

    /// Claims a gateway's pending messages in its own statement: concurrent takes run side by
    /// side (`SKIP LOCKED`), so there is no single writer to queue for.
    async fn claim(&self, take: Take) -> Result<Vec<MessageRow>, StoreError> {
        Self::claim_for_one(&self.writer, &take).await
    }

    /// Confirms a gateway's open messages in its own statement: concurrent confirmations run
    /// side by side, as takes do.
    async fn confirm_open(&self, confirm: Confirm) -> Result<Vec<ConfirmedRow>, StoreError> {
        Self::confirm_for_one(&self.writer, &confirm).await
    }

    /// PostgreSQL's autovacuum reuses the space of deleted rows; nothing to do here.
    async fn reclaim_space(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn wake(&self, gateway_id: GatewayId) {
        self.announcer.wake(gateway_id);
    }

    fn statuses_changed(&self, appointments: Vec<AppointmentId>) {
        self.announcer.statuses_changed(appointments);
    }

    fn everything_changed(&self) {
        self.announcer.everything_changed();
    }
}

/// Wakes local waiters for every NOTIFY on the channel (including our own). When the connection
/// drops, sqlx reconnects and listens again; NOTIFYs sent meanwhile are lost, so every local waiter
/// is woken to look for itself.
async fn relay_notifications(mut listener: PgListener, notifier: Arc<Notifier>, instance: String) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                let payload = notification.payload();
                if let Some(statuses) = payload.strip_prefix(STATUSES_PREFIX) {
                    match statuses.split_once(':') {
                        Some((sender, _)) if sender == instance => {}
                        Some((_, EVERYTHING)) => notifier.everything_changed(),
                        Some((_, ids)) => notifier.statuses_changed(
                            ids.split(',')
                                .filter_map(|id| AppointmentId::parse(id).ok())
                                .collect(),
                        ),
                        None => tracing::warn!(
                            "PostgreSQL LISTEN: a status change without its sender; ignored"
                        ),
                    }
                } else if let Ok(gateway_id) = GatewayId::parse(payload) {
                    notifier.notify(gateway_id);
                }
            }
            Ok(None) => {
                tracing::warn!("PostgreSQL LISTEN: connection lost and re-established; waking every waiter to look again");
                notifier.notify_all();
            }
            // The next call reconnects; waiters fall back on their timeout meanwhile.
            Err(error) => {
                tracing::warn!(%error, "PostgreSQL LISTEN: receive failed; reconnecting (waiters fall back on their timeout)");
                notifier.notify_all();
                tokio::time::sleep(Duration::from_secs(1)).await
            }
        }
    }
}

/// Sends one NOTIFY per gateway, and the status changes in as few NOTIFYs as fit, for each burst
/// of commits, outside the write transactions: `pg_notify` inside every write transaction
/// serialises commits and caps throughput.
async fn announce_changes(
    pool: PgPool,
    instance: String,
    mut announcements: mpsc::UnboundedReceiver<Announcement>,
) {
    while let Some(first) = announcements.recv().await {
        let mut gateways = HashSet::new();
        let mut appointments = HashSet::new();
        let mut everything = false;
        let mut next = Some(first);
        while let Some(announcement) = next {
            match announcement {
                Announcement::Pending(gateway_id) => {
                    gateways.insert(gateway_id);
                }
                Announcement::Statuses(ids) => appointments.extend(ids),
                Announcement::Everything => everything = true,
            }
            next = announcements.try_recv().ok();
        }
        let mut payloads: Vec<String> = gateways.iter().map(GatewayId::to_string).collect();
        if everything {
            payloads.push(format!("{STATUSES_PREFIX}{instance}:{EVERYTHING}"));
        } else {
            let appointments: Vec<String> =
                appointments.iter().map(AppointmentId::to_string).collect();
            payloads.extend(
                appointments
                    .chunks(STATUSES_PER_NOTIFY)
                    .map(|ids| format!("{STATUSES_PREFIX}{instance}:{}", ids.join(","))),
            );
        }
        // All of a burst's payloads in one statement: each NOTIFY transaction takes a transaction
        // id and so flushes a commit record of its own (issue 11: a lone send made four).
        // Best effort: a lost NOTIFY delays other instances' gateway waiters until their
        // timeout, and their status watchers until the next change.
        if let Err(error) =
            sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
                .bind(CHANNEL)
                .bind(&payloads)
                .execute(&pool)
                .await
        {
            tracing::warn!(%error, "PostgreSQL NOTIFY failed; other instances hear of it late");
        }
    }
}

// Concurrent consumers skip rows another transaction has claimed, and lock the rows they update.
impl_sql_store!(
    store: PgStore,
    db: Postgres,
    skip_locked: " FOR UPDATE SKIP LOCKED",
    lock_row: " FOR UPDATE"
);
impl_web_store!(
    store: PgStore,
    migrator: MIGRATOR,
    appointment_low_hex: "upper(right(replace(m.appointment_id::text, '-', ''), 14))"
);
impl_alert_store!(store: PgStore);
impl_echo_store!(store: PgStore);
impl_retention_store!(store: PgStore);
