//! What the web app reads and writes beyond the core's ports: clinic lists with counts, the latest
//! message of each appointment, the admin's message and gateway views, and staff accounts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use screening_core::prelude::*;

/// A clinic as the clinic list shows it.
#[derive(Debug, Clone)]
pub struct ClinicSummary {
    /// The clinic.
    pub clinic: Clinic,
    /// The name of the setting (site) where it runs.
    pub setting_name: String,
    /// How many appointments are in each state; states with none are left out.
    pub counts: Vec<(AppointmentState, u64)>,
}

impl ClinicSummary {
    /// Appointments in `state`.
    pub fn count(&self, state: AppointmentState) -> u64 {
        self.counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    }

    /// All appointments.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }
}

/// What the clinic page shows of an appointment's latest message: its times and reason, not its
/// payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestMessage {
    /// The message.
    pub id: MessageId,
    /// Its appointment.
    pub appointment_id: AppointmentId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a gateway took it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When its destination accepted it.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When it was parked as failed.
    pub failed_at: Option<DateTime<Utc>>,
    /// The last error, naming the phase.
    pub last_error: Option<String>,
    /// What the modality last reported of the order, if anything.
    pub procedure: Option<ProcedureNote>,
}

/// What the modality last reported of an order, as recorded on its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcedureNote {
    /// Started, completed or discontinued.
    pub status: screening_core::procedure::ProcedureStatus,
    /// When.
    pub at: DateTime<Utc>,
    /// The modality's AE title.
    pub station: String,
    /// A discontinued step's reason.
    pub reason: Option<String>,
}

impl LatestMessage {
    /// Its status, by the same rule as `Message::status`.
    pub fn status(&self) -> MessageStatus {
        MessageStatus::from_times(
            self.delivered_at.is_some(),
            self.confirmed_at.is_some(),
            self.failed_at.is_some(),
        )
    }
}

/// One appointment of the clinic page.
#[derive(Debug, Clone)]
pub struct ClinicPageRow {
    /// The appointment.
    pub appointment: Appointment,
    /// Who is booked.
    pub participant: Participant,
    /// The slot.
    pub slot: ClinicSlot,
    /// Its latest message, if it has one.
    pub latest: Option<LatestMessage>,
}

/// Everything the clinic page shows, read in two queries.
#[derive(Debug, Clone)]
pub struct ClinicPage {
    /// The clinic with its site and counts.
    pub summary: ClinicSummary,
    /// Its appointments in slot order.
    pub rows: Vec<ClinicPageRow>,
}

/// Which messages the admin lists.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// Only messages in this status.
    pub status: Option<MessageStatus>,
    /// Only messages for this gateway.
    pub gateway_id: Option<GatewayId>,
    /// Only messages for the participant with this NHS number.
    pub nhs_number: Option<NhsNumber>,
    /// Only messages of the appointment with this accession number (`BS` and 14 hex digits,
    /// `screening_core::worklist::accession_number`); any other text matches nothing.
    pub accession_number: Option<String>,
    /// Only messages created at or after this.
    pub created_from: Option<DateTime<Utc>>,
    /// Only messages created before this.
    pub created_before: Option<DateTime<Utc>>,
    /// Skip this many of the matches (pages).
    pub offset: u32,
    /// At most this many, newest first (0 means 100).
    pub limit: u32,
}

/// One step in a message's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStep {
    /// Made by Send to modality (or a resend); the detail is who.
    Created,
    /// A gateway took it; the detail is the attempt.
    Taken,
    /// Back in the queue: its lease expired, or the relay could not hand it on; the detail is why.
    Returned,
    /// The gateway's destination accepted it.
    Confirmed,
    /// Parked as failed; the detail is why.
    Failed,
    /// A newer message replaced it (the related message).
    Resent,
    /// The modality reported on the order; the detail is what and where.
    Procedure,
    /// Retention removed its payload.
    PayloadRemoved,
}

impl MessageStep {
    fn parse(code: &str) -> Result<Self, StoreError> {
        Ok(match code {
            "created" => Self::Created,
            "taken" => Self::Taken,
            "returned" => Self::Returned,
            "confirmed" => Self::Confirmed,
            "failed" => Self::Failed,
            "resent" => Self::Resent,
            "procedure" => Self::Procedure,
            "payload_removed" => Self::PayloadRemoved,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown message step {other:?}"
                )))
            }
        })
    }
}

/// One entry of a message's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// What happened.
    pub step: MessageStep,
    /// By whom or why, where the step has it.
    pub detail: Option<String>,
    /// The message it replaced or was replaced by.
    pub related: Option<MessageId>,
}

impl MessageEvent {
    pub(crate) fn from_row(
        (at, step, detail, related): (DateTime<Utc>, String, Option<String>, Option<uuid::Uuid>),
    ) -> Result<Self, StoreError> {
        Ok(Self {
            at,
            step: MessageStep::parse(&step)?,
            detail,
            related: related.map(MessageId::from_uuid),
        })
    }
}

/// A message with the participant's NHS number, for the admin's list (shown masked).
#[derive(Debug, Clone)]
pub struct MessageListing {
    /// The message.
    pub message: Message,
    /// The participant's NHS number.
    pub nhs_number: NhsNumber,
}

/// A gateway's queue as the admin sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayBacklog {
    /// The gateway.
    pub gateway_id: GatewayId,
    /// Messages waiting for it.
    pub pending: u64,
    /// When the oldest of them was created.
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

/// One gateway's figures for operations, read at each metrics scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayFigures {
    /// The gateway.
    pub gateway_id: GatewayId,
    /// How many of its messages are in each status (every status, zeros included).
    pub by_status: Vec<(MessageStatus, u64)>,
    /// When its oldest pending message was created.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// When it last called the hub.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Whether its agent last reported its relay listener connected; `None`: it did not say.
    pub relay_listener_connected: Option<bool>,
}

impl GatewayFigures {
    /// How many of its messages are in `status`.
    pub fn messages(&self, status: MessageStatus) -> u64 {
        self.by_status
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, count)| *count)
    }
}

/// A staff account as stored: the user and their argon2 password hash (PHC string).
#[derive(Debug, Clone)]
pub struct StaffAccount {
    /// The user.
    pub user: StaffUser,
    /// `$argon2id$…`; never shown or logged.
    pub password_hash: String,
}

/// A staff account as the admin's list shows it (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffListing {
    /// The user.
    pub user: StaffUser,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// When an admin disabled it; `None` while it may sign in.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A change an admin makes to a staff account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffChange {
    /// It may no longer sign in; its sessions end.
    Disable,
    /// It may sign in again.
    Enable,
    /// A new role, effective on the next request.
    Role(StaffRole),
    /// A new password (its argon2 hash); its sessions end.
    Password(String),
}

/// The web app's reads and writes. Implemented by both adapters through one SQL implementation (the crate-private `impl_web_store!` macro).
#[async_trait]
pub trait WebStore: Send + Sync {
    /// Every clinic with its counts, by date then name.
    async fn clinics(&self) -> Result<Vec<ClinicSummary>, StoreError>;

    /// One clinic with its counts.
    async fn clinic(&self, clinic_id: ClinicId) -> Result<ClinicSummary, StoreError>;

    /// The clinic page: the clinic, its appointments in slot order, each with its latest message.
    async fn clinic_page(&self, clinic_id: ClinicId) -> Result<ClinicPage, StoreError>;

    /// The latest message of each of the clinic's appointments that has one.
    async fn clinic_latest_messages(
        &self,
        clinic_id: ClinicId,
    ) -> Result<Vec<LatestMessage>, StoreError>;

    /// Messages matching the filter, newest first, with the participant's NHS number.
    async fn messages(&self, filter: &MessageFilter) -> Result<Vec<MessageListing>, StoreError>;

    /// A message's history, oldest first.
    async fn message_events(&self, message_id: MessageId) -> Result<Vec<MessageEvent>, StoreError>;

    /// One message with the participant's NHS number.
    async fn message_listing(&self, message_id: MessageId) -> Result<MessageListing, StoreError>;

    /// Pending counts and the oldest pending message of every gateway that has any.
    async fn gateway_backlogs(&self) -> Result<Vec<GatewayBacklog>, StoreError>;

    /// Every gateway's message counts by status, oldest pending message and last contact: the
    /// figures a metrics scrape reads (two queries, whatever the number of gateways).
    async fn gateway_figures(&self) -> Result<Vec<GatewayFigures>, StoreError>;

    /// Whether the database answers and has every migration this build knows applied.
    async fn ready(&self) -> Result<(), StoreError>;

    /// The read connections: how many are open, and how many of those are idle.
    fn connections(&self) -> (u32, usize);

    /// Every setting, by name (the gateway form's choices).
    async fn settings(&self) -> Result<Vec<Setting>, StoreError>;

    /// Creates a staff account, or replaces the one with the same username (name, role, password).
    async fn save_staff_account(
        &self,
        account: &StaffAccount,
        now: DateTime<Utc>,
    ) -> Result<StaffUser, StoreError>;

    /// The account with this username, if any and not disabled (what signing in checks).
    async fn staff_account(&self, username: &Username) -> Result<Option<StaffAccount>, StoreError>;

    /// Every staff account, disabled ones included, by username.
    async fn staff_accounts(&self) -> Result<Vec<StaffListing>, StoreError>;

    /// Changes an account; `NotFound` when no account has the username. Disabling and a new
    /// password end the account's sessions in the same transaction.
    async fn change_staff_account(
        &self,
        username: &Username,
        change: &StaffChange,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Records a new sign-in session by the hash of its token, and forgets expired sessions.
    async fn create_session(
        &self,
        token_hash: &str,
        user_id: UserId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The user of a session that has not expired (their account as it is now).
    async fn session_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<StaffUser>, StoreError>;

    /// Ends a session (signing out); an unknown session is not an error.
    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError>;

    /// Counts one sign-in attempt against `key` (a username or a client address) and returns the
    /// attempts in its window, this one included. A window starts at a key's first attempt and
    /// ends `window` later. Atomic, on every instance: parallel attempts each get their own count.
    async fn count_sign_in_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: chrono::TimeDelta,
    ) -> Result<u32, StoreError>;

    /// Takes back one attempt counted against `key` (one that succeeded), or all of them.
    async fn forgive_sign_in_attempts(&self, key: &str, all: bool) -> Result<(), StoreError>;

    /// Records what an admin did (or looked at).
    async fn record_admin_event(&self, event: &AdminEvent) -> Result<(), StoreError>;

    /// The newest `limit` admin events, newest first.
    async fn admin_events(&self, limit: u32) -> Result<Vec<AdminEvent>, StoreError>;
}

/// One thing an admin did, for the audit page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEvent {
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Who (their username).
    pub actor: String,
    /// What, in a few words ("showed a message's payload").
    pub action: String,
    /// What it was done to ("message 67e5…", "gateway Leeds").
    pub subject: String,
}

/// The SQL predicate of each message status, matching `Message::status`.
pub(crate) fn status_predicate(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Pending => pending!(),
        MessageStatus::Delivered => {
            "delivered_at IS NOT NULL AND confirmed_at IS NULL AND failed_at IS NULL"
        }
        MessageStatus::Confirmed => "confirmed_at IS NOT NULL",
        MessageStatus::Failed => "confirmed_at IS NULL AND failed_at IS NOT NULL",
    }
}

/// The id of appointment `a`'s newest message (a subquery; uses `messages_by_appointment`).
macro_rules! latest_message_id {
    () => {
        "SELECT n.id FROM messages n WHERE n.appointment_id = a.id \
         ORDER BY n.created_at DESC, n.id DESC LIMIT 1"
    };
}

/// [`latest_message_id!`] as a string, for a test of its query plan.
#[cfg(test)]
pub(crate) fn latest_message_sql() -> &'static str {
    latest_message_id!()
}

/// Implements [`WebStore`] for an adapter with a `pool` (reads), a `writer` and
/// `begin_write_on(&mut connection)`.
/// `appointment_low_hex` is the SQL for the low 56 bits of `m.appointment_id` as 14 upper-case hex
/// digits (what an accession number carries), which each database spells its own way.
macro_rules! impl_web_store {
    (store: $Store:ty, migrator: $migrator:path, appointment_low_hex: $low_hex:literal) => {
        impl $Store {
            async fn clinic_summaries(
                &self,
                clinic_id: Option<ClinicId>,
            ) -> Result<Vec<ClinicSummary>, StoreError> {
                let id = clinic_id.map(|id| id.as_uuid());
                let clinics: Vec<ClinicRow> = sqlx::query_as(
                    "SELECT c.id, c.setting_id, c.clinic_date, c.name, st.name AS setting_name \
                     FROM clinics c JOIN settings st ON st.id = c.setting_id \
                     WHERE ($1 IS NULL OR c.id = $1) ORDER BY c.clinic_date, c.name, c.id",
                )
                .bind(id)
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                let counts: Vec<CountRow> = sqlx::query_as(
                    "SELECT s.clinic_id, a.state, COUNT(*) AS n FROM appointments a \
                     JOIN clinic_slots s ON s.id = a.clinic_slot_id \
                     WHERE ($1 IS NULL OR s.clinic_id = $1) GROUP BY s.clinic_id, a.state",
                )
                .bind(id)
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                crate::rows::clinic_summaries(clinics, counts)
            }

            async fn listings(&self, filter: &MessageFilter) -> Result<Vec<MessageListing>, StoreError> {
                let predicate = filter.status.map_or("1 = 1", crate::web::status_predicate);
                let limit = if filter.limit == 0 { 100 } else { filter.limit };
                // An accession number names the low 56 bits of its appointment's id.
                let accession = filter.accession_number.as_deref().map(|text| {
                    let text = text.trim().to_ascii_uppercase();
                    match text.strip_prefix("BS") {
                        Some(hex) if hex.len() == 14 && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
                            hex.to_string()
                        }
                        // Matches no appointment.
                        _ => "-".to_string(),
                    }
                });
                let rows: Vec<ListingRow> = sqlx::query_as(&format!(
                    "SELECT {}, (SELECT p.nhs_number FROM participants p WHERE p.id = m.participant_id) \
                     AS nhs_number FROM messages m WHERE {predicate} \
                     AND ($1 IS NULL OR m.gateway_id = $1) \
                     AND ($2 IS NULL OR m.participant_id IN (SELECT p.id FROM participants p WHERE p.nhs_number = $2)) \
                     AND ($3 IS NULL OR {} = $3) \
                     AND ($4 IS NULL OR m.created_at >= $4) AND ($5 IS NULL OR m.created_at < $5) \
                     ORDER BY m.created_at DESC, m.id DESC LIMIT $6 OFFSET $7",
                    message_columns!(),
                    $low_hex
                ))
                .bind(filter.gateway_id.map(|id| id.as_uuid()))
                .bind(filter.nhs_number.as_ref().map(|n| n.digits().to_string()))
                .bind(accession)
                .bind(filter.created_from)
                .bind(filter.created_before)
                .bind(i64::from(limit))
                .bind(i64::from(filter.offset))
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                rows.into_iter().map(MessageListing::try_from).collect()
            }
        }

        #[async_trait::async_trait]
        impl WebStore for $Store {
            async fn clinics(&self) -> Result<Vec<ClinicSummary>, StoreError> {
                self.clinic_summaries(None).await
            }

            async fn clinic(&self, clinic_id: ClinicId) -> Result<ClinicSummary, StoreError> {
                self.clinic_summaries(Some(clinic_id))
                    .await?
                    .pop()
                    .ok_or_else(|| StoreError::NotFound { what: "clinic", id: clinic_id.to_string() })
            }

            async fn clinic_page(&self, clinic_id: ClinicId) -> Result<ClinicPage, StoreError> {
                let clinic: Option<ClinicRow> = sqlx::query_as(
                    "SELECT c.id, c.setting_id, c.clinic_date, c.name, st.name AS setting_name \
                     FROM clinics c JOIN settings st ON st.id = c.setting_id WHERE c.id = $1",
                )
                .bind(clinic_id.as_uuid())
                .fetch_optional(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                let clinic = clinic.ok_or_else(|| StoreError::NotFound { what: "clinic", id: clinic_id.to_string() })?;
                let rows: Vec<PageRow> = sqlx::query_as(concat!(
                    "SELECT a.id AS appointment_id, a.clinic_slot_id, a.participant_id, a.state, a.version, \
                     p.first_name, p.last_name, p.date_of_birth, p.nhs_number, p.sex, s.starts_at, \
                     s.duration_minutes, m.id AS message_id, m.created_at AS message_created_at, \
                     m.delivered_at, m.confirmed_at, m.failed_at, m.last_error, m.procedure_status, \
                     m.procedure_at, m.procedure_station, m.procedure_reason \
                     FROM clinic_slots s JOIN appointments a ON a.clinic_slot_id = s.id \
                     JOIN participants p ON p.id = a.participant_id \
                     LEFT JOIN messages m ON m.id = (",
                    latest_message_id!(),
                    ") WHERE s.clinic_id = $1 ORDER BY s.starts_at, a.id"
                ))
                .bind(clinic_id.as_uuid())
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                crate::rows::clinic_page(clinic, rows)
            }

            async fn clinic_latest_messages(&self, clinic_id: ClinicId) -> Result<Vec<LatestMessage>, StoreError> {
                let rows: Vec<LatestRow> = sqlx::query_as(concat!(
                    "SELECT m.id, m.appointment_id, m.created_at, m.delivered_at, m.confirmed_at, m.failed_at, \
                     m.last_error, m.procedure_status, m.procedure_at, m.procedure_station, \
                     m.procedure_reason FROM clinic_slots s JOIN appointments a ON a.clinic_slot_id = s.id \
                     JOIN messages m ON m.id = (",
                    latest_message_id!(),
                    ") WHERE s.clinic_id = $1"
                ))
                .bind(clinic_id.as_uuid())
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                Ok(rows.into_iter().map(LatestMessage::from).collect())
            }

            async fn messages(&self, filter: &MessageFilter) -> Result<Vec<MessageListing>, StoreError> {
                self.listings(filter).await
            }

            async fn message_events(&self, message_id: MessageId) -> Result<Vec<crate::web::MessageEvent>, StoreError> {
                let rows: Vec<(DateTime<Utc>, String, Option<String>, Option<uuid::Uuid>)> = sqlx::query_as(
                    "SELECT occurred_at, step, detail, related_message_id FROM message_events \
                     WHERE message_id = $1 ORDER BY id",
                )
                .bind(message_id.as_uuid())
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                rows.into_iter().map(crate::web::MessageEvent::from_row).collect()
            }

            async fn message_listing(&self, message_id: MessageId) -> Result<MessageListing, StoreError> {
                let rows: Vec<ListingRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    message_columns!(),
                    ", (SELECT p.nhs_number FROM participants p WHERE p.id = m.participant_id) \
                     AS nhs_number FROM messages m WHERE m.id = $1"
                ))
                .bind(message_id.as_uuid())
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                rows.into_iter()
                    .next()
                    .ok_or_else(|| StoreError::NotFound { what: "message", id: message_id.to_string() })
                    .and_then(MessageListing::try_from)
            }

            async fn gateway_backlogs(&self) -> Result<Vec<GatewayBacklog>, StoreError> {
                // The oldest pending message through ORDER BY, not MIN(): an aggregate loses the
                // column's type on SQLite, where times are text.
                let rows: Vec<(uuid::Uuid, i64, Option<DateTime<Utc>>)> = sqlx::query_as(concat!(
                    "SELECT g.id, (SELECT COUNT(*) FROM messages m WHERE m.gateway_id = g.id AND ",
                    pending!(),
                    "), (SELECT m.created_at FROM messages m WHERE m.gateway_id = g.id AND ",
                    pending!(),
                    " ORDER BY m.created_at LIMIT 1) FROM gateways g"
                ))
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                Ok(rows
                    .into_iter()
                    .map(|(id, pending, oldest)| GatewayBacklog {
                        gateway_id: GatewayId::from_uuid(id),
                        pending: pending.max(0) as u64,
                        oldest_pending_at: oldest,
                    })
                    .collect())
            }

            async fn gateway_figures(&self) -> Result<Vec<GatewayFigures>, StoreError> {
                // Statuses through the one rule (MessageStatus::from_times), from which times are set.
                let counts: Vec<(uuid::Uuid, i32, i32, i32, i64)> = sqlx::query_as(
                    "SELECT gateway_id, \
                     CASE WHEN delivered_at IS NULL THEN 0 ELSE 1 END, \
                     CASE WHEN confirmed_at IS NULL THEN 0 ELSE 1 END, \
                     CASE WHEN failed_at IS NULL THEN 0 ELSE 1 END, COUNT(*) \
                     FROM messages GROUP BY 1, 2, 3, 4",
                )
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                type Row = (uuid::Uuid, Option<DateTime<Utc>>, Option<DateTime<Utc>>, Option<bool>);
                let gateways: Vec<Row> =
                    sqlx::query_as(concat!(
                        "SELECT g.id, g.last_seen_at, (SELECT m.created_at FROM messages m \
                         WHERE m.gateway_id = g.id AND ",
                        pending!(),
                        " ORDER BY m.created_at LIMIT 1), g.relay_listener_connected \
                         FROM gateways g ORDER BY g.id"
                    ))
                    .fetch_all(&mut *self.readers.acquire().await?)
                    .await
                    .map_err(crate::db)?;
                Ok(gateways
                    .into_iter()
                    .map(|(id, last_seen_at, oldest_pending_at, relay_listener_connected)| {
                        let by_status = MessageStatus::ALL
                            .into_iter()
                            .map(|status| {
                                let count = counts
                                    .iter()
                                    .filter(|(gateway, delivered, confirmed, failed, _)| {
                                        *gateway == id
                                            && MessageStatus::from_times(
                                                *delivered != 0,
                                                *confirmed != 0,
                                                *failed != 0,
                                            ) == status
                                    })
                                    .map(|row| row.4.max(0) as u64)
                                    .sum();
                                (status, count)
                            })
                            .collect();
                        GatewayFigures {
                            gateway_id: GatewayId::from_uuid(id),
                            by_status,
                            oldest_pending_at,
                            last_seen_at,
                            relay_listener_connected,
                        }
                    })
                    .collect())
            }

            fn connections(&self) -> (u32, usize) {
                self.readers.connections()
            }

            async fn ready(&self) -> Result<(), StoreError> {
                let applied: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                        .fetch_one(&mut *self.readers.acquire().await?)
                        .await
                        .map_err(crate::db)?;
                let known = $migrator.iter().count() as i64;
                if applied < known {
                    return Err(StoreError::Corrupt(format!(
                        "{applied} of this build's {known} migrations are applied"
                    )));
                }
                Ok(())
            }

            async fn settings(&self) -> Result<Vec<Setting>, StoreError> {
                let rows: Vec<(uuid::Uuid, uuid::Uuid, String)> =
                    sqlx::query_as("SELECT id, provider_id, name FROM settings ORDER BY name, id")
                        .fetch_all(&mut *self.readers.acquire().await?)
                        .await
                        .map_err(crate::db)?;
                Ok(rows
                    .into_iter()
                    .map(|(id, provider_id, name)| Setting {
                        id: SettingId::from_uuid(id),
                        provider_id: ProviderId::from_uuid(provider_id),
                        name,
                    })
                    .collect())
            }

            async fn save_staff_account(
                &self,
                account: &StaffAccount,
                now: DateTime<Utc>,
            ) -> Result<StaffUser, StoreError> {
                let user = &account.user;
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                // The username is the key: saving again changes the name, role and password but keeps
                // the id, so audit events stay linked.
                let id: uuid::Uuid = sqlx::query_scalar(
                    "INSERT INTO staff_users (id, username, display_name, role, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO UPDATE SET \
                     display_name = excluded.display_name, role = excluded.role, \
                     password_hash = excluded.password_hash RETURNING id",
                )
                .bind(user.id.as_uuid())
                .bind(user.username.as_str())
                .bind(&user.display_name)
                .bind(user.role.code())
                .bind(&account.password_hash)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(crate::db)?;
                tx.commit().await.map_err(crate::db)?;
                Ok(StaffUser { id: UserId::from_uuid(id), ..user.clone() })
            }

            async fn staff_account(&self, username: &Username) -> Result<Option<StaffAccount>, StoreError> {
                let row: Option<StaffRow> = sqlx::query_as(
                    "SELECT id, username, display_name, role, password_hash FROM staff_users \
                     WHERE username = $1 AND disabled_at IS NULL",
                )
                .bind(username.as_str())
                .fetch_optional(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                row.map(StaffAccount::try_from).transpose()
            }

            async fn staff_accounts(&self) -> Result<Vec<StaffListing>, StoreError> {
                let rows: Vec<crate::rows::StaffListingRow> = sqlx::query_as(
                    "SELECT id, username, display_name, role, password_hash, created_at, disabled_at \
                     FROM staff_users ORDER BY username",
                )
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                rows.into_iter()
                    .map(|row| {
                        Ok(StaffListing {
                            user: StaffAccount::try_from(row.account)?.user,
                            created_at: row.created_at,
                            disabled_at: row.disabled_at,
                        })
                    })
                    .collect()
            }

            async fn change_staff_account(
                &self,
                username: &Username,
                change: &StaffChange,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                let name = username.as_str();
                let id: Option<uuid::Uuid> = match change {
                    StaffChange::Disable => sqlx::query_scalar(
                        "UPDATE staff_users SET disabled_at = COALESCE(disabled_at, $2) \
                         WHERE username = $1 RETURNING id",
                    )
                    .bind(name)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await,
                    StaffChange::Enable => sqlx::query_scalar(
                        "UPDATE staff_users SET disabled_at = NULL WHERE username = $1 RETURNING id",
                    )
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await,
                    StaffChange::Role(role) => sqlx::query_scalar(
                        "UPDATE staff_users SET role = $2 WHERE username = $1 RETURNING id",
                    )
                    .bind(name)
                    .bind(role.code())
                    .fetch_optional(&mut *tx)
                    .await,
                    StaffChange::Password(hash) => sqlx::query_scalar(
                        "UPDATE staff_users SET password_hash = $2 WHERE username = $1 RETURNING id",
                    )
                    .bind(name)
                    .bind(hash.as_str())
                    .fetch_optional(&mut *tx)
                    .await,
                }
                .map_err(crate::db)?;
                let id = id.ok_or_else(|| StoreError::NotFound {
                    what: "staff account",
                    id: username.to_string(),
                })?;
                let ends_sessions = matches!(change, StaffChange::Disable | StaffChange::Password(_));
                if ends_sessions {
                    sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(crate::db)?;
                }
                tx.commit().await.map_err(crate::db)
            }

            async fn create_session(
                &self,
                token_hash: &str,
                user_id: UserId,
                now: DateTime<Utc>,
                expires_at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::db)?;
                sqlx::query(
                    "INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(token_hash)
                .bind(user_id.as_uuid())
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await
                .map_err(crate::db)?;
                tx.commit().await.map_err(crate::db)
            }

            async fn session_user(
                &self,
                token_hash: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<StaffUser>, StoreError> {
                let row: Option<StaffRow> = sqlx::query_as(
                    "SELECT u.id, u.username, u.display_name, u.role, u.password_hash FROM web_sessions s \
                     JOIN staff_users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2 \
                     AND u.disabled_at IS NULL",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                Ok(row.map(StaffAccount::try_from).transpose()?.map(|account| account.user))
            }

            async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&mut *self.writer.acquire().await?)
                    .await
                    .map_err(crate::db)?;
                Ok(())
            }

            async fn count_sign_in_attempt(
                &self,
                key: &str,
                now: DateTime<Utc>,
                window: chrono::TimeDelta,
            ) -> Result<u32, StoreError> {
                let mut writer = self.writer.acquire().await?;
                let mut tx = Self::begin_write_on(&mut writer).await?;
                // Expired windows go first, so the table holds only live ones and a key whose
                // window ended starts a new one at 1.
                sqlx::query("DELETE FROM sign_in_attempts WHERE window_started_at <= $1")
                    .bind(now - window)
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::db)?;
                let attempts: i32 = sqlx::query_scalar(
                    "INSERT INTO sign_in_attempts (key, window_started_at, attempts) VALUES ($1, $2, 1) \
                     ON CONFLICT (key) DO UPDATE SET attempts = sign_in_attempts.attempts + 1 \
                     RETURNING attempts",
                )
                .bind(key)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(crate::db)?;
                tx.commit().await.map_err(crate::db)?;
                Ok(u32::try_from(attempts).unwrap_or(0))
            }

            async fn record_admin_event(&self, event: &AdminEvent) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO admin_events (occurred_at, actor, action, subject) VALUES ($1, $2, $3, $4)",
                )
                .bind(event.occurred_at)
                .bind(&event.actor)
                .bind(&event.action)
                .bind(&event.subject)
                .execute(&mut *self.writer.acquire().await?)
                .await
                .map_err(crate::db)?;
                Ok(())
            }

            async fn admin_events(&self, limit: u32) -> Result<Vec<AdminEvent>, StoreError> {
                let rows: Vec<(DateTime<Utc>, String, String, String)> = sqlx::query_as(
                    "SELECT occurred_at, actor, action, subject FROM admin_events \
                     ORDER BY occurred_at DESC, id DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&mut *self.readers.acquire().await?)
                .await
                .map_err(crate::db)?;
                Ok(rows
                    .into_iter()
                    .map(|(occurred_at, actor, action, subject)| AdminEvent {
                        occurred_at,
                        actor,
                        action,
                        subject,
                    })
                    .collect())
            }

            async fn forgive_sign_in_attempts(&self, key: &str, all: bool) -> Result<(), StoreError> {
                let sql = if all {
                    "DELETE FROM sign_in_attempts WHERE key = $1"
                } else {
                    "UPDATE sign_in_attempts SET attempts = attempts - 1 WHERE key = $1 AND attempts > 0"
                };
                sqlx::query(sql)
                    .bind(key)
                    .execute(&mut *self.writer.acquire().await?)
                    .await
                    .map_err(crate::db)?;
                Ok(())
            }
        }
    };
}
