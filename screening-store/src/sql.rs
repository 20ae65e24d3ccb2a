//! The SQL both adapters share, and the port implementations built on it.
//!
//! SQLite and PostgreSQL accept the same statements here (`$n` placeholders, `RETURNING`,
//! `ON CONFLICT`), so [`impl_sql_store!`] writes them once and each adapter supplies only what truly
//! differs: how a write transaction begins, the row-locking suffixes PostgreSQL needs for concurrent
//! consumers, and how waiters are woken.

/// The columns of `messages`, in the order [`crate::rows::MessageRow`] reads them.
macro_rules! message_columns {
    () => {
        "id, gateway_id, participant_id, appointment_id, message_type, payload, destination, \
         created_at, delivered_at, lease_expires_at, confirmed_at, failed_at, attempts, last_error, \
         resend_of"
    };
}

/// The predicate of a message no gateway holds and nobody has finished.
macro_rules! pending {
    () => {
        "delivered_at IS NULL AND confirmed_at IS NULL AND failed_at IS NULL"
    };
}

/// A write that may share its transaction, and so its commit, with other callers' (group commit).
#[derive(Debug)]
pub(crate) enum GroupedWrite {
    /// An appointment's transition, its audit event and perhaps its message.
    Change(screening_core::ports::AppointmentChange),
    /// A message on its own.
    Message(screening_core::message::Message),
}

impl GroupedWrite {
    /// The message the write adds, if any: once committed, its gateway and watchers are told.
    pub(crate) fn message(&self) -> Option<&screening_core::message::Message> {
        match self {
            GroupedWrite::Change(change) => change.message.as_ref(),
            GroupedWrite::Message(message) => Some(message),
        }
    }

    /// The appointment the write changes or adds a message for: once committed, its watchers
    /// are told.
    pub(crate) fn appointment_id(&self) -> screening_core::ids::AppointmentId {
        match self {
            GroupedWrite::Change(change) => change.appointment.id,
            GroupedWrite::Message(message) => message.appointment_id,
        }
    }
}

/// Where a queued write's outcome goes.
pub(crate) type WriteReply =
    tokio::sync::oneshot::Sender<Result<(), screening_core::ports::StoreError>>;

/// The id of appointment `$1`'s newest message: the last entry of `messages_by_appointment`.
pub(crate) const LATEST_MESSAGE_ID: &str =
    "SELECT id FROM messages WHERE appointment_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1";

/// A write waiting for the committer, and where its outcome goes.
pub(crate) type QueuedWrite = (GroupedWrite, WriteReply);

/// What the committer made of a group: the outcome of its writes together, the writes made and
/// where each outcome goes.
pub(crate) type Written = (
    Result<(), screening_core::ports::StoreError>,
    Vec<GroupedWrite>,
    Vec<WriteReply>,
);

/// The connection writes go through.
#[derive(Debug)]
pub(crate) enum Writer<DB: sqlx::Database> {
    /// One connection, held here rather than in a sqlx pool: a pool pings each connection given
    /// back to it (on SQLite a round trip to the connection's worker thread), and on the one
    /// writer every write waited for the last one's ping (issue 11). Callers queue for it. It is
    /// never replaced: a local file cannot drop like a network connection, and a statement that
    /// fails (disk full, a lock held too long) leaves the connection usable for the next.
    Own(std::sync::Arc<tokio::sync::Mutex<DB::Connection>>),
    /// Connections from a pool: PostgreSQL's many writers, and SQLite in memory, whose readers
    /// must share the writer's connection (each connection to `:memory:` is a database of its own).
    Pooled(sqlx::Pool<DB>),
}

impl<DB: sqlx::Database> Clone for Writer<DB> {
    fn clone(&self) -> Self {
        match self {
            Writer::Own(connection) => Writer::Own(connection.clone()),
            Writer::Pooled(pool) => Writer::Pooled(pool.clone()),
        }
    }
}

impl<DB: sqlx::Database> Writer<DB> {
    /// The write connection, once no other writer holds it (a pooled one, once one is free).
    pub(crate) async fn acquire(
        &self,
    ) -> Result<WriteConnection<DB>, screening_core::ports::StoreError> {
        Ok(match self {
            Writer::Own(connection) => WriteConnection::Own(connection.clone().lock_owned().await),
            Writer::Pooled(pool) => {
                WriteConnection::Pooled(pool.acquire().await.map_err(crate::db)?)
            }
        })
    }

    /// The write connection if no other writer holds it now (nor waits for it).
    pub(crate) fn try_acquire(&self) -> Option<WriteConnection<DB>> {
        match self {
            Writer::Own(connection) => connection
                .clone()
                .try_lock_owned()
                .ok()
                .map(WriteConnection::Own),
            Writer::Pooled(pool) => pool.try_acquire().map(WriteConnection::Pooled),
        }
    }
}

/// A write connection held by one writer; given back when dropped. A transaction left open on it
/// (its future dropped mid-way) is rolled back before the connection's next statement: sqlx queues
/// the rollback on the connection itself.
pub(crate) enum WriteConnection<DB: sqlx::Database> {
    Own(tokio::sync::OwnedMutexGuard<DB::Connection>),
    Pooled(sqlx::pool::PoolConnection<DB>),
}

impl<DB: sqlx::Database> std::ops::Deref for WriteConnection<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match self {
            WriteConnection::Own(connection) => connection,
            WriteConnection::Pooled(connection) => connection,
        }
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteConnection<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            WriteConnection::Own(connection) => connection,
            WriteConnection::Pooled(connection) => connection,
        }
    }
}

/// The connections reads go through.
pub(crate) enum Readers<DB: sqlx::Database> {
    /// Connections held here rather than in a sqlx pool, for the reason the writer's is: a pool
    /// pings each connection given back to it, on SQLite a second round trip to the connection's
    /// worker thread after every read (a tenth of the CPU of a fan-out to a thousand gateways,
    /// which reads three times a delivery; issue 11). A read takes the idle connection used
    /// last: its worker thread and the pages it touched are the warmest (sqlx hands out the one
    /// idle longest).
    Own(std::sync::Arc<OwnReaders<DB>>),
    /// Connections from a pool: PostgreSQL's, which can drop and be replaced, and SQLite in
    /// memory's, shared with its writer.
    Pooled(sqlx::Pool<DB>),
}

impl<DB: sqlx::Database> Clone for Readers<DB> {
    fn clone(&self) -> Self {
        match self {
            Readers::Own(readers) => Readers::Own(readers.clone()),
            Readers::Pooled(pool) => Readers::Pooled(pool.clone()),
        }
    }
}

/// Read connections kept for good: a local file cannot drop like a network connection, and a
/// statement that fails leaves its connection usable for the next.
pub(crate) struct OwnReaders<DB: sqlx::Database> {
    idle: std::sync::Mutex<Vec<DB::Connection>>,
    /// One permit per idle connection.
    free: tokio::sync::Semaphore,
    count: usize,
}

impl<DB: sqlx::Database> Readers<DB> {
    /// Reads through `connections`, kept here.
    pub(crate) fn own(connections: Vec<DB::Connection>) -> Self {
        Readers::Own(std::sync::Arc::new(OwnReaders {
            free: tokio::sync::Semaphore::new(connections.len()),
            count: connections.len(),
            idle: std::sync::Mutex::new(connections),
        }))
    }

    /// A connection to read on, once one is free; given back when dropped.
    pub(crate) async fn acquire(
        &self,
    ) -> Result<ReadConnection<DB>, screening_core::ports::StoreError> {
        match self {
            Readers::Own(readers) => {
                readers
                    .free
                    .acquire()
                    .await
                    .expect("the readers' semaphore is never closed")
                    .forget();
                let connection = readers
                    .idle
                    .lock()
                    .expect("not poisoned")
                    .pop()
                    .expect("a permit stands for an idle connection");
                Ok(ReadConnection::Own(Some(connection), readers.clone()))
            }
            // Boxed: sqlx's acquire is a large future, and inline it would enlarge every future
            // that reads, a waiting long poll's included, by a kilobyte.
            Readers::Pooled(pool) => Ok(ReadConnection::Pooled(
                Box::pin(pool.acquire()).await.map_err(crate::db)?,
            )),
        }
    }

    /// How many read connections are open, and how many of them idle.
    pub(crate) fn connections(&self) -> (u32, usize) {
        match self {
            Readers::Own(readers) => (
                readers.count as u32,
                readers.idle.lock().expect("not poisoned").len(),
            ),
            Readers::Pooled(pool) => (pool.size(), pool.num_idle()),
        }
    }
}

/// A read connection held by one reader; given back when dropped. A statement its future dropped
/// mid-way is ended by sqlx before the connection's next one.
pub(crate) enum ReadConnection<DB: sqlx::Database> {
    Own(Option<DB::Connection>, std::sync::Arc<OwnReaders<DB>>),
    Pooled(sqlx::pool::PoolConnection<DB>),
}

impl<DB: sqlx::Database> Drop for ReadConnection<DB> {
    fn drop(&mut self) {
        if let ReadConnection::Own(connection, home) = self {
            if let Some(connection) = connection.take() {
                home.idle.lock().expect("not poisoned").push(connection);
                home.free.add_permits(1);
            }
        }
    }
}

impl<DB: sqlx::Database> std::ops::Deref for ReadConnection<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match self {
            ReadConnection::Own(connection, _) => connection.as_ref().expect("held until dropped"),
            ReadConnection::Pooled(connection) => connection,
        }
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for ReadConnection<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            ReadConnection::Own(connection, _) => connection.as_mut().expect("held until dropped"),
            ReadConnection::Pooled(connection) => connection,
        }
    }
}

/// The writes of `group` whose callers still wait, each appointment's in the order they came and
/// the appointments in the order of their ids, with where each outcome goes; `None` if nobody waits.
pub(crate) fn still_awaited(
    group: &mut Vec<QueuedWrite>,
) -> Option<(Vec<GroupedWrite>, Vec<WriteReply>)> {
    group.retain(|(_, reply)| !reply.is_closed());
    if group.is_empty() {
        return None;
    }
    // Stable: one appointment's writes keep the order they came in.
    group.sort_by_key(|(write, _)| write.appointment_id());
    Some(group.drain(..).unzip())
}

/// A confirmed message's id, appointment and creation time, as a confirming statement returns it.
pub(crate) type ConfirmedRow = (uuid::Uuid, uuid::Uuid, chrono::DateTime<chrono::Utc>);

/// One caller's confirmation: those of `message_ids` (at most [`crate::CONFIRM_CHUNK`]) of
/// `gateway_id` that are open, confirmed at `now`.
#[derive(Debug, Clone)]
pub(crate) struct Confirm {
    pub(crate) gateway_id: screening_core::ids::GatewayId,
    pub(crate) message_ids: Vec<screening_core::ids::MessageId>,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
}

/// One caller's take: up to `limit` of a gateway's pending messages, oldest first, leased from
/// `now` until `lease_until`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Take {
    pub(crate) gateway_id: screening_core::ids::GatewayId,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
    pub(crate) lease_until: chrono::DateTime<chrono::Utc>,
    pub(crate) limit: u32,
}

/// Implements the core's ports and [`crate::ScreeningStore`] for an adapter.
///
/// The adapter type must have a `pool` field (reads), a `writer` field (a `Writer`: the connection
/// that writes), `begin_write_on(&mut connection)` (a transaction on it that will write),
/// a `commits` field (the sender to its task running `commit_in_groups`), `claim(Take)` (claims a
/// gateway's pending messages, alone or with other gateways'), `wake(GatewayId)` (called after a commit
/// that made a message pending), `statuses_changed(Vec<AppointmentId>)` (called after a commit
/// that changed messages' statuses) and `everything_changed()` (after a commit that changed many
/// appointments), plus a `notifier` field.
/// `skip_locked` is appended to SELECTs that pick rows to claim; `lock_row` to SELECTs of one row
/// that will be updated.
macro_rules! impl_sql_store {
    (store: $Store:ty, db: $Db:ty, skip_locked: $skip_locked:literal, lock_row: $lock_row:literal) => {
        impl $Store {
            async fn insert_message<'e, E: sqlx::Executor<'e, Database = $Db>>(
                executor: E,
                message: &Message,
            ) -> Result<(), StoreError> {
                Self::insert_messages(executor, std::slice::from_ref(&message)).await
            }

            /// Inserts messages in one statement (at most [`crate::INSERT_CHUNK`]).
            async fn insert_messages<'e, E: sqlx::Executor<'e, Database = $Db>>(
                executor: E,
                messages: &[&Message],
            ) -> Result<(), StoreError> {
                let mut query = sqlx::QueryBuilder::<$Db>::new(concat!(
                    "INSERT INTO messages (",
                    message_columns!(),
                    ") "
                ));
                query.push_values(messages, |row, message| Self::push_message_binds(row, message));
                query.build().execute(executor).await.map_err(crate::db)?;
                Ok(())
            }

            /// Binds `message`'s values in the order of [`message_columns!`]: the one place that
            /// order is written.
            fn push_message_binds<'args>(
                mut row: sqlx::query_builder::Separated<'_, 'args, $Db, &'static str>,
                message: &'args Message,
            ) {
                row.push_bind(message.id.as_uuid())
                    .push_bind(message.gateway_id.as_uuid())
                    .push_bind(message.participant_id.as_uuid())
                    .push_bind(message.appointment_id.as_uuid())
                    .push_bind(message.message_type.as_str())
                    .push_bind(&message.payload)
                    .push_bind(message.destination.as_str())
                    .push_bind(message.created_at)
                    .push_bind(message.delivered_at)
                    .push_bind(message.lease_expires_at)
                    .push_bind(message.confirmed_at)
                    .push_bind(message.failed_at)
                    .push_bind(i64::from(message.attempts))
                    .push_bind(message.last_error.as_deref())
                    .push_bind(message.resend_of.map(|id| id.as_uuid()));
            }

            /// Writes the lifecycle fields a core lifecycle function changed.
            async fn update_lifecycle(
                tx: &mut sqlx::Transaction<'_, $Db>,
                message: &Message,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE messages SET delivered_at = $1, lease_expires_at = $2, confirmed_at = $3, \
                     failed_at = $4, attempts = $5, last_error = $6 WHERE id = $7",
                )
                .bind(message.delivered_at)
                .bind(message.lease_expires_at)
                .bind(message.confirmed_at)
                .bind(message.failed_at)
                .bind(i64::from(message.attempts))
                .bind(message.last_error.as_deref())
                .bind(message.id.as_uuid())
                .execute(&mut **tx)
                .await
                .map_err(crate::db)?;
                Ok(())
            }

            /// Loads a message for update and checks it belongs to the gateway.
            async fn message_of_gateway(
                tx: &mut sqlx::Transaction<'_, $Db>,
                gateway_id: GatewayId,
                message_id: MessageId,
            ) -> Result<Message, StoreError> {
                let row: Option<MessageRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages WHERE id = $1",
                    $lock_row
                ))
                .bind(message_id.as_uuid())
                .fetch_optional(&mut **tx)
                .await
                .map_err(crate::db)?;
                let message = Message::try_from(row.ok_or_else(|| StoreError::NotFound {
                    what: "message",
                    id: message_id.to_string(),
                })?)?;
                if message.gateway_id != gateway_id {
                    return Err(StoreError::WrongGateway { message_id });
                }
                Ok(message)
            }

            /// Applies a core lifecycle step to one of the gateway's messages, under a row lock, and
            /// writes the result.
            async fn change_message(
                &self,
                gateway_id: GatewayId,
                message_id: MessageId,
                step: impl FnOnce(&Message) -> Result<Message, LifecycleError> + Send,
            ) -> Result<Message, StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                let message = Self::message_of_gateway(&mut tx, gateway_id, message_id).await?;
                let changed = step(&message)?;
                Self::update_lifecycle(&mut tx, &changed).await?;
                tx.commit().await.map_err(crate::db)?;
                self.statuses_changed(vec![changed.appointment_id]);
                Ok(changed)
            }

            /// Confirms a message the one-statement path left alone, with the core's rules, to say
            /// why: unknown, another gateway's, confirmed before (idempotent) or failed.
            async fn confirm_by_the_rules(
                &self,
                gateway_id: GatewayId,
                message_id: MessageId,
                now: DateTime<Utc>,
                changed: &mut Vec<AppointmentId>,
            ) -> Result<ConfirmOutcome, StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                let message = Self::message_of_gateway(&mut tx, gateway_id, message_id).await?;
                let (confirmed, outcome) = message.confirm(now)?;
                if outcome == Confirmed::Now {
                    Self::update_lifecycle(&mut tx, &confirmed).await?;
                }
                tx.commit().await.map_err(crate::db)?;
                if outcome == Confirmed::Now {
                    changed.push(confirmed.appointment_id);
                }
                Ok(ConfirmOutcome {
                    confirmed: outcome,
                    created_at: message.created_at,
                })
            }

            async fn pending_exists(&self, gateway_id: GatewayId) -> Result<bool, StoreError> {
                // An echo waiting to be taken counts: it travels the same path.
                sqlx::query_scalar(concat!(
                    "SELECT EXISTS (SELECT 1 FROM messages WHERE gateway_id = $1 AND ",
                    pending!(),
                    ") OR EXISTS (SELECT 1 FROM gateways WHERE id = $1 AND echo_id IS NOT NULL \
                     AND echo_lease_expires_at IS NULL)"
                ))
                .bind(gateway_id.as_uuid())
                .fetch_one(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)
            }

            async fn gateways_where(
                &self,
                predicate: &'static str,
                id: uuid::Uuid,
            ) -> Result<Vec<Gateway>, StoreError> {
                let gateways_sql = format!(
                    "SELECT id, name, setting_id, transport, relay_namespace, relay_hybrid_connection, \
                     relay_key_name, relay_key_ref FROM gateways g WHERE {predicate} \
                     ORDER BY created_at, id"
                );
                let routes_sql = format!(
                    "SELECT r.gateway_id, r.message_type, r.destination FROM gateway_routes r \
                     JOIN gateways g ON g.id = r.gateway_id WHERE {predicate} ORDER BY r.message_type"
                );
                // Side by side, on two readers: "Send to modality" waits for these.
                let (rows, routes) = tokio::try_join!(
                    async {
                        let mut reader = self.readers.acquire().await?;
                        sqlx::query_as::<_, GatewayRow>(&gateways_sql)
                            .bind(id)
                            .fetch_all(&mut *reader)
                            .await
                            .map_err(crate::db)
                    },
                    async {
                        let mut reader = self.readers.acquire().await?;
                        sqlx::query_as::<_, RouteRow>(&routes_sql)
                            .bind(id)
                            .fetch_all(&mut *reader)
                            .await
                            .map_err(crate::db)
                    },
                )?;
                crate::rows::gateways(rows, routes)
            }

            async fn upsert_gateway(
                tx: &mut sqlx::Transaction<'_, $Db>,
                gateway: &Gateway,
                now: DateTime<Utc>,
                replace: bool,
            ) -> Result<(), StoreError> {
                let relay = RelayColumns::of(&gateway.transport);
                let conflict = if replace {
                    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, setting_id = excluded.setting_id, \
                     transport = excluded.transport, relay_namespace = excluded.relay_namespace, \
                     relay_hybrid_connection = excluded.relay_hybrid_connection, \
                     relay_key_name = excluded.relay_key_name, relay_key_ref = excluded.relay_key_ref"
                } else {
                    "ON CONFLICT DO NOTHING"
                };
                sqlx::query(&format!(
                    "INSERT INTO gateways (id, name, setting_id, transport, relay_namespace, \
                     relay_hybrid_connection, relay_key_name, relay_key_ref, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) {conflict}"
                ))
                .bind(gateway.id.as_uuid())
                .bind(&gateway.name)
                .bind(gateway.setting_id.as_uuid())
                .bind(gateway.transport.kind())
                .bind(relay.namespace)
                .bind(relay.hybrid_connection)
                .bind(relay.key_name)
                .bind(relay.key_ref)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(crate::db)?;
                if replace {
                    sqlx::query("DELETE FROM gateway_routes WHERE gateway_id = $1")
                        .bind(gateway.id.as_uuid())
                        .execute(&mut **tx)
                        .await
                        .map_err(crate::db)?;
                }
                for route in &gateway.routes {
                    sqlx::query(
                        "INSERT INTO gateway_routes (gateway_id, message_type, destination) \
                         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(gateway.id.as_uuid())
                    .bind(route.message_type.as_str())
                    .bind(route.destination.as_str())
                    .execute(&mut **tx)
                    .await
                    .map_err(crate::db)?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl AppointmentStore for $Store {
            async fn send_context(&self, appointment_id: AppointmentId) -> Result<SendContext, StoreError> {
                // One statement on one reader: every "Send to modality" waits for this read before
                // it commits, and four reads side by side cost a 2-core machine 0.6 ms (issue 11).
                let rows: Vec<crate::rows::SendContextRow> =
                    sqlx::query_as(crate::rows::SEND_CONTEXT_SELECT.as_str())
                        .bind(appointment_id.as_uuid())
                        .fetch_all(&mut *self.readers.acquire().await?)
                        .await
                        .map_err(crate::db)?;
                let (parts, latest, gateways) =
                    crate::rows::send_context(rows)?.ok_or_else(|| StoreError::NotFound {
                        what: "appointment",
                        id: appointment_id.to_string(),
                    })?;
                Ok(SendContext {
                    appointment: parts.appointment,
                    participant: parts.participant,
                    slot: parts.slot,
                    clinic: parts.clinic,
                    setting: parts.setting,
                    provider: parts.provider,
                    gateways,
                    latest_message_id: latest.map(MessageId::from_uuid),
                })
            }

            async fn commit_change(&self, change: &AppointmentChange) -> Result<(), StoreError> {
                self.commit_write(crate::sql::GroupedWrite::Change(change.clone())).await
            }
        }

        impl $Store {
            /// Claims `take`'s messages in one statement, atomically; it does what
            /// `Message::deliver` does to each row (a test holds the two to the same result).
            async fn claim_for_one(
                writer: &crate::sql::Writer<$Db>,
                take: &crate::sql::Take,
            ) -> Result<Vec<MessageRow>, StoreError> {
                Self::claim_on(&mut writer.acquire().await?, take).await
            }

            /// [`Self::claim_for_one`] on a write connection already held.
            async fn claim_on(
                connection: &mut crate::sql::WriteConnection<$Db>,
                take: &crate::sql::Take,
            ) -> Result<Vec<MessageRow>, StoreError> {
                sqlx::query_as(concat!(
                    "UPDATE messages SET delivered_at = $1, lease_expires_at = $2, attempts = attempts + 1 \
                     WHERE id IN (SELECT id FROM messages WHERE gateway_id = $3 AND ",
                    pending!(),
                    " ORDER BY created_at, id LIMIT $4",
                    $skip_locked,
                    ") RETURNING ",
                    message_columns!()
                ))
                .bind(take.now)
                .bind(take.lease_until)
                .bind(take.gateway_id.as_uuid())
                .bind(i64::from(take.limit))
                .fetch_all(&mut **connection)
                .await
                .map_err(crate::db)
            }

            /// Group commit: the writes that queued while the last group committed go in one
            /// transaction, the new messages among them in multi-row INSERTs. Concurrent senders
            /// would otherwise each pay their statements' round trips (on SQLite, to sqlx's worker
            /// thread and the one writer) and a commit; grouped, they share them. A write alone
            /// waits for nobody. Each group writes its appointment changes in the order of their
            /// ids, so two PostgreSQL instances' groups lock appointments in one order and cannot
            /// deadlock on each other. `tell(gateways, appointments)` announces what committed.
            /// Ends when every handle of the store is dropped.
            async fn commit_in_groups(
                writer: crate::sql::Writer<$Db>,
                mut queue: tokio::sync::mpsc::UnboundedReceiver<crate::sql::QueuedWrite>,
                tell: impl Fn(Vec<GatewayId>, Vec<AppointmentId>) + Send + 'static,
            ) {
                let mut group = Vec::with_capacity(crate::MAX_GROUP);
                while queue.recv_many(&mut group, crate::MAX_GROUP).await > 0 {
                    // The write lock first (on SQLite another process may hold it for a while),
                    // then only the writes whose callers still wait: one who gave up meanwhile (a
                    // request that timed out) was told nothing was saved, and nothing is.
                    let lone_message =
                        matches!(group.as_slice(), [(crate::sql::GroupedWrite::Message(_), _)]);
                    let mut connection = match writer.acquire().await {
                        Ok(connection) => connection,
                        Err(error) => {
                            // Each caller hears why (no free connection in time); the next group
                            // tries again.
                            let why = error.to_string();
                            for (_, reply) in group.drain(..) {
                                let _ = reply.send(Err(StoreError::Backend(why.clone().into())));
                            }
                            continue;
                        }
                    };
                    let (together, writes, replies) = if lone_message {
                        // Its INSERT commits on its own. (A change begins first, below, so that
                        // only writes whose callers still wait once the lock is held are made.)
                        let Some((writes, replies)) = crate::sql::still_awaited(&mut group) else {
                            continue;
                        };
                        (Self::commit_all(&mut connection, &writes).await, writes, replies)
                    } else {
                        let Some(written) = Self::lock_then_write(&mut connection, &mut group).await
                        else {
                            continue;
                        };
                        written
                    };
                    // Optimistic: all in one transaction. Should one write fail (a version
                    // conflict, a message that breaks a constraint), nothing was kept, and each
                    // commits on its own to get its own outcome.
                    let outcomes = match together {
                        Ok(()) => writes.iter().map(|_| Ok(())).collect(),
                        Err(error) if writes.len() == 1 => vec![Err(error)],
                        Err(_) => {
                            let mut outcomes = Vec::with_capacity(writes.len());
                            for write in &writes {
                                outcomes.push(
                                    Self::commit_all(&mut connection, std::slice::from_ref(write))
                                        .await,
                                );
                            }
                            outcomes
                        }
                    };
                    // Told here, not by the callers, so a caller that stopped waiting cannot
                    // leave a committed message unannounced.
                    let mut gateways = Vec::new();
                    let mut appointments = Vec::new();
                    for (write, outcome) in writes.iter().zip(&outcomes) {
                        if outcome.is_err() {
                            continue;
                        }
                        if let Some(message) = write.message() {
                            gateways.push(message.gateway_id);
                        }
                        appointments.push(write.appointment_id());
                    }
                    gateways.sort_unstable();
                    gateways.dedup();
                    if !appointments.is_empty() {
                        tell(gateways, appointments);
                    }
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        // A caller that stopped waiting still had its write committed.
                        let _ = reply.send(outcome);
                    }
                }
            }

            /// Commits one appointment change or new message through the committer, which may
            /// group it with others' (see `commit_in_groups`).
            async fn commit_write(&self, write: crate::sql::GroupedWrite) -> Result<(), StoreError> {
                let stopped = || {
                    StoreError::Backend(
                        "the store's committer has stopped (its Tokio runtime ended)".into(),
                    )
                };
                let (reply, outcome) = tokio::sync::oneshot::channel();
                self.commits.send((write, reply)).map_err(|_| stopped())?;
                outcome.await.map_err(|_| stopped())?
            }

            /// Confirms `message_ids` (at most [`crate::CONFIRM_CHUNK`]) of `gateway_id` that are
            /// open, returning each confirmed one's id, appointment and creation time.
            fn confirm_statement(
                gateway_id: GatewayId,
                message_ids: &[MessageId],
                now: DateTime<Utc>,
            ) -> sqlx::QueryBuilder<'static, $Db> {
                let mut query = sqlx::QueryBuilder::<$Db>::new("UPDATE messages SET confirmed_at = ");
                query
                    .push_bind(now)
                    .push(", delivered_at = COALESCE(delivered_at, ")
                    .push_bind(now)
                    // The ids find the rows; the gateway is only checked. Written as a plain
                    // `gateway_id = ` it led SQLite's planner (no statistics) to the index of every
                    // message the gateway ever had, read on each confirmation (issue 11).
                    .push("), lease_expires_at = NULL WHERE (gateway_id = ")
                    .push_bind(gateway_id.as_uuid())
                    .push(") IS TRUE AND confirmed_at IS NULL AND failed_at IS NULL AND id IN (");
                let mut ids = query.separated(", ");
                for message_id in message_ids {
                    ids.push_bind(message_id.as_uuid());
                }
                query.push(") RETURNING id, appointment_id, created_at");
                query
            }

            /// Confirms, on `writer`, those of `confirm`'s messages that are open, in one statement.
            async fn confirm_for_one(
                writer: &crate::sql::Writer<$Db>,
                confirm: &crate::sql::Confirm,
            ) -> Result<Vec<crate::sql::ConfirmedRow>, StoreError> {
                Self::confirm_statement(confirm.gateway_id, &confirm.message_ids, confirm.now)
                    .build_query_as()
                    .fetch_all(&mut *writer.acquire().await?)
                    .await
                    .map_err(crate::db)
            }

            /// Writes all of `writes` inside `tx`: the messages on their own in multi-row INSERTs,
            /// each appointment change with its event and message. Stops at the first that fails.
            async fn write_all(
                tx: &mut sqlx::Transaction<'_, $Db>,
                writes: &[crate::sql::GroupedWrite],
            ) -> Result<(), StoreError> {
                let mut messages = Vec::new();
                for write in writes {
                    match write {
                        crate::sql::GroupedWrite::Change(change) => Self::write_change(tx, change).await?,
                        crate::sql::GroupedWrite::Message(message) => messages.push(message),
                    }
                }
                for chunk in messages.chunks(crate::INSERT_CHUNK) {
                    Self::insert_messages(&mut **tx, chunk).await?;
                }
                Ok(())
            }

            /// Commits `writes` in one transaction, or none of them. A lone message needs no
            /// transaction: its INSERT commits on its own.
            async fn commit_all(
                connection: &mut crate::sql::WriteConnection<$Db>,
                writes: &[crate::sql::GroupedWrite],
            ) -> Result<(), StoreError> {
                if let [crate::sql::GroupedWrite::Message(message)] = writes {
                    return Self::insert_message(&mut **connection, message).await;
                }
                Self::commit_in(Self::begin_write_on(connection).await?, writes).await
            }

            /// Takes the write lock, then writes and commits those of `group` whose callers still
            /// wait: their outcome together, the writes and where each outcome goes; `None` when
            /// nobody waits once the lock is held.
            async fn lock_then_write_in_turn(
                connection: &mut crate::sql::WriteConnection<$Db>,
                group: &mut Vec<crate::sql::QueuedWrite>,
            ) -> Option<crate::sql::Written> {
                let begun = Self::begin_write_on(connection).await;
                let (writes, replies) = crate::sql::still_awaited(group)?;
                let together = match begun {
                    Ok(tx) => Self::commit_in(tx, &writes).await,
                    Err(error) => Err(error),
                };
                Some((together, writes, replies))
            }

            /// Writes all of `writes` in `tx` and commits, or keeps none of them.
            async fn commit_in(
                mut tx: sqlx::Transaction<'_, $Db>,
                writes: &[crate::sql::GroupedWrite],
            ) -> Result<(), StoreError> {
                Self::write_all(&mut tx, writes).await?;
                tx.commit().await.map_err(crate::db)
            }

            /// Why an appointment change made on `connection` (inside its transaction) changed no
            /// row: the appointment is at another version, or gone.
            async fn change_refused(
                connection: &mut <$Db as sqlx::Database>::Connection,
                change: &AppointmentChange,
            ) -> StoreError {
                let appointment = &change.appointment;
                let exists = sqlx::query_scalar::<_, i64>("SELECT version FROM appointments WHERE id = $1")
                    .bind(appointment.id.as_uuid())
                    .fetch_optional(&mut *connection)
                    .await;
                match exists {
                    Ok(Some(_)) => StoreError::VersionConflict {
                        expected: change.expected_version,
                    },
                    Ok(None) => StoreError::NotFound {
                        what: "appointment",
                        id: appointment.id.to_string(),
                    },
                    Err(error) => crate::db(error),
                }
            }
        }

        #[async_trait::async_trait]
        impl Outbox for $Store {
            async fn enqueue(&self, message: &Message) -> Result<(), StoreError> {
                self.commit_write(crate::sql::GroupedWrite::Message(message.clone())).await
            }

            async fn take_pending(
                &self,
                gateway_id: GatewayId,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<Message>, StoreError> {
                let waiters = self.notifier.handle(gateway_id);
                let seen = waiters.wakes_seen();
                let rows = self
                    .claim(crate::sql::Take { gateway_id, now, lease_until, limit })
                    .await?;
                let mut taken = crate::rows::messages(rows)?;
                // Fewer than asked for: none was left pending when the claim ran.
                waiters.messages_quiet(seen, taken.len() < limit as usize);
                taken.sort_by_key(|message| (message.created_at, message.id));
                self.statuses_changed(taken.iter().map(|message| message.appointment_id).collect());
                Ok(taken)
            }

            async fn confirm(
                &self,
                gateway_id: GatewayId,
                message_id: MessageId,
                now: DateTime<Utc>,
            ) -> Result<Confirmed, StoreError> {
                let mut outcomes = self.confirm_many(gateway_id, &[message_id], now).await?;
                let outcome = outcomes.pop().expect("one outcome per message id")?;
                Ok(outcome.confirmed)
            }

            async fn confirm_many(
                &self,
                gateway_id: GatewayId,
                message_ids: &[MessageId],
                now: DateTime<Utc>,
            ) -> Result<Vec<Result<ConfirmOutcome, StoreError>>, StoreError> {
                // Fast path, one statement per chunk: what `Message::confirm` does to each open
                // message of this gateway (a test holds the two to the same result).
                let mut confirmed_now = std::collections::HashMap::new();
                let mut appointments = Vec::new();
                for chunk in message_ids.chunks(crate::CONFIRM_CHUNK) {
                    let rows = self
                        .confirm_open(crate::sql::Confirm {
                            gateway_id,
                            message_ids: chunk.to_vec(),
                            now,
                        })
                        .await?;
                    for (id, appointment_id, created_at) in rows {
                        confirmed_now.insert(id, created_at);
                        appointments.push(AppointmentId::from_uuid(appointment_id));
                    }
                }
                let mut outcomes = Vec::with_capacity(message_ids.len());
                for &message_id in message_ids {
                    // Taken out, so an id named twice is confirmed once and then found confirmed.
                    outcomes.push(match confirmed_now.remove(&message_id.as_uuid()) {
                        Some(created_at) => Ok(ConfirmOutcome {
                            confirmed: Confirmed::Now,
                            created_at,
                        }),
                        None => self.confirm_by_the_rules(gateway_id, message_id, now, &mut appointments).await,
                    });
                }
                if !appointments.is_empty() {
                    self.statuses_changed(appointments);
                }
                Ok(outcomes)
            }

            async fn record_procedure(
                &self,
                gateway_id: GatewayId,
                report: &screening_core::procedure::ProcedureReport,
            ) -> Result<AppointmentState, StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                let message = Self::message_of_gateway(&mut tx, gateway_id, report.message_id).await?;
                let recorded: Option<String> =
                    sqlx::query_scalar("SELECT procedure_status FROM messages WHERE id = $1")
                        .bind(report.message_id.as_uuid())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(crate::db)?;
                // A report already recorded, or any after the step ended, changes nothing.
                let already = recorded
                    .as_deref()
                    .and_then(screening_core::procedure::ProcedureStatus::from_code)
                    .is_some_and(|recorded| recorded == report.status || recorded.is_final());
                let (clinic_slot_id, participant_id, state, version): (uuid::Uuid, uuid::Uuid, String, i64) =
                    sqlx::query_as(
                        "SELECT clinic_slot_id, participant_id, state, version FROM appointments WHERE id = $1",
                    )
                    .bind(message.appointment_id.as_uuid())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(crate::db)?;
                let appointment = Appointment {
                    id: message.appointment_id,
                    clinic_slot_id: ClinicSlotId::from_uuid(clinic_slot_id),
                    participant_id: ParticipantId::from_uuid(participant_id),
                    state: state.parse().map_err(|e: screening_core::appointment::UnknownCode| {
                        StoreError::Corrupt(e.to_string())
                    })?,
                    version,
                };
                if already {
                    tx.rollback().await.map_err(crate::db)?;
                    return Ok(appointment.state);
                }
                let latest: Option<uuid::Uuid> = sqlx::query_scalar(crate::sql::LATEST_MESSAGE_ID)
                .bind(message.appointment_id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(crate::db)?;
                sqlx::query(
                    "UPDATE messages SET procedure_status = $1, procedure_at = $2, \
                     procedure_station = $3, procedure_reason = $4 WHERE id = $5",
                )
                .bind(report.status.code())
                .bind(report.at)
                .bind(&report.station_ae_title)
                .bind(report.reason.as_deref())
                .bind(report.message_id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(crate::db)?;
                let action = screening_core::procedure::appointment_action(report.status);
                let actor = Actor(format!("modality {}", report.station_ae_title));
                // Only the appointment's latest order moves it; a report on a replaced order, or
                // one the state machine does not allow now (staff completed it already), is kept
                // on its message alone.
                let latest = latest == Some(report.message_id.as_uuid());
                let state = match appointment.apply(action, report.at, actor) {
                    Ok((moved, event)) if latest => {
                        let change = AppointmentChange {
                            expected_version: appointment.version,
                            appointment: moved,
                            event,
                            message: None,
                        };
                        Self::write_change(&mut tx, &change).await?;
                        change.appointment.state
                    }
                    _ => appointment.state,
                };
                tx.commit().await.map_err(crate::db)?;
                self.statuses_changed(vec![message.appointment_id]);
                Ok(state)
            }

            async fn fail(
                &self,
                gateway_id: GatewayId,
                message_id: MessageId,
                now: DateTime<Utc>,
                reason: &str,
            ) -> Result<Message, StoreError> {
                self.change_message(gateway_id, message_id, |m| m.fail(now, reason))
                    .await
            }

            async fn release(
                &self,
                gateway_id: GatewayId,
                message_id: MessageId,
                reason: &str,
            ) -> Result<Message, StoreError> {
                let released = self
                    .change_message(gateway_id, message_id, |m| m.release(reason))
                    .await?;
                self.wake(gateway_id);
                Ok(released)
            }

            async fn redeliver_expired(&self, now: DateTime<Utc>, max_attempts: u32) -> Result<u64, StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                let rows: Vec<MessageRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages WHERE delivered_at IS NOT NULL AND confirmed_at IS NULL \
                     AND failed_at IS NULL AND lease_expires_at <= $1 ORDER BY lease_expires_at LIMIT 500",
                    $skip_locked
                ))
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(crate::db)?;
                let mut woken = Vec::new();
                let mut changed_appointments = Vec::new();
                for message in crate::rows::messages(rows)? {
                    let next = message.redeliver(now, max_attempts)?;
                    Self::update_lifecycle(&mut tx, &next).await?;
                    if next.status() == MessageStatus::Pending {
                        woken.push(next.gateway_id);
                    }
                    changed_appointments.push(next.appointment_id);
                }
                tx.commit().await.map_err(crate::db)?;
                self.statuses_changed(changed_appointments);
                let changed = woken.len() as u64;
                woken.sort();
                woken.dedup();
                for gateway_id in woken {
                    self.wake(gateway_id);
                }
                Ok(changed)
            }

            async fn message(&self, message_id: MessageId) -> Result<Message, StoreError> {
                let row: Option<MessageRow> =
                    sqlx::query_as(concat!("SELECT ", message_columns!(), " FROM messages WHERE id = $1"))
                        .bind(message_id.as_uuid())
                        .fetch_optional(&mut *self.readers.acquire().await?)
                        .await
                        .map_err(crate::db)?;
                Message::try_from(row.ok_or_else(|| StoreError::NotFound {
                    what: "message",
                    id: message_id.to_string(),
                })?)
            }

            async fn wait_for_pending(
                &self,
                gateway_id: GatewayId,
                timeout: std::time::Duration,
            ) -> Result<bool, StoreError> {
                // Register before looking, so a message committed between the look and the wait
                // still wakes us.
                let waiters = self.notifier.handle(gateway_id);
                let notified = waiters.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // No look when the gateway's last takes, just now, left nothing pending and
                // nothing has woken it since: the poll after a delivery costs no read.
                if !waiters.quiet_since_take() && self.pending_exists(gateway_id).await? {
                    return Ok(true);
                }
                Ok(tokio::time::timeout(timeout, notified).await.is_ok())
            }
        }

        #[async_trait::async_trait]
        impl ScreeningStore for $Store {
            fn status_changes(&self) -> crate::StatusSubscription {
                self.notifier.subscribe_statuses()
            }

            async fn save_gateway(&self, gateway: &Gateway, now: DateTime<Utc>) -> Result<(), StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                Self::upsert_gateway(&mut tx, gateway, now, true).await?;
                tx.commit().await.map_err(crate::db)
            }

            async fn gateways(&self) -> Result<Vec<Gateway>, StoreError> {
                // Every gateway: none has the nil id.
                self.gateways_where("g.id <> $1", uuid::Uuid::nil()).await
            }

            async fn gateway(&self, gateway_id: GatewayId) -> Result<Gateway, StoreError> {
                self.gateways_where("g.id = $1", gateway_id.as_uuid())
                    .await?
                    .pop()
                    .ok_or_else(|| StoreError::NotFound {
                        what: "gateway",
                        id: gateway_id.to_string(),
                    })
            }

            async fn clinic_appointments(&self, clinic_id: ClinicId) -> Result<Vec<ClinicAppointment>, StoreError> {
                let rows: Vec<AppointmentRow> =
                    sqlx::query_as(&format!("{APPOINTMENT_SELECT} WHERE c.id = $1 ORDER BY s.starts_at, a.id"))
                        .bind(clinic_id.as_uuid())
                        .fetch_all(&mut *self.readers.acquire().await?)
                        .await
                        .map_err(crate::db)?;
                rows.into_iter()
                    .map(|row| {
                        let parts = AppointmentParts::try_from(row)?;
                        Ok(ClinicAppointment {
                            appointment: parts.appointment,
                            participant: parts.participant,
                            slot: parts.slot,
                        })
                    })
                    .collect()
            }

            async fn appointment_messages(&self, appointment_id: AppointmentId) -> Result<Vec<Message>, StoreError> {
                let rows: Vec<MessageRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages WHERE appointment_id = $1 ORDER BY created_at DESC, id DESC"
                ))
                .bind(appointment_id.as_uuid())
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                crate::rows::messages(rows)
            }

            async fn appointment_events(&self, appointment_id: AppointmentId) -> Result<Vec<AppointmentEvent>, StoreError> {
                let rows: Vec<EventRow> = sqlx::query_as(
                    "SELECT appointment_id, action, from_state, to_state, at, actor FROM appointment_events \
                     WHERE appointment_id = $1 ORDER BY id",
                )
                .bind(appointment_id.as_uuid())
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                rows.into_iter().map(AppointmentEvent::try_from).collect()
            }

            async fn set_gateway_credential_hash(&self, gateway_id: GatewayId, hash: &str) -> Result<(), StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                let updated = sqlx::query("UPDATE gateways SET credential_hash = $1 WHERE id = $2")
                    .bind(hash)
                    .bind(gateway_id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::db)?
                    .rows_affected();
                if updated == 0 {
                    return Err(StoreError::NotFound { what: "gateway", id: gateway_id.to_string() });
                }
                tx.commit().await.map_err(crate::db)?;
                // After the commit, so a read between forgetting and committing cannot keep the
                // old hash.
                self.credentials.forget(gateway_id);
                Ok(())
            }

            async fn gateway_credential_hash(&self, gateway_id: GatewayId) -> Result<Option<String>, StoreError> {
                let now = std::time::Instant::now();
                if let Some(hash) = self.credentials.get(gateway_id, now) {
                    return Ok(Some(hash));
                }
                let ticket = self.credentials.ticket();
                let row: Option<(Option<String>,)> =
                    sqlx::query_as("SELECT credential_hash FROM gateways WHERE id = $1")
                        .bind(gateway_id.as_uuid())
                        .fetch_optional(&mut *self.readers.acquire().await?)
                        .await
                        .map_err(crate::db)?;
                let hash = row
                    .map(|(hash,)| hash)
                    .ok_or_else(|| StoreError::NotFound { what: "gateway", id: gateway_id.to_string() })?;
                if let Some(hash) = &hash {
                    self.credentials.keep(ticket, gateway_id, hash, now);
                }
                Ok(hash)
            }

            async fn record_heartbeat(
                &self,
                gateway_id: GatewayId,
                now: DateTime<Utc>,
                heartbeat: &Heartbeat,
            ) -> Result<(), StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                // The listener's "since" moves only when what the agent says of it changes (SET
                // reads the row as it was).
                let updated = sqlx::query(
                    "UPDATE gateways SET last_seen_at = $1, agent_version = $2, agent_uptime_seconds = $3, \
                     inbox_depth = $4, \
                     relay_listener_since = CASE WHEN relay_listener_connected = $6 \
                         THEN relay_listener_since ELSE $1 END, \
                     relay_listener_connected = $6, worklist_served = $7, worklist_queried_at = $8 \
                     WHERE id = $5",
                )
                .bind(now)
                .bind(&heartbeat.agent_version)
                .bind(i64::try_from(heartbeat.uptime_seconds).unwrap_or(i64::MAX))
                .bind(i64::try_from(heartbeat.inbox_depth).unwrap_or(i64::MAX))
                .bind(gateway_id.as_uuid())
                .bind(heartbeat.relay_listener_connected)
                .bind(heartbeat.worklist.is_some())
                .bind(heartbeat.worklist.as_ref().and_then(|w| w.last_query_at))
                .execute(&mut *tx)
                .await
                .map_err(crate::db)?
                .rows_affected();
                if updated == 0 {
                    return Err(StoreError::NotFound { what: "gateway", id: gateway_id.to_string() });
                }
                tx.commit().await.map_err(crate::db)
            }

            async fn record_seen(&self, gateway_id: GatewayId, now: DateTime<Utc>) -> Result<(), StoreError> {
                let stale_before = now - chrono::TimeDelta::seconds(crate::SEEN_RESOLUTION_SECONDS);
                sqlx::query(
                    "UPDATE gateways SET last_seen_at = $1 WHERE id = $2 \
                     AND (last_seen_at IS NULL OR last_seen_at < $3)",
                )
                .bind(now)
                .bind(gateway_id.as_uuid())
                .bind(stale_before)
                .execute(&mut *self.writer.acquire().await?)
                .await
                .map_err(crate::db)?;
                Ok(())
            }

            async fn gateway_last_seen(
                &self,
                gateway_id: GatewayId,
            ) -> Result<(Option<DateTime<Utc>>, Option<Heartbeat>), StoreError> {
                type Row = (
                    Option<DateTime<Utc>>,
                    Option<String>,
                    Option<i64>,
                    Option<i64>,
                    Option<bool>,
                    Option<bool>,
                    Option<DateTime<Utc>>,
                );
                let row: Option<Row> = sqlx::query_as(
                    "SELECT last_seen_at, agent_version, agent_uptime_seconds, inbox_depth, \
                     relay_listener_connected, worklist_served, worklist_queried_at \
                     FROM gateways WHERE id = $1",
                )
                .bind(gateway_id.as_uuid())
                .fetch_optional(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                let (seen, version, uptime, depth, listener, worklist, queried) =
                    row.ok_or_else(|| StoreError::NotFound { what: "gateway", id: gateway_id.to_string() })?;
                let heartbeat = version.map(|agent_version| Heartbeat {
                    agent_version,
                    uptime_seconds: uptime.unwrap_or_default().max(0) as u64,
                    inbox_depth: depth.unwrap_or_default().max(0) as u64,
                    relay_listener_connected: listener,
                    worklist: worklist
                        .unwrap_or(false)
                        .then_some(screening_core::wire::WorklistHealth { last_query_at: queried }),
                });
                Ok((seen, heartbeat))
            }

            #[cfg(feature = "demo")]
            async fn seed(&self, data: &DemoData, now: DateTime<Utc>) -> Result<(), StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                sqlx::query("INSERT INTO providers (id, name, ods_code) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(data.provider.id.as_uuid())
                    .bind(&data.provider.name)
                    .bind(&data.provider.ods_code)
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::db)?;
                sqlx::query("INSERT INTO settings (id, provider_id, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(data.setting.id.as_uuid())
                    .bind(data.setting.provider_id.as_uuid())
                    .bind(&data.setting.name)
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::db)?;
                // Seeding never overwrites a gateway an admin has edited since.
                Self::upsert_gateway(&mut tx, &data.gateway, now, false).await?;
                sqlx::query("INSERT INTO clinics (id, setting_id, clinic_date, name) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                    .bind(data.clinic.id.as_uuid())
                    .bind(data.clinic.setting_id.as_uuid())
                    .bind(data.clinic.date)
                    .bind(&data.clinic.name)
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::db)?;
                for ((participant, slot), appointment) in
                    data.participants.iter().zip(&data.slots).zip(&data.appointments)
                {
                    sqlx::query(
                        "INSERT INTO participants (id, nhs_number, first_name, last_name, date_of_birth, sex) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    )
                    .bind(participant.id.as_uuid())
                    .bind(participant.nhs_number.digits())
                    .bind(&participant.first_name)
                    .bind(&participant.last_name)
                    .bind(participant.date_of_birth)
                    .bind(participant.sex.code())
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::db)?;
                    sqlx::query(
                        "INSERT INTO clinic_slots (id, clinic_id, starts_at, duration_minutes) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(slot.id.as_uuid())
                    .bind(slot.clinic_id.as_uuid())
                    .bind(slot.starts_at)
                    .bind(i64::from(slot.duration_minutes))
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::db)?;
                    sqlx::query(
                        "INSERT INTO appointments (id, clinic_slot_id, participant_id, state, version) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    )
                    .bind(appointment.id.as_uuid())
                    .bind(appointment.clinic_slot_id.as_uuid())
                    .bind(appointment.participant_id.as_uuid())
                    .bind(appointment.state.code())
                    .bind(appointment.version)
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::db)?;
                }
                tx.commit().await.map_err(crate::db)?;
                self.everything_changed();
                Ok(())
            }
        }
    };
}
