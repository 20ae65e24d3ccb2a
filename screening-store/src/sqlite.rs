//! The SQLite adapter: the embedded default (a file, created on first use, in WAL mode).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use screening_core::message::LifecycleError;
use screening_core::prelude::*;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Connection as _, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::credentials::CredentialCache;
use crate::notify::Notifier;
use crate::rows::{
    AppointmentParts, AppointmentRow, ClinicAppointment, EventRow, GatewayRow, MessageRow,
    RelayColumns, RouteRow, APPOINTMENT_SELECT,
};
use crate::rows::{ClinicRow, CountRow, LatestRow, ListingRow, PageRow, StaffRow};
use crate::sql::{
    Confirm, ConfirmedRow, GroupedWrite, QueuedWrite, Readers, Take, WriteConnection, Writer,
    Written,
};
use crate::web::{
    AdminEvent, ClinicPage, ClinicSummary, GatewayBacklog, GatewayFigures, LatestMessage,
    MessageFilter, MessageListing, StaffAccount, StaffChange, StaffListing, WebStore,
};
use crate::{ConnectError, ScreeningStore};
#[cfg(feature = "demo")]
use screening_core::demo::DemoData;

/// This build's migrations, embedded.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The store on SQLite.
#[derive(Clone)]
pub struct SqliteStore {
    /// Reads, concurrently (WAL).
    readers: Readers<Sqlite>,
    /// For callers that need a query the ports do not offer ([`SqliteStore::pool`]).
    pool: SqlitePool,
    /// Writes, through one connection: SQLite has one writer, and queueing writers here is much
    /// faster than letting them collide and sleep in SQLite's busy handler.
    writer: Writer<Sqlite>,
    notifier: Arc<Notifier>,
    /// Appointment changes and new messages, for the committer (`commit_in_groups`).
    commits: mpsc::UnboundedSender<QueuedWrite>,
    /// Takes, for the taker (see [`take_in_groups`]).
    takes: mpsc::UnboundedSender<QueuedTake>,
    /// Confirmations, for the confirmer (see [`confirm_in_groups`]).
    confirms: mpsc::UnboundedSender<QueuedConfirm>,
    /// Gateway credential hashes read in the last moment.
    credentials: Arc<CredentialCache>,
}

/// A confirmation waiting for the confirmer, and where its confirmed rows go.
type QueuedConfirm = (
    Confirm,
    oneshot::Sender<Result<Vec<ConfirmedRow>, StoreError>>,
);

/// Grouped confirmations: the confirmations that queued while the last group ran go in one
/// statement, and so one commit. When a thousand gateways are each sent an order at once, their
/// confirmations arrive together, and one at a time their statements queued on the one writer
/// connection ahead of the next takes. A message is named by one confirmation of a statement (two
/// could disagree on its time); one that names a message again goes in the next, and the rules
/// then find it confirmed before.
async fn confirm_in_groups(
    writer: Writer<Sqlite>,
    mut queue: mpsc::UnboundedReceiver<QueuedConfirm>,
) {
    let mut group = Vec::with_capacity(crate::MAX_GROUP);
    while queue.recv_many(&mut group, crate::MAX_GROUP).await > 0 {
        // A caller who gave up (a request that timed out) confirms nothing: its gateway will
        // confirm again.
        group.retain(|(_, reply)| !reply.is_closed());
        while !group.is_empty() {
            let mut named = std::collections::HashSet::new();
            // The statement's rows (a caller may name an id twice): at most CONFIRM_CHUNK.
            let mut rows = 0;
            let mut round = Vec::new();
            let mut later = Vec::new();
            for queued in group.drain(..) {
                let ids = &queued.0.message_ids;
                let too_many = !round.is_empty() && rows + ids.len() > crate::CONFIRM_CHUNK;
                if too_many || ids.iter().any(|id| named.contains(id)) {
                    later.push(queued);
                } else {
                    named.extend(ids.iter().copied());
                    rows += ids.len();
                    round.push(queued);
                }
            }
            group = later;
            let confirms: Vec<&Confirm> = round.iter().map(|(confirm, _)| confirm).collect();
            let confirmed = match confirms.as_slice() {
                [confirm] => SqliteStore::confirm_for_one(&writer, confirm).await,
                _ => SqliteStore::confirm_for_many(&writer, &confirms).await,
            };
            match confirmed {
                Ok(rows) => {
                    // Each message was named by one confirmation of the round.
                    let mut by_id: std::collections::HashMap<uuid::Uuid, ConfirmedRow> =
                        rows.into_iter().map(|row| (row.0, row)).collect();
                    for (confirm, reply) in round {
                        let rows = confirm
                            .message_ids
                            .iter()
                            .filter_map(|id| by_id.remove(&id.as_uuid()))
                            .collect();
                        let _ = reply.send(Ok(rows));
                    }
                }
                Err(error) => tell_each(round, &error),
            }
        }
    }
}

/// A take waiting for the taker, and where its claimed rows go.
type QueuedTake = (Take, oneshot::Sender<Result<Vec<MessageRow>, StoreError>>);

/// Grouped takes: the takes that queued while the last group ran claim their messages in one
/// statement. When an order goes to each of a thousand waiting gateways, their long polls wake
/// together, and one at a time their thousand statements queued on the one writer connection, each
/// paying its trip to sqlx's worker thread. A gateway takes at most once in a statement (its rows
/// would be indistinguishable from a second take's); a second take of it goes in the next.
async fn take_in_groups(writer: Writer<Sqlite>, mut queue: mpsc::UnboundedReceiver<QueuedTake>) {
    let mut group = Vec::with_capacity(crate::MAX_GROUP);
    while queue.recv_many(&mut group, crate::MAX_GROUP).await > 0 {
        // A caller who gave up (a request that timed out) takes nothing.
        group.retain(|(_, reply)| !reply.is_closed());
        while !group.is_empty() {
            let mut gateways = std::collections::HashSet::new();
            let (round, later): (Vec<_>, Vec<_>) = group
                .drain(..)
                .partition(|(take, _)| gateways.insert(take.gateway_id));
            group = later;
            let takes: Vec<Take> = round.iter().map(|(take, _)| *take).collect();
            let claimed = match takes.as_slice() {
                [take] => SqliteStore::claim_for_one(&writer, take).await,
                _ => SqliteStore::claim_for_many(&writer, &takes).await,
            };
            match claimed {
                Ok(rows) => {
                    let mut by_gateway: std::collections::HashMap<uuid::Uuid, Vec<MessageRow>> =
                        std::collections::HashMap::with_capacity(round.len());
                    for row in rows {
                        by_gateway.entry(row.gateway_id()).or_default().push(row);
                    }
                    for (take, reply) in round {
                        let rows = by_gateway
                            .remove(&take.gateway_id.as_uuid())
                            .unwrap_or_default();
                        let _ = reply.send(Ok(rows));
                    }
                }
                Err(error) => tell_each(round, &error),
            }
        }
    }
}

/// Tells each caller of a grouped statement that failed why.
fn tell_each<Asked, Answer>(
    round: Vec<(Asked, oneshot::Sender<Result<Answer, StoreError>>)>,
    error: &StoreError,
) {
    let error = error.to_string();
    for (_, reply) in round {
        let _ = reply.send(Err(StoreError::Backend(error.clone().into())));
    }
}

/// Read connections to a SQLite file.
const READERS: usize = 8;

/// Brings a new database file (or one made by an older build) up to this build's schema.
async fn prepare(connection: &mut SqliteConnection, url: &str) -> Result<(), ConnectError> {
    MIGRATOR
        .run(&mut *connection)
        .await
        .map_err(ConnectError::Migrate)?;
    // A file made before incremental vacuum was set keeps its old mode until one VACUUM rewrites
    // it (once; quick for the sizes a single site holds).
    let auto_vacuum: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
        .fetch_one(&mut *connection)
        .await
        .map_err(|source| ConnectError::connect(url, source))?;
    if auto_vacuum != 2 {
        sqlx::query("VACUUM")
            .execute(&mut *connection)
            .await
            .map_err(|source| ConnectError::connect(url, source))?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/file.db` or
    /// `sqlite::memory:`) and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| ConnectError::connect(url, source))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Pages freed by retention go back to the file system (see `reclaim_space`).
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            // sqlx's default (50) makes a clinic's 100 rows stop and wake the worker thread mid-result.
            .row_buffer_size(512)
            // Pages are read through a memory map (the OS's page cache, shared by every connection)
            // instead of copied in by pread: once the outbox outgrew SQLite's 2 MB page cache, a
            // third of a busy outbox's time went to those copies.
            .pragma("mmap_size", "268435456");
        // Every pool's connections opened now and kept: opening one waits while another process
        // holds the write lock (seen in a test), so a read made for a request never has to. No ping
        // before each use: a local file cannot drop like a network connection, and the ping would
        // double the round trips to SQLite's worker thread.
        let kept_pool = |connections: u32| {
            SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(connections)
                .min_connections(connections)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options.clone())
        };
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let (writer, readers, pool) = if in_memory {
            // Every connection to :memory: is a separate database: the writer's is the only one,
            // and the readers share it through a pool of one.
            let pool = kept_pool(1)
                .await
                .map_err(|source| ConnectError::connect(url, source))?;
            let mut connection = pool
                .acquire()
                .await
                .map_err(|source| ConnectError::connect(url, source))?;
            prepare(&mut connection, url).await?;
            drop(connection);
            (
                Writer::Pooled(pool.clone()),
                Readers::Pooled(pool.clone()),
                pool,
            )
        } else {
            let mut connection = options
                .connect()
                .await
                .map_err(|source| ConnectError::connect(url, source))?;
            prepare(&mut connection, url).await?;
            let mut readers = Vec::with_capacity(READERS);
            for _ in 0..READERS {
                readers.push(
                    options
                        .connect()
                        .await
                        .map_err(|source| ConnectError::connect(url, source))?,
                );
            }
            let pool = kept_pool(1)
                .await
                .map_err(|source| ConnectError::connect(url, source))?;
            (
                Writer::Own(Arc::new(tokio::sync::Mutex::new(connection))),
                Readers::own(readers),
                pool,
            )
        };
        let notifier = Arc::<Notifier>::default();
        let (commits, queue) = mpsc::unbounded_channel();
        let told = notifier.clone();
        tokio::spawn(Self::commit_in_groups(
            writer.clone(),
            queue,
            move |gateways, appointments| {
                for gateway_id in gateways {
                    told.notify(gateway_id);
                }
                told.statuses_changed(appointments.into());
            },
        ));
        let (takes, take_queue) = mpsc::unbounded_channel();
        tokio::spawn(take_in_groups(writer.clone(), take_queue));
        let (confirms, confirm_queue) = mpsc::unbounded_channel();
        tokio::spawn(confirm_in_groups(writer.clone(), confirm_queue));
        Ok(Self {
            readers,
            pool,
            writer,
            notifier,
            commits,
            takes,
            confirms,
            credentials: Arc::default(),
        })
    }

    /// A pool for callers that need a query the ports do not offer. On a file it has one
    /// connection: the store's own reads go through the connections it holds.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// SQLite allows one writer: take the write lock at BEGIN, so two writers queue (busy timeout)
    /// instead of deadlocking when both try to upgrade a read transaction.
    /// Writers queue for the one writer connection rather than collide in SQLite's busy handler.
    async fn begin_write_on(
        connection: &mut WriteConnection<Sqlite>,
    ) -> Result<sqlx::Transaction<'_, Sqlite>, StoreError> {
        connection
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(crate::db)
    }

    /// Writes an appointment change (state, audit event, message) inside `tx` in one call to
    /// SQLite's thread, only if the appointment is still at the expected version (see
    /// [`SqliteStore::change_statement`]). Made one call each, the statements cost a lone "Send to
    /// modality" two more hand-offs to that thread, each 0.05-0.1 ms after an idle pause on these
    /// machines (issue 11).
    async fn write_change(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        change: &AppointmentChange,
    ) -> Result<(), StoreError> {
        let updated: Vec<i64> = Self::change_statement("", change)
            .build_query_scalar()
            .fetch_all(&mut **tx)
            .await
            .map_err(crate::db)?;
        if updated.is_empty() {
            return Err(Self::change_refused(tx, change).await);
        }
        Ok(())
    }

    /// `first` (a statement and its `;`, or nothing), then an appointment change's writes as one
    /// batch: the UPDATE (returning the new version when it changed the appointment, at the
    /// expected version), then its event and its message, each made only when the statement
    /// before it changed a row (`changes() = 1`).
    fn change_statement<'a>(
        first: &'static str,
        change: &'a AppointmentChange,
    ) -> sqlx::QueryBuilder<'a, Sqlite> {
        let (appointment, event) = (&change.appointment, &change.event);
        let mut query = sqlx::QueryBuilder::<Sqlite>::new(first);
        query
            .push("UPDATE appointments SET state = ")
            .push_bind(appointment.state.code())
            .push(", version = ")
            .push_bind(appointment.version)
            .push(" WHERE id = ")
            .push_bind(appointment.id.as_uuid())
            .push(" AND version = ")
            .push_bind(change.expected_version)
            .push(
                " RETURNING version; INSERT INTO appointment_events \
                 (appointment_id, action, from_state, to_state, at, actor) SELECT ",
            );
        query
            .separated(", ")
            .push_bind(event.appointment_id.as_uuid())
            .push_bind(event.action.code())
            .push_bind(event.from.code())
            .push_bind(event.to.code())
            .push_bind(event.at)
            .push_bind(&event.by.0);
        query.push(" WHERE changes() = 1");
        if let Some(message) = &change.message {
            query.push(concat!(
                "; INSERT INTO messages (",
                message_columns!(),
                ") SELECT "
            ));
            Self::push_message_binds(query.separated(", "), message);
            query.push(" WHERE changes() = 1");
        }
        query
    }

    /// Takes the write lock and writes `group` (see `lock_then_write_in_turn`). A lone appointment
    /// change ("Send to modality" on a quiet instance) takes the lock and makes its writes in one
    /// call to SQLite's thread, then commits only if its caller still waits, else rolls back: two
    /// hand-offs to that thread instead of three (`BEGIN IMMEDIATE`, the writes, `COMMIT`), with
    /// the lock still taken before anything is kept. A caller that gave up while another process
    /// held the lock has nothing written (`tests/limits.rs` in `screening-web`).
    async fn lock_then_write(
        connection: &mut WriteConnection<Sqlite>,
        group: &mut Vec<QueuedWrite>,
    ) -> Option<Written> {
        let [(GroupedWrite::Change(change), _)] = group.as_slice() else {
            return Self::lock_then_write_in_turn(connection, group).await;
        };
        let written: Result<Vec<i64>, sqlx::Error> =
            Self::change_statement("BEGIN IMMEDIATE; ", change)
                .build_query_scalar()
                .fetch_all(&mut **connection)
                .await;
        let awaited = crate::sql::still_awaited(group);
        let (writes, replies) = match awaited {
            Some(awaited) => awaited,
            None => {
                Self::roll_back(connection).await;
                return None;
            }
        };
        let [GroupedWrite::Change(change)] = writes.as_slice() else {
            unreachable!("a lone change stays alone");
        };
        let outcome = match written {
            Ok(updated) if !updated.is_empty() => {
                match sqlx::query("COMMIT").execute(&mut **connection).await {
                    Ok(_) => Ok(()),
                    Err(error) => {
                        // A COMMIT that failed (disk full, say) may leave the transaction open.
                        Self::roll_back(connection).await;
                        Err(crate::db(error))
                    }
                }
            }
            Ok(_) => {
                // Refused, so nothing was written: why, read under the lock, then let it go.
                let refused = Self::change_refused(connection, change).await;
                Self::roll_back(connection).await;
                Err(refused)
            }
            Err(error) => {
                Self::roll_back(connection).await;
                Err(crate::db(error))
            }
        };
        Some((outcome, writes, replies))
    }

    /// Ends the transaction begun by [`SqliteStore::lock_then_write`]'s batch, keeping nothing.
    /// A batch that failed at `BEGIN IMMEDIATE` (the lock not had in time) began none, nor is one
    /// left after errors on which SQLite rolls back by itself: its "no transaction is active"
    /// then says there is nothing to undo.
    async fn roll_back(connection: &mut WriteConnection<Sqlite>) {
        if let Err(error) = sqlx::query("ROLLBACK").execute(&mut **connection).await {
            tracing::debug!(%error, "rollback after a lone appointment change");
        }
    }

    /// Claims a gateway's pending messages through the taker, which may group the statement with
    /// other gateways' (see [`take_in_groups`]).
    async fn claim(&self, take: Take) -> Result<Vec<MessageRow>, StoreError> {
        // Alone (the writer free, so nobody queued for it): its own statement at once, without a
        // trip through the taker's task, as a confirmation alone does.
        if let Some(mut connection) = self.writer.try_acquire() {
            return Self::claim_on(&mut connection, &take).await;
        }
        let stopped =
            || StoreError::Backend("the SQLite taker has stopped (its Tokio runtime ended)".into());
        let (reply, claimed) = oneshot::channel();
        self.takes.send((take, reply)).map_err(|_| stopped())?;
        claimed.await.map_err(|_| stopped())?
    }

    /// Claims each of `takes`' messages (one take per gateway) in one statement: what
    /// `claim_for_one` does for each, with each take's own times and limit. Each gateway's oldest
    /// pending messages are read from the pending index up to the largest limit, no further, so a
    /// gateway with a backlog of thousands costs a group no more than one with a few.
    async fn claim_for_many(
        writer: &Writer<Sqlite>,
        takes: &[Take],
    ) -> Result<Vec<MessageRow>, StoreError> {
        Self::claim_for_many_statement(takes)
            .build_query_as()
            .fetch_all(&mut *writer.acquire().await?)
            .await
            .map_err(crate::db)
    }

    /// The statement of [`SqliteStore::claim_for_many`].
    fn claim_for_many_statement(takes: &[Take]) -> sqlx::QueryBuilder<'static, Sqlite> {
        let most = takes.iter().map(|take| take.limit).max().unwrap_or(0);
        let mut query = sqlx::QueryBuilder::<Sqlite>::new(
            "WITH takes (take_gateway, take_at, take_until, take_limit) AS (",
        );
        query.push_values(takes, |mut row, take| {
            row.push_bind(take.gateway_id.as_uuid())
                .push_bind(take.now)
                .push_bind(take.lease_until)
                .push_bind(i64::from(take.limit));
        });
        query.push(concat!(
            "), chosen (chosen_id, chosen_at, chosen_until) AS (",
            "SELECT id, take_at, take_until FROM (",
            "SELECT m.id, t.take_at, t.take_until, t.take_limit, ",
            "ROW_NUMBER() OVER (PARTITION BY m.gateway_id ORDER BY m.created_at, m.id) AS place ",
            // SQLite's LIMIT cannot name the outer row's limit: the largest, then each its own.
            "FROM takes t JOIN messages m ON m.id IN (SELECT id FROM messages ",
            "WHERE gateway_id = t.take_gateway AND ",
            pending!(),
            " ORDER BY created_at, id LIMIT "
        ));
        query.push_bind(i64::from(most));
        query.push(concat!(
            ")) WHERE place <= take_limit) ",
            "UPDATE messages SET delivered_at = chosen_at, lease_expires_at = chosen_until, ",
            "attempts = attempts + 1 FROM chosen WHERE id = chosen_id RETURNING ",
            message_columns!()
        ));
        query
    }

    /// Confirms a gateway's open messages through the confirmer, which may group the statement
    /// with other gateways' (see [`confirm_in_groups`]).
    async fn confirm_open(&self, confirm: Confirm) -> Result<Vec<ConfirmedRow>, StoreError> {
        // Alone (the writer free, so nobody queued for it): its own statement at once, without a
        // trip through the confirmer's task, which costs a confirmation one at a time a tenth.
        if let Some(mut connection) = self.writer.try_acquire() {
            return Self::confirm_statement(confirm.gateway_id, &confirm.message_ids, confirm.now)
                .build_query_as()
                .fetch_all(&mut *connection)
                .await
                .map_err(crate::db);
        }
        let stopped = || {
            StoreError::Backend("the SQLite confirmer has stopped (its Tokio runtime ended)".into())
        };
        let (reply, confirmed) = oneshot::channel();
        self.confirms
            .send((confirm, reply))
            .map_err(|_| stopped())?;
        confirmed.await.map_err(|_| stopped())?
    }

    /// Confirms the open messages of each of `confirms` (one message named once) in one statement.
    async fn confirm_for_many(
        writer: &Writer<Sqlite>,
        confirms: &[&Confirm],
    ) -> Result<Vec<ConfirmedRow>, StoreError> {
        Self::confirm_for_many_statement(confirms)
            .build_query_as()
            .fetch_all(&mut *writer.acquire().await?)
            .await
            .map_err(crate::db)
    }

    /// The statement of [`SqliteStore::confirm_for_many`]: what `confirm_statement` does for each
    /// of `confirms`, with each one's gateway and time. Each message is found by its id (the
    /// primary key), and its gateway only checked: the `+` keeps SQLite's planner from reading
    /// every message to look each up in the list, which it chose for a list of 500 (a test reads
    /// the plan).
    fn confirm_for_many_statement(confirms: &[&Confirm]) -> sqlx::QueryBuilder<'static, Sqlite> {
        let mut query = sqlx::QueryBuilder::<Sqlite>::new(
            "WITH asked (asked_id, asked_gateway, asked_at) AS (",
        );
        let asked = confirms.iter().flat_map(|confirm| {
            confirm
                .message_ids
                .iter()
                .map(move |id| (*id, confirm.gateway_id, confirm.now))
        });
        query.push_values(asked, |mut row, (id, gateway_id, now)| {
            row.push_bind(id.as_uuid())
                .push_bind(gateway_id.as_uuid())
                .push_bind(now);
        });
        query.push(concat!(
            ") UPDATE messages SET confirmed_at = asked_at, ",
            "delivered_at = COALESCE(delivered_at, asked_at), lease_expires_at = NULL FROM asked ",
            "WHERE id = +asked_id AND (gateway_id = asked_gateway) IS TRUE ",
            "AND confirmed_at IS NULL AND failed_at IS NULL ",
            "RETURNING id, appointment_id, created_at"
        ));
        query
    }

    fn wake(&self, gateway_id: GatewayId) {
        self.notifier.notify(gateway_id);
    }

    fn statuses_changed(&self, appointments: Vec<AppointmentId>) {
        self.notifier.statuses_changed(appointments.into());
    }

    fn everything_changed(&self) {
        self.notifier.everything_changed();
    }

    /// Gives the pages that pruning freed back to the file system: the free list is truncated
    /// (incremental vacuum) and the write-ahead log checkpointed into the file and emptied.
    async fn reclaim_space(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA incremental_vacuum")
            .execute(&mut *self.writer.acquire().await?)
            .await
            .map_err(crate::db)?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *self.writer.acquire().await?)
            .await
            .map_err(crate::db)?;
        Ok(())
    }
}

// A single process owns the file's writers, so claiming needs no row locks.
impl_sql_store!(store: SqliteStore, db: Sqlite, skip_locked: "", lock_row: "");
impl_web_store!(
    store: SqliteStore,
    migrator: MIGRATOR,
    appointment_low_hex: "substr(hex(m.appointment_id), 19)"
);
impl_alert_store!(store: SqliteStore);
impl_echo_store!(store: SqliteStore);
impl_retention_store!(store: SqliteStore);

#[cfg(test)]
mod tests {
    use super::*;

    /// A store on a new file, and the folder that holds it (removed when dropped).
    async fn new_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        (dir, SqliteStore::connect(&url).await.unwrap())
    }

    /// What SQLite's planner will do with `sql`, one step a line.
    async fn plan(store: &SqliteStore, sql: &str) -> String {
        let steps: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                .fetch_all(&mut *store.writer.acquire().await.unwrap())
                .await
                .unwrap();
        steps
            .into_iter()
            .map(|(.., detail)| detail)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn a_confirmation_finds_its_messages_by_id_not_by_reading_the_gateways_history() {
        let (_dir, store) = new_store().await;
        let gateway = GatewayId::from_uuid(uuid::Uuid::nil());
        // Without statistics SQLite weighs an IN list of three or more against the gateway's index.
        for count in [1, 3, 50, crate::CONFIRM_CHUNK] {
            let ids: Vec<MessageId> = (0..count).map(|_| MessageId::generate()).collect();
            let confirm = SqliteStore::confirm_statement(gateway, &ids, Utc::now());
            let plan = plan(&store, confirm.sql()).await;
            assert!(
                plan.contains("sqlite_autoindex_messages_1 (id=?)")
                    && !plan.contains("messages_by_gateway"),
                "{count} ids: {plan}"
            );
        }
    }

    #[tokio::test]
    async fn confirmations_grouped_together_find_each_message_by_id() {
        let (_dir, store) = new_store().await;
        for (gateways, each) in [(2, 1), (3, 5), (50, 10)] {
            let confirms: Vec<Confirm> = (0..gateways)
                .map(|n| Confirm {
                    gateway_id: GatewayId::from_uuid(uuid::Uuid::from_u128(n)),
                    message_ids: (0..each).map(|_| MessageId::generate()).collect(),
                    now: Utc::now(),
                })
                .collect();
            let confirms: Vec<&Confirm> = confirms.iter().collect();
            let statement = SqliteStore::confirm_for_many_statement(&confirms);
            let plan = plan(&store, statement.sql()).await;
            assert!(
                plan.contains("SEARCH messages USING INDEX sqlite_autoindex_messages_1 (id=?)")
                    && !plan.contains("SCAN messages")
                    && !plan.contains("messages_by_gateway"),
                "{gateways} gateways, {each} ids each: {plan}"
            );
        }
    }

    #[tokio::test]
    async fn an_appointments_newest_message_is_read_from_the_index_without_sorting() {
        let (_dir, store) = new_store().await;
        // As "Send to modality" asks it, and as each row of the clinic page does.
        for sql in [
            crate::sql::LATEST_MESSAGE_ID.to_string(),
            format!(
                "SELECT ({}) FROM appointments a",
                crate::web::latest_message_sql()
            ),
        ] {
            let plan = plan(&store, &sql).await;
            assert!(
                plan.contains("messages_by_appointment") && !plan.contains("TEMP B-TREE"),
                "{sql}: {plan}"
            );
        }
    }

    #[tokio::test]
    async fn send_to_modality_reads_its_context_from_indexes_only() {
        let (_dir, store) = new_store().await;
        let plan = plan(&store, &crate::rows::SEND_CONTEXT_SELECT).await;
        // Each table found by an index (no SCAN: a large instance has ten thousand gateways), the
        // newest message the index's last entry, and nothing sorted.
        assert!(
            plan.lines()
                .all(|step| step.starts_with("SEARCH") || step.starts_with("CORRELATED"))
                && plan.contains("gateways_by_setting")
                && plan.contains("messages_by_appointment"),
            "{plan}"
        );
    }

    #[tokio::test]
    async fn takes_grouped_together_read_each_gateways_pending_messages_only_up_to_the_limit() {
        let (_dir, store) = new_store().await;
        let now = Utc::now();
        let takes: Vec<Take> = (1..=3)
            .map(|n| Take {
                gateway_id: GatewayId::from_uuid(uuid::Uuid::from_u128(n)),
                now,
                lease_until: now,
                limit: 10,
            })
            .collect();
        let plan = plan(&store, SqliteStore::claim_for_many_statement(&takes).sql()).await;
        // Per gateway, a subquery on the pending index that stops at the limit; not a window over
        // every pending message of every gateway.
        assert!(
            plan.contains("CORRELATED LIST SUBQUERY")
                && plan.contains("SEARCH messages USING INDEX messages_pending (gateway_id=?)")
                && !plan.contains("SEARCH m USING INDEX messages_pending"),
            "{plan}"
        );
    }

    #[tokio::test]
    async fn writes_go_through_the_one_writer_connection() {
        let (_dir, store) = new_store().await;
        let mut connection = store.writer.acquire().await.unwrap();
        let transaction = SqliteStore::begin_write_on(&mut connection).await.unwrap();
        assert!(
            store.writer.try_acquire().is_none(),
            "the writer holds the transaction: a second writer must wait"
        );
        drop(transaction);
        drop(connection);
        // Free at once: a sqlx pool gives a connection back only after pinging it from a task of
        // its own, and every write waited for that (issue 11).
        let mut second = store
            .writer
            .try_acquire()
            .expect("a writer that is done frees the connection at once");
        SqliteStore::begin_write_on(&mut second).await.unwrap();
    }

    #[tokio::test]
    async fn a_transaction_abandoned_mid_way_leaves_nothing_behind_for_the_next_writer() {
        let (_dir, store) = new_store().await;
        let now = crate::now_utc();
        let demo = store.seed_demo(now.date_naive(), now).await.unwrap();
        let renamed = |name: &'static str| {
            sqlx::query("UPDATE gateways SET name = $1 WHERE id = $2")
                .bind(name)
                .bind(demo.gateway.id.as_uuid())
        };
        {
            // As when a request's future is dropped (its client went away) inside a write.
            let mut connection = store.writer.acquire().await.unwrap();
            let mut transaction = SqliteStore::begin_write_on(&mut connection).await.unwrap();
            renamed("abandoned")
                .execute(&mut *transaction)
                .await
                .unwrap();
        }
        let mut connection = store.writer.acquire().await.unwrap();
        let mut transaction = SqliteStore::begin_write_on(&mut connection)
            .await
            .expect("the abandoned transaction was rolled back, so a new one begins");
        renamed("kept").execute(&mut *transaction).await.unwrap();
        transaction.commit().await.unwrap();
        drop(connection);
        assert_eq!(store.gateway(demo.gateway.id).await.unwrap().name, "kept");
    }
}
