//! Echoes as stored: one in flight per gateway, on the gateway's row (migration
//! `0012_gateway_echo`), handed out with a lease like a message, and what the last answer proved.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use screening_core::echo::EchoRecord;
use screening_core::prelude::*;

/// The hub's side of "health proven by traffic".
#[async_trait]
pub trait EchoStore: Send + Sync {
    /// Asks for echo `echo_id` to `gateway_id` (replacing one still in flight, which then counts
    /// as unanswered) and wakes whoever delivers to it. `by` is who asked ("schedule" or a name).
    async fn request_echo(
        &self,
        gateway_id: GatewayId,
        echo_id: MessageId,
        now: DateTime<Utc>,
        by: &str,
    ) -> Result<(), StoreError>;

    /// Takes the gateway's echo for delivery until `lease_until`, if one waits and is not
    /// leased; returns its id and when it was asked for.
    async fn take_echo(
        &self,
        gateway_id: GatewayId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<(MessageId, DateTime<Utc>)>, StoreError>;

    /// Records the gateway's answer to echo `echo_id`: `Ok` proves the path, `Err` says why not.
    /// Returns the round trip in milliseconds; `NotFound` when that echo is not the gateway's
    /// echo in flight (another gateway's, already answered, or never sent).
    async fn answer_echo(
        &self,
        gateway_id: GatewayId,
        echo_id: MessageId,
        now: DateTime<Utc>,
        outcome: Result<(), &str>,
    ) -> Result<i64, StoreError>;

    /// Every gateway's echo record.
    async fn echo_records(&self) -> Result<Vec<(GatewayId, EchoRecord)>, StoreError>;

    /// The gateway's newest `limit` echo outcomes, newest first.
    async fn echo_events(
        &self,
        gateway_id: GatewayId,
        limit: u32,
    ) -> Result<Vec<EchoEvent>, StoreError>;
}

/// One echo's outcome, as its gateway's history shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EchoEvent {
    /// The echo.
    #[sqlx(try_from = "uuid::Uuid")]
    pub echo_id: MessageId,
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// Who asked: "schedule" or an admin's name.
    pub requested_by: String,
    /// When the answer came; `None` for an echo replaced unanswered.
    pub answered_at: Option<DateTime<Utc>>,
    /// Its round trip when it came back good.
    pub round_trip_ms: Option<i64>,
    /// Why not, phase first, when it did not.
    pub error: Option<String>,
}

/// What an echo replaced before any answer came is recorded with.
pub const UNANSWERED: &str = "await reply: no answer before the next echo was sent";

/// An echo record as read.
#[derive(sqlx::FromRow)]
pub(crate) struct EchoRow {
    pub id: uuid::Uuid,
    pub echo_requested_at: Option<DateTime<Utc>>,
    pub echo_proven_at: Option<DateTime<Utc>>,
    pub echo_round_trip_ms: Option<i64>,
    pub echo_answered_at: Option<DateTime<Utc>>,
    pub echo_error: Option<String>,
}

impl From<EchoRow> for (GatewayId, EchoRecord) {
    fn from(row: EchoRow) -> Self {
        (
            GatewayId::from_uuid(row.id),
            EchoRecord {
                requested_at: row.echo_requested_at,
                proven_at: row.echo_proven_at,
                round_trip_ms: row.echo_round_trip_ms,
                answered_at: row.echo_answered_at,
                last_error: row.echo_error,
            },
        )
    }
}

/// Failure reasons are kept, cut to this many characters.
const MAX_ERROR_CHARS: usize = 2000;

pub(crate) fn not_found(echo_id: MessageId) -> StoreError {
    StoreError::NotFound {
        what: "message",
        id: echo_id.to_string(),
    }
}

pub(crate) fn cut(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

/// Implements [`EchoStore`] for a store with `pool`, `writer`, `begin_write_on` and `wake`.
macro_rules! impl_echo_store {
    (store: $Store:ty) => {
        #[async_trait::async_trait]
        impl $crate::echo::EchoStore for $Store {
            async fn request_echo(
                &self,
                gateway_id: GatewayId,
                echo_id: MessageId,
                now: DateTime<Utc>,
                by: &str,
            ) -> Result<(), StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                // The echo it replaces, if one was still out, never came back.
                sqlx::query(
                    "INSERT INTO echo_events (gateway_id, echo_id, requested_at, requested_by, error) \
                     SELECT id, echo_id, echo_requested_at, COALESCE(echo_requested_by, ''), $1 \
                     FROM gateways WHERE id = $2 AND echo_id IS NOT NULL",
                )
                .bind($crate::echo::UNANSWERED)
                .bind(gateway_id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(crate::db)?;
                let updated = sqlx::query(
                    "UPDATE gateways SET echo_id = $1, echo_requested_at = $2, \
                     echo_requested_by = $3, echo_lease_expires_at = NULL WHERE id = $4",
                )
                .bind(echo_id.as_uuid())
                .bind(now)
                .bind(by)
                .bind(gateway_id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(crate::db)?
                .rows_affected();
                if updated == 0 {
                    return Err(StoreError::NotFound {
                        what: "gateway",
                        id: gateway_id.to_string(),
                    });
                }
                tx.commit().await.map_err(crate::db)?;
                self.wake(gateway_id);
                Ok(())
            }

            async fn take_echo(
                &self,
                gateway_id: GatewayId,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
            ) -> Result<Option<(MessageId, DateTime<Utc>)>, StoreError> {
                // Almost every take finds no echo: a read says so without a write transaction
                // (on SQLite, a wait for the single writer). An echo asked for after this read
                // is found by the waiting long-poll's `pending_exists`, or the next take.
                // The same row's credential hash comes along and is kept: the confirmation that
                // follows a take within milliseconds then finds it without a read of its own.
                let read_at = std::time::Instant::now();
                let ticket = self.credentials.ticket();
                let waiters = self.notifier.handle(gateway_id);
                let seen = waiters.wakes_seen();
                let row: Option<(bool, Option<String>)> = sqlx::query_as(
                    "SELECT echo_id IS NOT NULL \
                     AND (echo_lease_expires_at IS NULL OR echo_lease_expires_at <= $2), \
                     credential_hash FROM gateways WHERE id = $1",
                )
                .bind(gateway_id.as_uuid())
                .bind(now)
                .fetch_optional(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                let Some((outstanding, credential_hash)) = row else {
                    return Ok(None);
                };
                if let Some(hash) = &credential_hash {
                    self.credentials.keep(ticket, gateway_id, hash, read_at);
                }
                // None outstanding, so none that a long poll's look counts (a subset).
                waiters.echo_quiet(seen, !outstanding);
                if !outstanding {
                    return Ok(None);
                }
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                let taken: Option<(uuid::Uuid, DateTime<Utc>)> = sqlx::query_as(
                    "UPDATE gateways SET echo_lease_expires_at = $1 \
                     WHERE id = $2 AND echo_id IS NOT NULL \
                     AND (echo_lease_expires_at IS NULL OR echo_lease_expires_at <= $3) \
                     RETURNING echo_id, echo_requested_at",
                )
                .bind(lease_until)
                .bind(gateway_id.as_uuid())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(crate::db)?;
                tx.commit().await.map_err(crate::db)?;
                Ok(taken.map(|(id, at)| (MessageId::from_uuid(id), at)))
            }

            async fn answer_echo(
                &self,
                gateway_id: GatewayId,
                echo_id: MessageId,
                now: DateTime<Utc>,
                outcome: Result<(), &str>,
            ) -> Result<i64, StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                let asked: Option<(Option<DateTime<Utc>>, Option<String>)> = sqlx::query_as(
                    "SELECT echo_requested_at, echo_requested_by FROM gateways \
                     WHERE id = $1 AND echo_id = $2",
                )
                .bind(gateway_id.as_uuid())
                .bind(echo_id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(crate::db)?;
                let (requested_at, requested_by) = match asked {
                    Some((Some(at), by)) => (at, by.unwrap_or_default()),
                    _ => return Err($crate::echo::not_found(echo_id)),
                };
                let round_trip_ms = (now - requested_at).num_milliseconds().max(0);
                let (proven_at, round_trip, error) = match outcome {
                    Ok(()) => (Some(now), Some(round_trip_ms), None),
                    Err(why) => (None, None, Some($crate::echo::cut(why))),
                };
                sqlx::query(
                    "UPDATE gateways SET echo_id = NULL, echo_requested_at = NULL, \
                     echo_lease_expires_at = NULL, echo_answered_at = $1, \
                     echo_proven_at = COALESCE($2, echo_proven_at), \
                     echo_round_trip_ms = COALESCE($3, echo_round_trip_ms), echo_error = $4 \
                     WHERE id = $5",
                )
                .bind(now)
                .bind(proven_at)
                .bind(round_trip)
                .bind(error.clone())
                .bind(gateway_id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(crate::db)?;
                sqlx::query(
                    "INSERT INTO echo_events (gateway_id, echo_id, requested_at, requested_by, \
                     answered_at, round_trip_ms, error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(gateway_id.as_uuid())
                .bind(echo_id.as_uuid())
                .bind(requested_at)
                .bind(requested_by)
                .bind(now)
                .bind(round_trip)
                .bind(error)
                .execute(&mut *tx)
                .await
                .map_err(crate::db)?;
                tx.commit().await.map_err(crate::db)?;
                Ok(round_trip_ms)
            }

            async fn echo_records(
                &self,
            ) -> Result<Vec<(GatewayId, screening_core::echo::EchoRecord)>, StoreError> {
                let rows: Vec<$crate::echo::EchoRow> = sqlx::query_as(
                    "SELECT id, echo_requested_at, echo_proven_at, echo_round_trip_ms, \
                     echo_answered_at, echo_error FROM gateways ORDER BY created_at, id",
                )
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn echo_events(
                &self,
                gateway_id: GatewayId,
                limit: u32,
            ) -> Result<Vec<$crate::echo::EchoEvent>, StoreError> {
                sqlx::query_as(
                    "SELECT echo_id, requested_at, requested_by, answered_at, round_trip_ms, error \
                     FROM echo_events WHERE gateway_id = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(gateway_id.as_uuid())
                .bind(i64::from(limit))
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)
            }
        }
    };
}
