//! The agent's durable inbox (SQLite): store what arrives (a new message while it is forwarded,
//! on disk by the time the forward's outcome is), de-duplicate by message id, resume after a crash,
//! and remember which outcomes the hub has not acknowledged yet.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use screening_core::prelude::*;
use sqlx::SqlitePool;

/// The inbox failed.
#[derive(Debug, thiserror::Error)]
#[error("inbox: {0}")]
pub struct InboxError(String);

impl From<sqlx::Error> for InboxError {
    fn from(error: sqlx::Error) -> Self {
        Self(error.to_string())
    }
}

/// A stored message awaiting forwarding, or an outcome awaiting the hub's acknowledgement.
#[derive(Debug, Clone)]
pub struct InboxEntry {
    /// The message as received.
    pub message: GatewayMessage,
    /// Forwarding attempts so far.
    pub attempts: u32,
    /// Set once the destination accepted it.
    pub forwarded_at: Option<DateTime<Utc>>,
    /// Set once the agent gave up on it.
    pub failed_at: Option<DateTime<Utc>>,
    /// The last forwarding error.
    pub last_error: Option<String>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

/// The inbox database.
#[derive(Clone)]
pub struct Inbox {
    pool: SqlitePool,
    /// The connection of [`Inbox::store_arrival`], whose commits do not wait for the disk.
    arrivals: SqlitePool,
    /// Every message id the file holds (and perhaps a few more, whose store failed or is under
    /// way), so a new message is known to be new without a read ([`Inbox::claim_new`]). Ids are
    /// added before they are stored and removed after they are deleted: an id in the file is
    /// always here, which is what keeps a message from being forwarded twice.
    held: Arc<Mutex<HashSet<MessageId>>>,
}

type EntryRow = (
    String,
    i64,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<String>,
    DateTime<Utc>,
);

/// The columns of an [`EntryRow`], in its order.
const ENTRY_COLUMNS: &str = "message, attempts, forwarded_at, failed_at, last_error, received_at";

fn entry(row: EntryRow) -> Result<InboxEntry, InboxError> {
    let (message, attempts, forwarded_at, failed_at, last_error, received_at) = row;
    Ok(InboxEntry {
        message: serde_json::from_str(&message)
            .map_err(|e| InboxError(format!("stored message: {e}")))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        forwarded_at,
        failed_at,
        last_error,
        received_at,
    })
}

impl InboxEntry {
    /// A message just stored by [`Inbox::receive`], as the inbox now holds it.
    pub fn fresh(message: GatewayMessage, received_at: DateTime<Utc>) -> Self {
        Self {
            message,
            attempts: 0,
            forwarded_at: None,
            failed_at: None,
            last_error: None,
            received_at,
        }
    }
}

impl Inbox {
    /// Opens (creating) the inbox file.
    pub async fn open(path: &std::path::Path) -> Result<Self, InboxError> {
        let pool = crate::agent_file::open(path, 2, sqlx::migrate!("./migrations/inbox"))
            .await
            .map_err(InboxError)?;
        let arrivals = crate::agent_file::open_unsynced(path)
            .await
            .map_err(InboxError)?;
        let ids: Vec<String> = sqlx::query_scalar("SELECT message_id FROM inbox")
            .fetch_all(&pool)
            .await?;
        // An id that is no message id cannot match one that arrives.
        let held = ids
            .iter()
            .filter_map(|id| MessageId::parse(id).ok())
            .collect();
        Ok(Self {
            pool,
            arrivals,
            held: Arc::new(Mutex::new(held)),
        })
    }

    /// Marks `id` as held; `true` when it was not: a new message, which may be forwarded while
    /// [`Inbox::store_arrival`] stores it. `false` for a message the inbox holds already (then
    /// [`Inbox::receive`] it, which says what is left to do). Decided in memory, so the forward
    /// need not wait for a read.
    pub fn claim_new(&self, id: MessageId) -> bool {
        self.held.lock().expect("not poisoned").insert(id)
    }

    /// Stores a message [`Inbox::claim_new`] found new, without waiting for the disk.
    ///
    /// The record reaches the disk with the commit that records the forward's outcome
    /// ([`Inbox::mark_forwarded`] or [`Inbox::mark_attempt_failed`], each synced, and a sync
    /// writes out every commit before it), so a hand-off waits for one sync, not two. A power cut
    /// before then loses nothing: the hub hands the message out again until it is confirmed, and
    /// a confirmation is sent only once the destination has the message. A crash of the agent
    /// alone loses nothing either: the commit is in the operating system's hands.
    pub async fn store_arrival(
        &self,
        message: &GatewayMessage,
        now: DateTime<Utc>,
    ) -> Result<(), InboxError> {
        let stored = Self::insert(message, now)?
            .execute(&self.arrivals)
            .await?
            .rows_affected();
        if stored == 0 {
            // Only a second process on this file could have stored it meanwhile.
            tracing::warn!(message_id = %message.message_id, "the inbox held a message it had not loaded");
        }
        Ok(())
    }

    /// The statement that stores a message unless its id is in the inbox already.
    fn insert(
        message: &GatewayMessage,
        now: DateTime<Utc>,
    ) -> Result<
        sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'static>>,
        InboxError,
    > {
        let json = serde_json::to_string(message).map_err(|e| InboxError(e.to_string()))?;
        Ok(sqlx::query(
            "INSERT INTO inbox (message_id, message_type, message, received_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message.message_id.to_string())
        .bind(message.message_type.as_str().to_owned())
        .bind(json)
        .bind(now))
    }

    /// Stores a received message. Returns `true` when it is new; a redelivered one is not stored
    /// again, but its outcome is reported to the hub again (the hub evidently missed it).
    pub async fn receive(
        &self,
        message: &GatewayMessage,
        now: DateTime<Utc>,
    ) -> Result<bool, InboxError> {
        self.claim_new(message.message_id);
        let inserted = Self::insert(message, now)?
            .execute(&self.pool)
            .await?
            .rows_affected();
        if inserted == 0 {
            sqlx::query("UPDATE inbox SET reported_at = NULL WHERE message_id = $1")
                .bind(message.message_id.to_string())
                .execute(&self.pool)
                .await?;
        }
        Ok(inserted == 1)
    }

    /// Stores a message refused on arrival (a bad signature) as failed with `reason`, to be
    /// reported to the hub and never forwarded. Returns `true` when it is new; a message already
    /// in the inbox under that id keeps its own record (a forgery cannot overwrite it).
    pub async fn refuse(
        &self,
        message: &GatewayMessage,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<bool, InboxError> {
        let json = serde_json::to_string(message).map_err(|e| InboxError(e.to_string()))?;
        self.claim_new(message.message_id);
        let inserted = sqlx::query(
            "INSERT INTO inbox (message_id, message_type, message, received_at, next_attempt_at, \
             attempts, last_error, failed_at) VALUES ($1, $2, $3, $4, $4, 1, $5, $4) \
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message.message_id.to_string())
        .bind(message.message_type.as_str())
        .bind(json)
        .bind(now)
        .bind(reason)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Messages due for a forwarding attempt, oldest first.
    pub async fn due_for_forwarding(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<InboxEntry>, InboxError> {
        let rows: Vec<EntryRow> = sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM inbox \
             WHERE forwarded_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 ORDER BY received_at"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(entry).collect()
    }

    /// When the next forwarding retry falls due, if any is waiting.
    pub async fn next_retry_at(&self) -> Result<Option<DateTime<Utc>>, InboxError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM inbox WHERE forwarded_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records that the destination accepted the message, and with `reported` that the hub has
    /// heard so too (a push answered in its reply), in the same commit.
    pub async fn mark_forwarded(
        &self,
        id: MessageId,
        now: DateTime<Utc>,
        reported: bool,
    ) -> Result<(), InboxError> {
        sqlx::query(
            "UPDATE inbox SET forwarded_at = $1, attempts = attempts + 1, last_error = NULL, \
             reported_at = CASE WHEN $2 THEN $1 ELSE reported_at END WHERE message_id = $3",
        )
        .bind(now)
        .bind(reported)
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or given up (`retry_at` = `None`).
    pub async fn mark_attempt_failed(
        &self,
        id: MessageId,
        now: DateTime<Utc>,
        error: &str,
        retry_in: Option<Duration>,
    ) -> Result<(), InboxError> {
        match retry_in {
            Some(delay) => {
                let next = now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::seconds(60));
                sqlx::query(
                    "UPDATE inbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE message_id = $3",
                )
                .bind(error)
                .bind(next)
                .bind(id.to_string())
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE inbox SET attempts = attempts + 1, last_error = $1, failed_at = $2 WHERE message_id = $3",
                )
                .bind(error)
                .bind(now)
                .bind(id.to_string())
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Forwarded or failed messages whose outcome the hub has not acknowledged.
    pub async fn unreported(&self) -> Result<Vec<InboxEntry>, InboxError> {
        let rows: Vec<EntryRow> = sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM inbox \
             WHERE reported_at IS NULL AND (forwarded_at IS NOT NULL OR failed_at IS NOT NULL) ORDER BY received_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(entry).collect()
    }

    /// Records that the hub acknowledged the outcome.
    pub async fn mark_reported(&self, id: MessageId, now: DateTime<Utc>) -> Result<(), InboxError> {
        sqlx::query("UPDATE inbox SET reported_at = $1 WHERE message_id = $2")
            .bind(now)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets messages whose outcome the hub acknowledged before `before`; returns how many.
    /// Their ids no longer de-duplicate, so `before` must be far behind any lease the hub gives
    /// (the agent keeps 7 days; a lease is minutes).
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64, InboxError> {
        let deleted: Vec<String> = sqlx::query_scalar(
            "DELETE FROM inbox WHERE reported_at IS NOT NULL AND reported_at < $1 \
             RETURNING message_id",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        let mut held = self.held.lock().expect("not poisoned");
        for id in &deleted {
            if let Ok(id) = MessageId::parse(id) {
                held.remove(&id);
            }
        }
        Ok(deleted.len() as u64)
    }

    /// Messages not yet finished (forwarding or reporting still to do), for the heartbeat.
    pub async fn depth(&self) -> Result<u64, InboxError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE reported_at IS NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(count.max(0) as u64)
    }

    /// One entry by id, for tests and diagnostics.
    pub async fn entry(&self, id: MessageId) -> Result<Option<InboxEntry>, InboxError> {
        let row: Option<EntryRow> = sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM inbox WHERE message_id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(entry).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_400_000 + seconds, 0).unwrap()
    }

    fn message(n: u128) -> GatewayMessage {
        GatewayMessage {
            message_id: MessageId::from_uuid(uuid::Uuid::from_u128(n)),
            message_type: MessageType::fhir(),
            payload: serde_json::json!({ "resourceType": "ServiceRequest" }),
            destination: Destination::parse("log:").unwrap(),
            signature: None,
        }
    }

    #[tokio::test]
    async fn a_new_message_is_known_without_a_read_and_stored_by_a_connection_that_does_not_sync() {
        let folder = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&folder.path().join("inbox.db")).await.unwrap();
        let first = message(1);
        assert!(inbox.claim_new(first.message_id));
        inbox.store_arrival(&first, at(0)).await.unwrap();
        // Redelivered: not new; `receive` then takes it as a redelivery.
        assert!(!inbox.claim_new(first.message_id));
        assert!(!inbox.receive(&first, at(9)).await.unwrap());
        let entry = inbox.entry(first.message_id).await.unwrap().unwrap();
        assert_eq!((entry.received_at, entry.attempts), (at(0), 0));
        // Known as held after a restart too, and no longer once pruned.
        let second = message(2);
        assert!(inbox.receive(&second, at(0)).await.unwrap());
        assert!(!inbox.claim_new(second.message_id));
        inbox
            .mark_forwarded(second.message_id, at(1), true)
            .await
            .unwrap();
        let inbox = Inbox::open(&folder.path().join("inbox.db")).await.unwrap();
        assert!(!inbox.claim_new(first.message_id));
        assert!(!inbox.claim_new(second.message_id));
        assert_eq!(inbox.prune(at(500)).await.unwrap(), 1);
        assert!(inbox.claim_new(second.message_id), "pruned, so new again");
        assert!(inbox.claim_new(message(3).message_id));
        // The arrival's commit does not wait for the disk; the forward's record does, and its
        // sync of the write-ahead log writes the arrival out too.
        let synchronous = |pool: &SqlitePool| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(synchronous(&inbox.arrivals).await, 1, "NORMAL");
        assert_eq!(synchronous(&inbox.pool).await, 2, "FULL");
    }

    #[tokio::test]
    async fn pruning_forgets_only_what_the_hub_acknowledged_before_the_cutoff() {
        let folder = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&folder.path().join("inbox.db")).await.unwrap();
        for n in 1..=3 {
            inbox.receive(&message(n), at(0)).await.unwrap();
        }
        // 1: forwarded and acknowledged long ago; 2: acknowledged recently; 3: still to do.
        for (n, reported) in [(1, at(10)), (2, at(1_000))] {
            let id = message(n).message_id;
            inbox.mark_forwarded(id, at(5), false).await.unwrap();
            inbox.mark_reported(id, reported).await.unwrap();
        }
        assert_eq!(inbox.prune(at(500)).await.unwrap(), 1);
        assert!(inbox.entry(message(1).message_id).await.unwrap().is_none());
        assert!(inbox.entry(message(2).message_id).await.unwrap().is_some());
        assert!(inbox.entry(message(3).message_id).await.unwrap().is_some());
        assert_eq!(inbox.depth().await.unwrap(), 1);
    }
}
