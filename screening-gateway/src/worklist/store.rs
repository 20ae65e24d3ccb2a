//! The worklist's items in the agent's SQLite file (beside the inbox, so an order the inbox holds is
//! never lost between delivery and the modality's query).

use chrono::{DateTime, Utc};
use screening_core::ids::MessageId;
use screening_core::procedure::{self, MppsRefusal, ProcedureReport, ProcedureStatus};
use screening_core::worklist::{WorklistItem, WorklistOrder};
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
    /// Signalled when a report for the hub is queued (a permit is kept if nobody waits yet).
    queued: std::sync::Arc<tokio::sync::Notify>,
    /// When a modality last queried the worklist (C-FIND), reported in the agent's heartbeat.
    last_query_at: std::sync::Arc<std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>>,
}

impl WorklistStore {
    /// Opens (creating) the worklist in the SQLite file at `path` (the agent's inbox file).
    pub async fn open(path: &std::path::Path) -> Result<Self, WorklistStoreError> {
        let pool = crate::agent_file::open(path, 4, sqlx::migrate!("./migrations/worklist"))
            .await
            .map_err(WorklistStoreError)?;
        Ok(Self {
            pool,
            queued: Default::default(),
            last_query_at: Default::default(),
        })
    }

    /// Notes that a modality queried the worklist now.
    pub fn note_query(&self, at: chrono::DateTime<chrono::Utc>) {
        *self.last_query_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
    }

    /// When a modality last queried the worklist since the agent started.
    pub fn last_query_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        *self.last_query_at.lock().unwrap_or_else(|e| e.into_inner())
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
                     (message_id, accession_number, study_instance_uid, status, start_date, item, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(item.message_id.to_string())
                .bind(&item.accession_number)
                .bind(&item.study_instance_uid)
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

    /// The open items (scheduled or in progress) starting between the two dates (DA, inclusive)
    /// when given, earliest first; the caller matches them against a query
    /// (`WorklistQuery::matches`, in screening-core).
    pub async fn open_items(
        &self,
        dates: Option<(String, String)>,
    ) -> Result<Vec<WorklistItem>, WorklistStoreError> {
        let (first, last) = dates.unwrap_or_else(|| ("00000000".into(), "99999999".into()));
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT item FROM worklist_items WHERE status IN ('SCHEDULED', 'IN PROGRESS') \
             AND start_date BETWEEN $1 AND $2 ORDER BY start_date, message_id",
        )
        .bind(first)
        .bind(last)
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

    /// Applies a modality's N-CREATE or N-SET to its procedure step, atomically: checks the
    /// transition (screening-core's rules), records the step, moves the worklist item, and queues
    /// a report for the hub when the status changed for an order this gateway holds.
    pub async fn perform(
        &self,
        step: &StepUpdate,
    ) -> Result<Result<ProcedureStatus, MppsRefusal>, WorklistStoreError> {
        let mut tx = self.pool.begin().await?;
        let known: Option<(String, Option<String>, String)> = sqlx::query_as(
            "SELECT status, message_id, station_ae_title FROM procedure_steps WHERE mpps_uid = $1",
        )
        .bind(&step.instance)
        .fetch_optional(&mut *tx)
        .await?;
        let current = known
            .as_ref()
            .and_then(|(status, _, _)| ProcedureStatus::from_dicom(status));
        // The modality named in this request, else the one that created the step, else the caller.
        let station = step
            .station_ae_title
            .clone()
            .or_else(|| known.as_ref().map(|(_, _, station)| station.clone()))
            .unwrap_or_else(|| step.calling_ae_title.clone());
        let requested = step.requested_status.as_deref();
        let (status, message_id) = match &step.kind {
            StepKind::Create {
                accession_number,
                study_instance_uid,
            } => {
                let status = match procedure::create(&step.instance, current, requested) {
                    Ok(status) => status,
                    Err(refusal) => return Ok(Err(refusal)),
                };
                let message_id: Option<(String,)> = sqlx::query_as(
                    "SELECT message_id FROM worklist_items \
                     WHERE status IN ('SCHEDULED', 'IN PROGRESS') \
                     AND (accession_number = $1 OR study_instance_uid = $2) \
                     ORDER BY updated_at DESC LIMIT 1",
                )
                // An absent key matches nothing (no stored value is NUL).
                .bind(accession_number.as_deref().unwrap_or("\u{0}"))
                .bind(study_instance_uid.as_deref().unwrap_or("\u{0}"))
                .fetch_optional(&mut *tx)
                .await?;
                (status, message_id.map(|(id,)| id))
            }
            StepKind::Set => match procedure::set(&step.instance, current, requested) {
                Ok(status) => (status, known.and_then(|(_, message_id, _)| message_id)),
                Err(refusal) => return Ok(Err(refusal)),
            },
        };
        sqlx::query(
            "INSERT INTO procedure_steps (mpps_uid, message_id, status, station_ae_title, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (mpps_uid) DO UPDATE SET \
             status = excluded.status, station_ae_title = excluded.station_ae_title, \
             updated_at = excluded.updated_at",
        )
        .bind(&step.instance)
        .bind(&message_id)
        .bind(status.dicom())
        .bind(&station)
        .bind(step.at)
        .execute(&mut *tx)
        .await?;
        let changed = current != Some(status);
        if let (Some(message_id), true) = (&message_id, changed) {
            sqlx::query(
                "UPDATE worklist_items SET status = $1, updated_at = $2 WHERE message_id = $3",
            )
            .bind(status.dicom())
            .bind(step.at)
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
            let report = ProcedureReport {
                message_id: MessageId::parse(message_id)
                    .map_err(|e| WorklistStoreError(format!("a stored message id: {e}")))?,
                status,
                at: step.at,
                station_ae_title: station.clone(),
                reason: step.reason.clone(),
            };
            sqlx::query("INSERT INTO procedure_reports (report, created_at) VALUES ($1, $2)")
                .bind(
                    serde_json::to_string(&report)
                        .map_err(|e| WorklistStoreError(e.to_string()))?,
                )
                .bind(step.at)
                .execute(&mut *tx)
                .await?;
        }
        if message_id.is_none() {
            tracing::warn!(
                mpps_uid = %step.instance,
                "worklist: a procedure step for an order this gateway does not hold; not reported"
            );
        }
        tx.commit().await?;
        if changed && message_id.is_some() {
            self.queued.notify_one();
        }
        Ok(Ok(status))
    }

    /// Forgets items scheduled before `before` (a UK date), reports the hub acknowledged before
    /// `settled_before`, and steps last changed before it; returns the items removed.
    pub async fn prune(
        &self,
        before: chrono::NaiveDate,
        settled_before: DateTime<Utc>,
    ) -> Result<u64, WorklistStoreError> {
        let mut tx = self.pool.begin().await?;
        // Start dates are DICOM DA (YYYYMMDD), which sort as dates.
        let items = sqlx::query("DELETE FROM worklist_items WHERE start_date < $1")
            .bind(before.format("%Y%m%d").to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "DELETE FROM procedure_reports WHERE reported_at IS NOT NULL AND reported_at < $1",
        )
        .bind(settled_before)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM procedure_steps WHERE updated_at < $1")
            .bind(settled_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(items)
    }

    /// Returns once a report has been queued since the last call (at once if one was meanwhile).
    pub async fn report_queued(&self) {
        self.queued.notified().await;
    }

    /// Reports the hub has not acknowledged yet, oldest first, with their queue ids.
    pub async fn unreported(&self) -> Result<Vec<(i64, ProcedureReport)>, WorklistStoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, report FROM procedure_reports WHERE reported_at IS NULL ORDER BY id LIMIT 100",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, json)| {
                serde_json::from_str(&json)
                    .map(|report| (id, report))
                    .map_err(|e| WorklistStoreError(format!("a stored report: {e}")))
            })
            .collect()
    }

    /// Records that the hub has the report `id`.
    pub async fn mark_reported(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), WorklistStoreError> {
        sqlx::query("UPDATE procedure_reports SET reported_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A modality's report on one procedure step (MPPS N-CREATE or N-SET).
#[derive(Debug, Clone)]
pub struct StepUpdate {
    /// The MPPS SOP instance UID.
    pub instance: String,
    /// Create or set.
    pub kind: StepKind,
    /// PerformedProcedureStepStatus, as sent.
    pub requested_status: Option<String>,
    /// PerformedStationAETitle, when the request names it.
    pub station_ae_title: Option<String>,
    /// The association's calling AE title: the station when neither this request nor the step's
    /// creation named one.
    pub calling_ae_title: String,
    /// When it happened (the step's start or end, else now).
    pub at: DateTime<Utc>,
    /// A discontinued step's reason, when given.
    pub reason: Option<String>,
}

/// N-CREATE names the order it performs; N-SET names only the step.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// N-CREATE, with the scheduled step's AccessionNumber and StudyInstanceUID.
    Create {
        /// From ScheduledStepAttributesSequence.
        accession_number: Option<String>,
        /// From ScheduledStepAttributesSequence.
        study_instance_uid: Option<String>,
    },
    /// N-SET.
    Set,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opening_creates_every_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = WorklistStore::open(&dir.path().join("agent.db"))
            .await
            .unwrap();
        let tables: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        let names: Vec<&str> = tables.iter().map(|(name,)| name.as_str()).collect();
        assert!(names.contains(&"procedure_steps"), "{names:?}");
        assert!(names.contains(&"procedure_reports"), "{names:?}");
        assert!(names.contains(&"worklist_items"), "{names:?}");
    }
}
