//! Rows as both databases return them, and their conversion into domain types.
//!
//! The same structs decode from SQLite and PostgreSQL (`FromRow` is generic over the row type), so
//! the mapping to the domain lives in one place.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use screening_core::prelude::*;
use uuid::Uuid;

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

fn parse<T: FromStr>(what: &str, text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|error| corrupt(what, error))
}

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: Uuid,
    gateway_id: Uuid,
    participant_id: Uuid,
    appointment_id: Uuid,
    message_type: String,
    payload: String,
    destination: String,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    lease_expires_at: Option<DateTime<Utc>>,
    confirmed_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
    attempts: i64,
    last_error: Option<String>,
    resend_of: Option<Uuid>,
}

impl MessageRow {
    /// The gateway the message is for.
    pub(crate) fn gateway_id(&self) -> Uuid {
        self.gateway_id
    }
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;
    fn try_from(row: MessageRow) -> Result<Self, Self::Error> {
        Ok(Message {
            id: row.id.into(),
            gateway_id: row.gateway_id.into(),
            participant_id: row.participant_id.into(),
            appointment_id: row.appointment_id.into(),
            message_type: parse("message type", &row.message_type)?,
            payload: row.payload,
            destination: parse("destination", &row.destination)?,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
            lease_expires_at: row.lease_expires_at,
            confirmed_at: row.confirmed_at,
            failed_at: row.failed_at,
            attempts: u32::try_from(row.attempts).map_err(|e| corrupt("attempts", e))?,
            last_error: row.last_error,
            resend_of: row.resend_of.map(MessageId::from_uuid),
        })
    }
}

pub(crate) fn messages(rows: Vec<MessageRow>) -> Result<Vec<Message>, StoreError> {
    rows.into_iter().map(Message::try_from).collect()
}

/// The columns of an appointment with its participant and slot, which every appointment query
/// selects under these names.
#[derive(sqlx::FromRow)]
pub(crate) struct BookingColumns {
    appointment_id: Uuid,
    clinic_slot_id: Uuid,
    participant_id: Uuid,
    state: String,
    version: i64,
    first_name: String,
    last_name: String,
    date_of_birth: NaiveDate,
    nhs_number: String,
    sex: String,
    starts_at: DateTime<Utc>,
    duration_minutes: i64,
}

impl BookingColumns {
    /// The appointment, its participant and its slot in `clinic_id`.
    fn into_domain(
        self,
        clinic_id: ClinicId,
    ) -> Result<(Appointment, Participant, ClinicSlot), StoreError> {
        Ok((
            Appointment {
                id: self.appointment_id.into(),
                clinic_slot_id: self.clinic_slot_id.into(),
                participant_id: self.participant_id.into(),
                state: parse("appointment state", &self.state)?,
                version: self.version,
            },
            Participant {
                id: self.participant_id.into(),
                first_name: self.first_name,
                last_name: self.last_name,
                date_of_birth: self.date_of_birth,
                nhs_number: parse("NHS number", &self.nhs_number)?,
                sex: parse("sex", &self.sex)?,
            },
            ClinicSlot {
                id: self.clinic_slot_id.into(),
                clinic_id,
                starts_at: self.starts_at,
                duration_minutes: u32::try_from(self.duration_minutes)
                    .map_err(|e| corrupt("duration", e))?,
            },
        ))
    }
}

/// One appointment joined with everything around it.
#[derive(sqlx::FromRow)]
pub(crate) struct AppointmentRow {
    #[sqlx(flatten)]
    booking: BookingColumns,
    clinic_id: Uuid,
    clinic_date: NaiveDate,
    clinic_name: String,
    setting_id: Uuid,
    setting_name: String,
    provider_id: Uuid,
    provider_name: String,
    ods_code: String,
}

/// The SELECT list and joins that produce an [`AppointmentRow`].
pub(crate) const APPOINTMENT_SELECT: &str = "SELECT a.id AS appointment_id, a.clinic_slot_id, a.participant_id, \
     a.state, a.version, p.first_name, p.last_name, p.date_of_birth, p.nhs_number, p.sex, s.starts_at, \
     s.duration_minutes, c.id AS clinic_id, c.clinic_date, c.name AS clinic_name, st.id AS setting_id, \
     st.name AS setting_name, pr.id AS provider_id, pr.name AS provider_name, pr.ods_code \
     FROM appointments a \
     JOIN participants p ON p.id = a.participant_id \
     JOIN clinic_slots s ON s.id = a.clinic_slot_id \
     JOIN clinics c ON c.id = s.clinic_id \
     JOIN settings st ON st.id = c.setting_id \
     JOIN providers pr ON pr.id = st.provider_id";

/// An appointment as a clinic list shows it.
#[derive(Debug, Clone)]
pub struct ClinicAppointment {
    /// The appointment.
    pub appointment: Appointment,
    /// Who is booked.
    pub participant: Participant,
    /// The slot.
    pub slot: ClinicSlot,
}

pub(crate) struct AppointmentParts {
    pub appointment: Appointment,
    pub participant: Participant,
    pub slot: ClinicSlot,
    pub clinic: Clinic,
    pub setting: Setting,
    pub provider: Provider,
}

impl TryFrom<AppointmentRow> for AppointmentParts {
    type Error = StoreError;
    fn try_from(row: AppointmentRow) -> Result<Self, Self::Error> {
        let clinic_id = ClinicId::from_uuid(row.clinic_id);
        let setting_id = SettingId::from_uuid(row.setting_id);
        let provider_id = ProviderId::from_uuid(row.provider_id);
        let (appointment, participant, slot) = row.booking.into_domain(clinic_id)?;
        Ok(Self {
            appointment,
            participant,
            slot,
            clinic: Clinic {
                id: clinic_id,
                setting_id,
                date: row.clinic_date,
                name: row.clinic_name,
            },
            setting: Setting {
                id: setting_id,
                provider_id,
                name: row.setting_name,
            },
            provider: Provider {
                id: provider_id,
                name: row.provider_name,
                ods_code: row.ods_code,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GatewayRow {
    id: Uuid,
    name: String,
    setting_id: Uuid,
    transport: String,
    relay_namespace: Option<String>,
    relay_hybrid_connection: Option<String>,
    relay_key_name: Option<String>,
    relay_key_ref: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct RouteRow {
    gateway_id: Uuid,
    message_type: String,
    destination: String,
}

/// Assembles gateways with their routes (routes may be for any of the gateways, in any order).
pub(crate) fn gateways(
    rows: Vec<GatewayRow>,
    routes: Vec<RouteRow>,
) -> Result<Vec<Gateway>, StoreError> {
    rows.into_iter()
        .map(|row| {
            let transport = match row.transport.as_str() {
                "polling" => Transport::Polling,
                "relay" => {
                    let field = |value: Option<String>, name: &str| {
                        value.ok_or_else(|| corrupt("relay gateway", format!("{name} is missing")))
                    };
                    Transport::Relay(RelayTransport {
                        namespace: field(row.relay_namespace, "namespace")?,
                        hybrid_connection: field(row.relay_hybrid_connection, "hybrid connection")?,
                        key_name: field(row.relay_key_name, "key name")?,
                        key_ref: parse(
                            "key reference",
                            &field(row.relay_key_ref, "key reference")?,
                        )?,
                    })
                }
                other => return Err(corrupt("transport", other)),
            };
            let routes = routes
                .iter()
                .filter(|route| route.gateway_id == row.id)
                .map(|route| {
                    Ok(Route {
                        message_type: parse("message type", &route.message_type)?,
                        destination: parse("destination", &route.destination)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Gateway {
                id: row.id.into(),
                name: row.name,
                setting_id: row.setting_id.into(),
                transport,
                routes,
            })
        })
        .collect()
}

/// The SELECT of "Send to modality"'s context, in one statement: the appointment with everything
/// around it, its latest message's id, and its setting's gateways with their routes (a row per
/// route; the appointment's columns repeat on each). The gateways come in the order a send chooses
/// among them, all from indexes (each gateway's routes are put in order afterwards).
pub(crate) static SEND_CONTEXT_SELECT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        let (columns, joins) = APPOINTMENT_SELECT
            .split_once(" FROM ")
            .expect("APPOINTMENT_SELECT has a FROM");
        // The latest message as `LATEST_MESSAGE_ID` finds it, for this row's appointment.
        let latest = crate::sql::LATEST_MESSAGE_ID.replace("$1", "a.id");
        format!(
            "{columns}, ({latest}) AS latest_message_id, \
         g.id AS gateway_id, g.name AS gateway_name, g.transport, g.relay_namespace, \
         g.relay_hybrid_connection, g.relay_key_name, g.relay_key_ref, \
         r.message_type AS route_message_type, r.destination AS route_destination \
         FROM {joins} LEFT JOIN gateways g ON g.setting_id = st.id \
         LEFT JOIN gateway_routes r ON r.gateway_id = g.id \
         WHERE a.id = $1 ORDER BY g.created_at, g.id"
        )
    });

/// The appointment, its latest message's id and its setting's gateways.
pub(crate) type SendContextParts = (AppointmentParts, Option<Uuid>, Vec<Gateway>);

/// A row of [`SEND_CONTEXT_SELECT`].
#[derive(sqlx::FromRow)]
pub(crate) struct SendContextRow {
    #[sqlx(flatten)]
    appointment: AppointmentRow,
    latest_message_id: Option<Uuid>,
    gateway_id: Option<Uuid>,
    gateway_name: Option<String>,
    transport: Option<String>,
    relay_namespace: Option<String>,
    relay_hybrid_connection: Option<String>,
    relay_key_name: Option<String>,
    relay_key_ref: Option<String>,
    route_message_type: Option<String>,
    route_destination: Option<String>,
}

/// The appointment, its latest message's id and its setting's gateways, from the rows of
/// [`SEND_CONTEXT_SELECT`]; `None` when there is no such appointment.
pub(crate) fn send_context(
    rows: Vec<SendContextRow>,
) -> Result<Option<SendContextParts>, StoreError> {
    let mut gateway_rows: Vec<GatewayRow> = Vec::new();
    let mut routes = Vec::new();
    let mut first = None;
    for row in rows {
        if let (Some(id), Some(name), Some(transport)) =
            (row.gateway_id, row.gateway_name, row.transport)
        {
            if gateway_rows.last().is_none_or(|last| last.id != id) {
                gateway_rows.push(GatewayRow {
                    id,
                    name,
                    setting_id: row.appointment.setting_id,
                    transport,
                    relay_namespace: row.relay_namespace,
                    relay_hybrid_connection: row.relay_hybrid_connection,
                    relay_key_name: row.relay_key_name,
                    relay_key_ref: row.relay_key_ref,
                });
            }
            if let (Some(message_type), Some(destination)) =
                (row.route_message_type, row.route_destination)
            {
                routes.push(RouteRow {
                    gateway_id: id,
                    message_type,
                    destination,
                });
            }
        }
        if first.is_none() {
            first = Some((row.appointment, row.latest_message_id));
        }
    }
    let Some((appointment, latest)) = first else {
        return Ok(None);
    };
    // Each gateway's routes by message type, as `gateways_where` reads them.
    routes.sort_by(|a, b| a.message_type.cmp(&b.message_type));
    Ok(Some((
        AppointmentParts::try_from(appointment)?,
        latest,
        gateways(gateway_rows, routes)?,
    )))
}

/// The relay columns of a gateway, `None` for polling gateways.
pub(crate) struct RelayColumns<'a> {
    pub namespace: Option<&'a str>,
    pub hybrid_connection: Option<&'a str>,
    pub key_name: Option<&'a str>,
    pub key_ref: Option<String>,
}

impl<'a> RelayColumns<'a> {
    pub fn of(transport: &'a Transport) -> Self {
        match transport {
            Transport::Polling => Self {
                namespace: None,
                hybrid_connection: None,
                key_name: None,
                key_ref: None,
            },
            Transport::Relay(relay) => Self {
                namespace: Some(&relay.namespace),
                hybrid_connection: Some(&relay.hybrid_connection),
                key_name: Some(&relay.key_name),
                key_ref: Some(relay.key_ref.to_string()),
            },
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    appointment_id: Uuid,
    action: String,
    from_state: String,
    to_state: String,
    at: DateTime<Utc>,
    actor: String,
}

impl TryFrom<EventRow> for AppointmentEvent {
    type Error = StoreError;
    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        Ok(AppointmentEvent {
            appointment_id: row.appointment_id.into(),
            action: parse("appointment action", &row.action)?,
            from: parse("appointment state", &row.from_state)?,
            to: parse("appointment state", &row.to_state)?,
            at: row.at,
            by: Actor(row.actor),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClinicRow {
    id: Uuid,
    setting_id: Uuid,
    clinic_date: NaiveDate,
    name: String,
    setting_name: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct CountRow {
    clinic_id: Uuid,
    state: String,
    n: i64,
}

/// Joins clinics with their per-state counts.
pub(crate) fn clinic_summaries(
    clinics: Vec<ClinicRow>,
    counts: Vec<CountRow>,
) -> Result<Vec<crate::web::ClinicSummary>, StoreError> {
    clinics
        .into_iter()
        .map(|row| {
            let mut by_state = counts
                .iter()
                .filter(|count| count.clinic_id == row.id)
                .map(|count| {
                    Ok((
                        parse::<AppointmentState>("appointment state", &count.state)?,
                        count.n.max(0) as u64,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            by_state
                .sort_by_key(|(state, _)| AppointmentState::ALL.iter().position(|s| s == state));
            Ok(crate::web::ClinicSummary {
                clinic: Clinic {
                    id: row.id.into(),
                    setting_id: row.setting_id.into(),
                    date: row.clinic_date,
                    name: row.name,
                },
                setting_name: row.setting_name,
                counts: by_state,
            })
        })
        .collect()
}

/// A message with its participant's NHS number.
#[derive(sqlx::FromRow)]
pub(crate) struct ListingRow {
    #[sqlx(flatten)]
    message: MessageRow,
    nhs_number: String,
}

impl TryFrom<ListingRow> for crate::web::MessageListing {
    type Error = StoreError;
    fn try_from(row: ListingRow) -> Result<Self, Self::Error> {
        Ok(Self {
            message: Message::try_from(row.message)?,
            nhs_number: parse("NHS number", &row.nhs_number)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct StaffRow {
    id: Uuid,
    username: String,
    display_name: String,
    role: String,
    password_hash: String,
}

/// A staff account with its dates, for the admin's list.
#[derive(sqlx::FromRow)]
pub(crate) struct StaffListingRow {
    #[sqlx(flatten)]
    pub(crate) account: StaffRow,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) disabled_at: Option<DateTime<Utc>>,
}

impl TryFrom<StaffRow> for crate::web::StaffAccount {
    type Error = StoreError;
    fn try_from(row: StaffRow) -> Result<Self, Self::Error> {
        Ok(Self {
            user: StaffUser {
                id: row.id.into(),
                username: parse("username", &row.username)?,
                display_name: row.display_name,
                role: parse("role", &row.role)?,
            },
            password_hash: row.password_hash,
        })
    }
}

/// A message's status columns.
#[derive(sqlx::FromRow)]
pub(crate) struct LatestRow {
    id: Uuid,
    appointment_id: Uuid,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    confirmed_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    #[sqlx(flatten)]
    procedure: ProcedureColumns,
}

/// What the modality reported, as the message row keeps it.
#[derive(sqlx::FromRow)]
pub(crate) struct ProcedureColumns {
    procedure_status: Option<String>,
    procedure_at: Option<DateTime<Utc>>,
    procedure_station: Option<String>,
    procedure_reason: Option<String>,
}

impl ProcedureColumns {
    fn note(self) -> Option<crate::web::ProcedureNote> {
        Some(crate::web::ProcedureNote {
            status: screening_core::procedure::ProcedureStatus::from_code(
                self.procedure_status.as_deref()?,
            )?,
            at: self.procedure_at?,
            station: self.procedure_station.unwrap_or_default(),
            reason: self.procedure_reason,
        })
    }
}

impl From<LatestRow> for crate::web::LatestMessage {
    fn from(row: LatestRow) -> Self {
        Self {
            id: row.id.into(),
            appointment_id: row.appointment_id.into(),
            created_at: row.created_at,
            delivered_at: row.delivered_at,
            confirmed_at: row.confirmed_at,
            failed_at: row.failed_at,
            last_error: row.last_error,
            procedure: row.procedure.note(),
        }
    }
}

/// One row of the clinic page: the appointment, its participant and slot, and the status columns
/// of its latest message (all `NULL` when it has none).
#[derive(sqlx::FromRow)]
pub(crate) struct PageRow {
    #[sqlx(flatten)]
    booking: BookingColumns,
    message_id: Option<Uuid>,
    message_created_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    confirmed_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    #[sqlx(flatten)]
    procedure: ProcedureColumns,
}

/// The clinic page from its clinic row and appointment rows; the counts come from the rows.
pub(crate) fn clinic_page(
    clinic: ClinicRow,
    rows: Vec<PageRow>,
) -> Result<crate::web::ClinicPage, StoreError> {
    let clinic_id = ClinicId::from_uuid(clinic.id);
    let rows = rows
        .into_iter()
        .map(|row| {
            let latest = match (row.message_id, row.message_created_at) {
                (Some(id), Some(created_at)) => Some(crate::web::LatestMessage {
                    id: id.into(),
                    appointment_id: row.booking.appointment_id.into(),
                    created_at,
                    delivered_at: row.delivered_at,
                    confirmed_at: row.confirmed_at,
                    failed_at: row.failed_at,
                    last_error: row.last_error,
                    procedure: row.procedure.note(),
                }),
                _ => None,
            };
            let (appointment, participant, slot) = row.booking.into_domain(clinic_id)?;
            Ok(crate::web::ClinicPageRow {
                appointment,
                participant,
                slot,
                latest,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let counts = AppointmentState::ALL
        .into_iter()
        .filter_map(|state| {
            let n = rows.iter().filter(|r| r.appointment.state == state).count() as u64;
            (n > 0).then_some((state, n))
        })
        .collect();
    let mut summary = clinic_summaries(vec![clinic], Vec::new())?
        .pop()
        .expect("one clinic in, one out");
    summary.counts = counts;
    Ok(crate::web::ClinicPage { summary, rows })
}
