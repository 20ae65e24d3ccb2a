//! Retention: what is kept and for how long, and pruning that frees the space. Payloads (the
//! participant's details) of confirmed messages go first; message records, the clinic's and the
//! admins' audit trails and resolved alerts go after the records period; expired sessions go at
//! once. Pruning runs in chunks, each its own short transaction, so writers are never held up for
//! long; on SQLite the freed pages are then given back to the file system (incremental vacuum).

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use screening_core::prelude::StoreError;

/// How long things are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// A confirmed message's payload is removed this long after confirmation (the record of the
    /// message stays).
    pub payloads: TimeDelta,
    /// Finished messages, appointment and admin audit events and resolved alerts are deleted
    /// this long after they happened.
    pub records: TimeDelta,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            payloads: TimeDelta::days(30),
            records: TimeDelta::days(730),
        }
    }
}

/// What one pruning removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Payloads removed from confirmed messages.
    pub payloads: u64,
    /// Finished messages deleted.
    pub messages: u64,
    /// Appointment audit events deleted.
    pub appointment_events: u64,
    /// Admin audit events deleted.
    pub admin_events: u64,
    /// Resolved alerts deleted (with their events).
    pub alerts: u64,
    /// Expired sign-in sessions deleted.
    pub sessions: u64,
    /// Echo outcomes deleted (kept for the payload period: operational, not clinical).
    pub echo_events: u64,
}

/// Pruning by a retention policy. Implemented by both adapters.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Removes what `policy` no longer keeps at `now`, `chunk` rows per transaction, then gives
    /// the freed space back (SQLite). Never touches a message that is pending or in flight.
    async fn prune(
        &self,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
        chunk: u32,
    ) -> Result<Pruned, StoreError>;
}

/// A finished message created before `$1`: confirmed or failed, never one still moving.
macro_rules! old_finished_message {
    () => {
        "SELECT id FROM messages WHERE created_at < $1 \
         AND (confirmed_at IS NOT NULL OR failed_at IS NOT NULL) ORDER BY created_at, id LIMIT $2"
    };
}

/// Implements [`RetentionStore`] for an adapter with a `writer`, `begin_write_on(&mut connection)`,
/// `reclaim_space()` and `everything_changed()`.
macro_rules! impl_retention_store {
    (store: $Store:ty) => {
        impl $Store {
            /// Runs `statements` (each bound to `cutoff` and `chunk`) in one transaction, again
            /// and again until the last of them affects less than a chunk; the rows it affected.
            async fn prune_in_chunks(
                &self,
                statements: &[&str],
                cutoff: DateTime<Utc>,
                chunk: u32,
            ) -> Result<u64, StoreError> {
                let mut total = 0;
                loop {
                    let mut writer = self.writer.acquire().await?;
                    let mut tx = Self::begin_write_on(&mut writer).await?;
                    let mut last = 0;
                    for statement in statements {
                        let affected = sqlx::query(statement)
                            .bind(cutoff)
                            .bind(i64::from(chunk))
                            .execute(&mut *tx)
                            .await
                            .map_err(crate::db)?
                            .rows_affected();
                        last = affected;
                    }
                    tx.commit().await.map_err(crate::db)?;
                    total += last;
                    if last < u64::from(chunk) {
                        return Ok(total);
                    }
                }
            }
        }

        #[async_trait::async_trait]
        impl $crate::retention::RetentionStore for $Store {
            async fn prune(
                &self,
                policy: &$crate::retention::RetentionPolicy,
                now: DateTime<Utc>,
                chunk: u32,
            ) -> Result<$crate::retention::Pruned, StoreError> {
                let chunk = chunk.max(1);
                let records = now - policy.records;
                let payloads = self
                    .prune_in_chunks(
                        &["UPDATE messages SET payload = '' WHERE id IN (SELECT id FROM messages \
                           WHERE confirmed_at IS NOT NULL AND confirmed_at < $1 AND payload <> '' \
                           ORDER BY confirmed_at, id LIMIT $2)"],
                        now - policy.payloads,
                        chunk,
                    )
                    .await?;
                // A resend that outlives the message it resent loses only the link.
                let messages = self
                    .prune_in_chunks(
                        &[
                            concat!(
                                "DELETE FROM message_events WHERE message_id IN (",
                                old_finished_message!(),
                                ")"
                            ),
                            concat!(
                                "UPDATE messages SET resend_of = NULL WHERE resend_of IN (",
                                old_finished_message!(),
                                ")"
                            ),
                            concat!("DELETE FROM messages WHERE id IN (", old_finished_message!(), ")"),
                        ],
                        records,
                        chunk,
                    )
                    .await?;
                let appointment_events = self
                    .prune_in_chunks(
                        &["DELETE FROM appointment_events WHERE id IN (SELECT id FROM appointment_events \
                           WHERE at < $1 ORDER BY id LIMIT $2)"],
                        records,
                        chunk,
                    )
                    .await?;
                let admin_events = self
                    .prune_in_chunks(
                        &["DELETE FROM admin_events WHERE id IN (SELECT id FROM admin_events \
                           WHERE occurred_at < $1 ORDER BY id LIMIT $2)"],
                        records,
                        chunk,
                    )
                    .await?;
                let alerts = self
                    .prune_in_chunks(
                        &[
                            "DELETE FROM alert_events WHERE alert_id IN (SELECT id FROM alerts \
                             WHERE resolved_at < $1 ORDER BY id LIMIT $2)",
                            "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts \
                             WHERE resolved_at < $1 ORDER BY id LIMIT $2)",
                        ],
                        records,
                        chunk,
                    )
                    .await?;
                let echo_events = self
                    .prune_in_chunks(
                        &["DELETE FROM echo_events WHERE id IN (SELECT id FROM echo_events \
                           WHERE requested_at < $1 ORDER BY id LIMIT $2)"],
                        now - policy.payloads,
                        chunk,
                    )
                    .await?;
                let sessions = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *self.writer.acquire().await?)
                    .await
                    .map_err(crate::db)?
                    .rows_affected();
                self.reclaim_space().await?;
                // Pruned messages may have been the latest some clinic page shows.
                if messages > 0 {
                    self.everything_changed();
                }
                Ok($crate::retention::Pruned {
                    payloads,
                    messages,
                    appointment_events,
                    admin_events,
                    alerts,
                    sessions,
                    echo_events,
                })
            }
        }
    };
}
