//! The worklist's items in the agent's SQLite file (beside the inbox, so an order the inbox holds is
//! never lost between delivery and the modality's query).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use screening_core::worklist::{WorklistItem, WorklistOrder};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// The worklist store failed.
#[derive(Debug, thiserror::Error)]
#[error("worklist store: {0}")]
pub struct WorklistStoreError(String);

impl From<sqlx::Error> for WorklistStoreError {
    fn from(error: sqlx::Error) -> Self {
        Self(error.to_string())
    }
}

/// A step on the worklist is scheduled until the modality reports on it.
pub const SCHEDULED: &str = "SCHEDULED";
/// Off the worklist: done.
pub const COMPLETED: &str = "COMPLETED";
/// Off the worklist: stopped, replaced by a resend, or revoked.
pub const DISCONTINUED: &str = "DISCONTINUED";

/// What storing an order did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new item is on the worklist (any earlier item of the same appointment is replaced).
    Scheduled,
    /// The same message again: nothing changed.
    AlreadyThere,
    /// The appointment's items were taken off (`count` of them).
    Revoked {
        /// How many open items were taken off.
        count: u64,
    },
}

/// The worklist's items.
#[derive(Clone)]
pub struct WorklistStore {
    pool: SqlitePool,
}

impl WorklistStore {
    /// Opens (creating) the worklist in the SQLite file at `path` (the agent's inbox file).
    pub async fn open(path: &std::path::Path) -> Result<Self, WorklistStoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| WorklistStoreError(format!("creating {}: {e}", parent.display())))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an order reported as forwarded is on disk, not just in the OS cache.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        // Its own migration table, so the inbox's migrations and these never see each other's.
        sqlx::raw_sql(include_str!(
            "../../migrations/worklist/0001_worklist_items.sql"
        ))
        .execute(&pool)
        .await?;
        Ok(Self { pool })
    }

    /// Puts an order on the worklist, or takes the appointment's item off for a revoke. Idempotent
    /// by message id; a new message for the same appointment (a Resend) replaces the open item.
    pub async fn store(
        &self,
        order: &WorklistOrder,
        now: DateTime<Utc>,
    ) -> Result<Stored, WorklistStoreError> {
        let mut tx = self.pool.begin().await?;
        let stored = match order {
            WorklistOrder::Schedule(item) => {
                let json = serde_json::to_string(item.as_ref())
                    .map_err(|e| WorklistStoreError(e.to_string()))?;
                let inserted = sqlx::query(
                    "INSERT INTO worklist_items \
                     (message_id, accession_number, status, start_date, item, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(item.message_id.to_string())
                .bind(&item.accession_number)
                .bind(SCHEDULED)
                .bind(&item.start_date)
                .bind(json)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    Stored::AlreadyThere
                } else {
                    sqlx::query(
                        "UPDATE worklist_items SET status = $1, updated_at = $2 \
                         WHERE accession_number = $3 AND message_id <> $4 AND status = $5",
                    )
                    .bind(DISCONTINUED)
                    .bind(now)
                    .bind(&item.accession_number)
                    .bind(item.message_id.to_string())
                    .bind(SCHEDULED)
                    .execute(&mut *tx)
                    .await?;
                    Stored::Scheduled
                }
            }
            WorklistOrder::Revoke { accession_number } => {
                let count = sqlx::query(
                    "UPDATE worklist_items SET status = $1, updated_at = $2 \
                     WHERE accession_number = $3 AND status = $4",
                )
                .bind(DISCONTINUED)
                .bind(now)
                .bind(accession_number)
                .bind(SCHEDULED)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                Stored::Revoked { count }
            }
        };
        tx.commit().await?;
        Ok(stored)
    }

    /// The open items (scheduled or in progress), earliest first; the caller matches them
    /// against a query (`WorklistQuery::matches`, in screening-core).
    pub async fn open_items(&self) -> Result<Vec<WorklistItem>, WorklistStoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT item FROM worklist_items WHERE status IN ('SCHEDULED', 'IN PROGRESS') \
             ORDER BY start_date, message_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows
            .into_iter()
            .map(|(json,)| {
                serde_json::from_str::<WorklistItem>(&json)
                    .map_err(|e| WorklistStoreError(format!("a stored item: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        items.sort_by(|a, b| (&a.start_date, &a.start_time).cmp(&(&b.start_date, &b.start_time)));
        Ok(items)
    }
}
