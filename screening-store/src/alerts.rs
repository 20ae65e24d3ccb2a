//! Alerts as stored: what the alert rules need to see of each gateway, the alerts that are open,
//! their history, and the webhook queue (each alert event is one notification to send).

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use screening_core::alert::{AlertChange, AlertRule, AlertTransition, GatewayObservation};
use screening_core::prelude::*;

/// An alert, open or resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// Its number.
    pub id: i64,
    /// Which rule.
    pub rule: AlertRule,
    /// Which gateway.
    pub gateway_id: GatewayId,
    /// The gateway's name.
    pub gateway_name: String,
    /// The gateway's setting (whose clinic pages show the banner).
    pub setting_id: SettingId,
    /// What staff read.
    pub summary: String,
    /// Since when its condition held.
    pub since: DateTime<Utc>,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// When it resolved; `None` while open.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Where an alert event's webhook notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookState {
    /// No webhook was configured when the event happened.
    NotConfigured,
    /// Waiting to be sent (or to be tried again).
    Pending,
    /// The receiver took it.
    Sent,
}

impl WebhookState {
    fn code(self) -> &'static str {
        match self {
            WebhookState::NotConfigured => "none",
            WebhookState::Pending => "pending",
            WebhookState::Sent => "sent",
        }
    }

    fn parse(code: &str) -> Result<Self, StoreError> {
        match code {
            "none" => Ok(WebhookState::NotConfigured),
            "pending" => Ok(WebhookState::Pending),
            "sent" => Ok(WebhookState::Sent),
            other => Err(StoreError::Corrupt(format!(
                "unknown webhook state {other:?}"
            ))),
        }
    }
}

/// One opening or resolution of an alert, with its webhook notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEventRecord {
    /// Its number: receivers de-duplicate by it.
    pub id: i64,
    /// Opened or resolved.
    pub transition: AlertTransition,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// The alert, as it is now.
    pub alert: AlertRecord,
    /// The webhook notification's state.
    pub webhook: WebhookState,
    /// How many times sending it was tried.
    pub webhook_attempts: u32,
    /// Why the last try failed.
    pub webhook_error: Option<String>,
}

/// Alerts, their history and their webhook queue. Implemented by both adapters.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// What the alert rules look at, for every gateway; `today` (the UK day) picks the clinics
    /// whose first slot the worklist rule watches.
    async fn gateway_observations(
        &self,
        today: chrono::NaiveDate,
    ) -> Result<Vec<GatewayObservation>, StoreError>;

    /// The alerts open now, oldest first.
    async fn open_alerts(&self) -> Result<Vec<AlertRecord>, StoreError>;

    /// Opens and resolves alerts in one transaction, each with its event; a change another
    /// instance made already is skipped (an alert opens once and resolves once). With `notify`,
    /// each event is queued for the webhook. Returns the events written.
    async fn apply_alert_changes(
        &self,
        changes: &[AlertChange],
        now: DateTime<Utc>,
        notify: bool,
    ) -> Result<Vec<(i64, AlertTransition)>, StoreError>;

    /// The newest `limit` alert events, newest first.
    async fn alert_events(&self, limit: u32) -> Result<Vec<AlertEventRecord>, StoreError>;

    /// Claims the oldest unsent webhook notification if it is due, for `lease` (another instance
    /// will not send it meanwhile). Notifications go out in order: while the oldest waits for
    /// its retry, the later ones wait behind it.
    async fn claim_alert_notification(
        &self,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<Option<AlertEventRecord>, StoreError>;

    /// The receiver took notification `event_id`.
    async fn alert_notification_sent(
        &self,
        event_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Sending notification `event_id` failed; try again at `retry_at`.
    async fn alert_notification_failed(
        &self,
        event_id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

#[derive(sqlx::FromRow)]
pub(crate) struct AlertRow {
    id: i64,
    rule: String,
    gateway_id: uuid::Uuid,
    gateway_name: String,
    setting_id: uuid::Uuid,
    summary: String,
    since: DateTime<Utc>,
    opened_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
}

impl TryFrom<AlertRow> for AlertRecord {
    type Error = StoreError;

    fn try_from(row: AlertRow) -> Result<Self, StoreError> {
        Ok(AlertRecord {
            id: row.id,
            rule: AlertRule::parse(&row.rule)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown alert rule {:?}", row.rule)))?,
            gateway_id: GatewayId::from_uuid(row.gateway_id),
            gateway_name: row.gateway_name,
            setting_id: SettingId::from_uuid(row.setting_id),
            summary: row.summary,
            since: row.since,
            opened_at: row.opened_at,
            resolved_at: row.resolved_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AlertEventRow {
    event_id: i64,
    kind: String,
    occurred_at: DateTime<Utc>,
    webhook_status: String,
    webhook_attempts: i32,
    webhook_error: Option<String>,
    #[sqlx(flatten)]
    alert: AlertRow,
}

impl TryFrom<AlertEventRow> for AlertEventRecord {
    type Error = StoreError;

    fn try_from(row: AlertEventRow) -> Result<Self, StoreError> {
        Ok(AlertEventRecord {
            id: row.event_id,
            transition: AlertTransition::parse(&row.kind).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown alert event {:?}", row.kind))
            })?,
            occurred_at: row.occurred_at,
            webhook: WebhookState::parse(&row.webhook_status)?,
            webhook_attempts: u32::try_from(row.webhook_attempts).unwrap_or(0),
            webhook_error: row.webhook_error,
            alert: row.alert.try_into()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ObservationRow {
    id: uuid::Uuid,
    name: String,
    setting_id: uuid::Uuid,
    created_at: DateTime<Utc>,
    last_seen_at: Option<DateTime<Utc>>,
    oldest_pending_at: Option<DateTime<Utc>>,
    unresolved_failures: i64,
    earliest_failure_at: Option<DateTime<Utc>>,
    echo_requested_at: Option<DateTime<Utc>>,
    echo_proven_at: Option<DateTime<Utc>>,
    echo_round_trip_ms: Option<i64>,
    echo_answered_at: Option<DateTime<Utc>>,
    echo_error: Option<String>,
    pushes_by_relay: bool,
    relay_listener_connected: Option<bool>,
    relay_listener_since: Option<DateTime<Utc>>,
    worklist_served: Option<bool>,
    worklist_queried_at: Option<DateTime<Utc>>,
    first_slot_today: Option<DateTime<Utc>>,
}

impl From<ObservationRow> for GatewayObservation {
    fn from(row: ObservationRow) -> Self {
        GatewayObservation {
            gateway_id: GatewayId::from_uuid(row.id),
            gateway_name: row.name,
            setting_id: SettingId::from_uuid(row.setting_id),
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            oldest_pending_at: row.oldest_pending_at,
            unresolved_failures: row.unresolved_failures.max(0) as u64,
            earliest_failure_at: row.earliest_failure_at,
            echo: screening_core::echo::EchoRecord {
                requested_at: row.echo_requested_at,
                proven_at: row.echo_proven_at,
                round_trip_ms: row.echo_round_trip_ms,
                answered_at: row.echo_answered_at,
                last_error: row.echo_error,
            },
            pushes_by_relay: row.pushes_by_relay,
            relay_listener: row
                .relay_listener_connected
                .zip(row.relay_listener_since.or(row.last_seen_at)),
            serves_worklist: row.worklist_served.unwrap_or(false),
            worklist_queried_at: row.worklist_queried_at,
            first_slot_today: row.first_slot_today,
        }
    }
}

impl AlertRecord {
    /// The alert as the core's rules see an open one.
    pub fn as_open(&self) -> screening_core::alert::OpenAlert {
        screening_core::alert::OpenAlert {
            id: self.id,
            rule: self.rule,
            gateway_id: self.gateway_id,
        }
    }
}

/// What to change at `now` so that exactly the conditions that hold have an open alert: every
/// gateway's observation (for `now`'s UK day) and the open alerts, through the core's rules.
/// Apply them with [`AlertStore::apply_alert_changes`].
pub async fn alert_changes(
    store: &dyn AlertStore,
    thresholds: &screening_core::alert::AlertThresholds,
    now: DateTime<Utc>,
) -> Result<Vec<AlertChange>, StoreError> {
    let observations = store
        .gateway_observations(screening_core::london::today(now))
        .await?;
    let holding = screening_core::alert::conditions(&observations, thresholds, now);
    let open: Vec<_> = store
        .open_alerts()
        .await?
        .iter()
        .map(AlertRecord::as_open)
        .collect();
    Ok(screening_core::alert::reconcile(&open, &holding))
}

pub(crate) fn webhook_state_code(notify: bool) -> &'static str {
    if notify {
        WebhookState::Pending.code()
    } else {
        WebhookState::NotConfigured.code()
    }
}

/// The columns of [`AlertRow`], from `alerts a JOIN gateways g`.
macro_rules! alert_columns {
    () => {
        "a.id, a.rule, a.gateway_id, g.name AS gateway_name, a.setting_id, a.summary, a.since, \
         a.opened_at, a.resolved_at"
    };
}

/// The columns of [`AlertEventRow`], from `alert_events e JOIN alerts a JOIN gateways g`.
macro_rules! alert_event_select {
    () => {
        concat!(
            "SELECT e.id AS event_id, e.kind, e.occurred_at, e.webhook_status, e.webhook_attempts, \
             e.webhook_error, ",
            alert_columns!(),
            " FROM alert_events e JOIN alerts a ON a.id = e.alert_id \
             JOIN gateways g ON g.id = a.gateway_id"
        )
    };
}

/// A failed message of gateway `g` that is still its appointment's latest (nobody resent it).
macro_rules! unresolved_failure {
    () => {
        "m.gateway_id = g.id AND m.confirmed_at IS NULL AND m.failed_at IS NOT NULL \
         AND m.id = (SELECT n.id FROM messages n WHERE n.appointment_id = m.appointment_id \
         ORDER BY n.created_at DESC, n.id DESC LIMIT 1)"
    };
}

/// Implements [`AlertStore`] for an adapter with a `pool` (reads), a `writer`,
/// `begin_write_on(&mut connection)` and `everything_changed()`.
macro_rules! impl_alert_store {
    (store: $Store:ty) => {
        #[async_trait::async_trait]
        impl $crate::alerts::AlertStore for $Store {
            async fn gateway_observations(
                &self,
                today: chrono::NaiveDate,
            ) -> Result<Vec<screening_core::alert::GatewayObservation>, StoreError> {
                let rows: Vec<$crate::alerts::ObservationRow> = sqlx::query_as(concat!(
                    "SELECT g.id, g.name, g.setting_id, g.created_at, g.last_seen_at, \
                     g.echo_requested_at, g.echo_proven_at, g.echo_round_trip_ms, \
                     g.echo_answered_at, g.echo_error, g.transport = 'relay' AS pushes_by_relay, \
                     g.relay_listener_connected, g.relay_listener_since, g.worklist_served, \
                     g.worklist_queried_at, \
                     (SELECT MIN(s.starts_at) FROM clinic_slots s JOIN clinics c ON c.id = s.clinic_id \
                      WHERE c.setting_id = g.setting_id AND c.clinic_date = $1) AS first_slot_today, \
                     (SELECT m.created_at FROM messages m WHERE m.gateway_id = g.id AND ",
                    pending!(),
                    " ORDER BY m.created_at LIMIT 1) AS oldest_pending_at, \
                     (SELECT COUNT(*) FROM messages m WHERE ",
                    unresolved_failure!(),
                    ") AS unresolved_failures, (SELECT m.failed_at FROM messages m WHERE ",
                    unresolved_failure!(),
                    " ORDER BY m.failed_at LIMIT 1) AS earliest_failure_at \
                     FROM gateways g ORDER BY g.name, g.id"
                ))
                .bind(today)
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn open_alerts(&self) -> Result<Vec<$crate::alerts::AlertRecord>, StoreError> {
                let rows: Vec<$crate::alerts::AlertRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    alert_columns!(),
                    " FROM alerts a JOIN gateways g ON g.id = a.gateway_id \
                     WHERE a.resolved_at IS NULL ORDER BY a.opened_at, a.id"
                ))
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn apply_alert_changes(
                &self,
                changes: &[screening_core::alert::AlertChange],
                now: DateTime<Utc>,
                notify: bool,
            ) -> Result<Vec<(i64, screening_core::alert::AlertTransition)>, StoreError> {
                use screening_core::alert::{AlertChange, AlertTransition};
                if changes.is_empty() {
                    return Ok(Vec::new());
                }
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                let mut written = Vec::new();
                for change in changes {
                    let (alert_id, transition) = match change {
                        AlertChange::Open(condition) => {
                            // The partial unique index refuses a second open alert for the same
                            // rule and gateway, so an instance that lost the race writes nothing.
                            let id: Option<i64> = sqlx::query_scalar(
                                "INSERT INTO alerts (rule, gateway_id, setting_id, summary, since, opened_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
                            )
                            .bind(condition.rule.code())
                            .bind(condition.gateway_id.as_uuid())
                            .bind(condition.setting_id.as_uuid())
                            .bind(&condition.summary)
                            .bind(condition.since)
                            .bind(now)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(crate::db)?;
                            match id {
                                Some(id) => (id, AlertTransition::Opened),
                                None => continue,
                            }
                        }
                        AlertChange::Resolve(alert) => {
                            let resolved = sqlx::query(
                                "UPDATE alerts SET resolved_at = $1 WHERE id = $2 AND resolved_at IS NULL",
                            )
                            .bind(now)
                            .bind(alert.id)
                            .execute(&mut *tx)
                            .await
                            .map_err(crate::db)?
                            .rows_affected();
                            if resolved == 0 {
                                continue;
                            }
                            (alert.id, AlertTransition::Resolved)
                        }
                    };
                    let event_id: i64 = sqlx::query_scalar(
                        "INSERT INTO alert_events (alert_id, kind, occurred_at, webhook_status, webhook_next_at) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    )
                    .bind(alert_id)
                    .bind(transition.code())
                    .bind(now)
                    .bind($crate::alerts::webhook_state_code(notify))
                    .bind(notify.then_some(now))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(crate::db)?;
                    written.push((event_id, transition));
                }
                tx.commit().await.map_err(crate::db)?;
                // The clinic pages show open alerts: they look again (alerts change rarely).
                if !written.is_empty() {
                    self.everything_changed();
                }
                Ok(written)
            }

            async fn alert_events(
                &self,
                limit: u32,
            ) -> Result<Vec<$crate::alerts::AlertEventRecord>, StoreError> {
                let rows: Vec<$crate::alerts::AlertEventRow> = sqlx::query_as(concat!(
                    alert_event_select!(),
                    " ORDER BY e.id DESC LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn claim_alert_notification(
                &self,
                now: DateTime<Utc>,
                lease: chrono::TimeDelta,
            ) -> Result<Option<$crate::alerts::AlertEventRecord>, StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                // The outer conditions are checked again on the row as it is when locked, so of
                // two instances claiming at once only one sees it due.
                let claimed: Option<i64> = sqlx::query_scalar(
                    "UPDATE alert_events SET webhook_next_at = $1, webhook_attempts = webhook_attempts + 1 \
                     WHERE id = (SELECT MIN(id) FROM alert_events WHERE webhook_status = 'pending') \
                     AND webhook_status = 'pending' AND webhook_next_at <= $2 RETURNING id",
                )
                .bind(now + lease)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(crate::db)?;
                let Some(event_id) = claimed else {
                    return Ok(None);
                };
                let row: $crate::alerts::AlertEventRow =
                    sqlx::query_as(concat!(alert_event_select!(), " WHERE e.id = $1"))
                        .bind(event_id)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(crate::db)?;
                tx.commit().await.map_err(crate::db)?;
                row.try_into().map(Some)
            }

            async fn alert_notification_sent(
                &self,
                event_id: i64,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE alert_events SET webhook_status = 'sent', webhook_sent_at = $1, \
                     webhook_error = NULL WHERE id = $2",
                )
                .bind(now)
                .bind(event_id)
                .execute(&mut *self.writer.acquire().await?)
                .await
                .map_err(crate::db)?;
                Ok(())
            }

            async fn alert_notification_failed(
                &self,
                event_id: i64,
                error: &str,
                retry_at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE alert_events SET webhook_error = $1, webhook_next_at = $2 \
                     WHERE id = $3 AND webhook_status = 'pending'",
                )
                .bind(error)
                .bind(retry_at)
                .bind(event_id)
                .execute(&mut *self.writer.acquire().await?)
                .await
                .map_err(crate::db)?;
                Ok(())
            }
        }
    };
}
