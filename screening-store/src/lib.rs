//! # screening-store
//!
//! sqlx adapters for the ports of `screening-core`: SQLite (the embedded default) and PostgreSQL
//! (production, several instances on one database). Migrations for both are embedded and run on
//! connect.
//!
//! Sending to the modality commits the appointment's new state (with an optimistic version check),
//! its audit event and the outbox message in one transaction. The outbox hands messages to gateways
//! with leases (`FOR UPDATE SKIP LOCKED` on PostgreSQL), and wakes waiting gateways without polling
//! the database (`LISTEN/NOTIFY` on PostgreSQL, an in-process notifier on SQLite).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use screening_core::prelude::*;
//! use screening_store::{connect, now_utc};
//!
//! let store = connect("sqlite://screening.db").await?;
//! let demo = store.seed_demo(now_utc().date_naive(), now_utc()).await?;
//! let appointment = demo.appointments[0].id;
//! let request = ActionRequest::new(
//!     AppointmentAction::SendToModality,
//!     now_utc(),
//!     MessageId::generate(),
//!     Actor("clinician".into()),
//! );
//! let outcome = act_on_appointment(store.as_ref(), appointment, &request).await?;
//! println!("{}", outcome.message.unwrap().payload);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

#[macro_use]
mod sql;
#[macro_use]
mod web;
#[macro_use]
pub mod alerts;
#[macro_use]
pub mod echo;
#[macro_use]
pub mod retention;
mod credentials;
mod notify;
mod postgres;
mod rows;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use screening_core::prelude::*;

pub use alerts::{alert_changes, AlertEventRecord, AlertRecord, AlertStore, WebhookState};
pub use credentials::CREDENTIAL_KEEP;
pub use echo::{EchoEvent, EchoStore};
pub use notify::{StatusChange, StatusSubscription, QUIET_KEEP};
pub use postgres::PgStore;
pub use retention::{Pruned, RetentionPolicy, RetentionStore};
pub use rows::ClinicAppointment;
#[cfg(feature = "demo")]
pub use screening_core::demo::{self, DemoData};
pub use sqlite::SqliteStore;
pub use web::{
    AdminEvent, ClinicPage, ClinicPageRow, ClinicSummary, GatewayBacklog, GatewayFigures,
    LatestMessage, MessageEvent, MessageFilter, MessageListing, MessageStep, ProcedureNote,
    StaffAccount, StaffChange, StaffListing, WebStore,
};

/// Everything the applications need from storage: the core's ports plus the reads and writes of
/// the admin and the demo. Implemented by [`SqliteStore`] and [`PgStore`].
#[async_trait]
pub trait ScreeningStore:
    AppointmentStore + Outbox + WebStore + AlertStore + RetentionStore + EchoStore
{
    /// Creates or replaces a gateway and its routes.
    async fn save_gateway(&self, gateway: &Gateway, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Every gateway with its routes, oldest first.
    async fn gateways(&self) -> Result<Vec<Gateway>, StoreError>;

    /// One gateway with its routes.
    async fn gateway(&self, gateway_id: GatewayId) -> Result<Gateway, StoreError>;

    /// A clinic's appointments in slot order.
    async fn clinic_appointments(
        &self,
        clinic_id: ClinicId,
    ) -> Result<Vec<ClinicAppointment>, StoreError>;

    /// An appointment's messages, newest first.
    async fn appointment_messages(
        &self,
        appointment_id: AppointmentId,
    ) -> Result<Vec<Message>, StoreError>;

    /// An appointment's audit trail, oldest first.
    async fn appointment_events(
        &self,
        appointment_id: AppointmentId,
    ) -> Result<Vec<AppointmentEvent>, StoreError>;

    /// Stores the hash of a gateway's credential, replacing any previous one (rotation).
    async fn set_gateway_credential_hash(
        &self,
        gateway_id: GatewayId,
        hash: &str,
    ) -> Result<(), StoreError>;

    /// The hash of a gateway's credential; `None` when none was issued. `NotFound` for no gateway.
    async fn gateway_credential_hash(
        &self,
        gateway_id: GatewayId,
    ) -> Result<Option<String>, StoreError>;

    /// Records an agent's heartbeat as the gateway's "last seen".
    async fn record_heartbeat(
        &self,
        gateway_id: GatewayId,
        now: DateTime<Utc>,
        heartbeat: &Heartbeat,
    ) -> Result<(), StoreError>;

    /// Notes that the gateway was heard from (any authenticated request). Writes at most once per
    /// `SEEN_RESOLUTION` per gateway, so busy pollers cost no extra writes.
    async fn record_seen(
        &self,
        gateway_id: GatewayId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// When the gateway was last heard from (a heartbeat or any authenticated request), and its last
    /// heartbeat.
    async fn gateway_last_seen(
        &self,
        gateway_id: GatewayId,
    ) -> Result<(Option<DateTime<Utc>>, Option<Heartbeat>), StoreError>;

    /// Hears every change to appointments and their messages committed from now on, in this
    /// process and (on PostgreSQL) in every other instance on the database, without reading the
    /// database. A change is heard here before its writer is told it committed.
    fn status_changes(&self) -> StatusSubscription;

    /// Writes the demo data for a clinic on `day`; running it again changes nothing.
    #[cfg(feature = "demo")]
    async fn seed_demo(
        &self,
        day: chrono::NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<DemoData, StoreError> {
        let data = screening_core::demo::demo_data(day);
        self.seed(&data, now).await?;
        Ok(data)
    }

    /// Writes a demo data set (any size, see `screening_core::demo::demo_clinic`); rows that
    /// exist already are left as they are.
    #[cfg(feature = "demo")]
    async fn seed(&self, data: &DemoData, now: DateTime<Utc>) -> Result<(), StoreError>;
}

/// "Last seen" is kept to this resolution (seconds): at most one write per gateway per interval.
pub const SEEN_RESOLUTION_SECONDS: i64 = 30;

/// Message ids per confirming statement: well under SQLite's and PostgreSQL's bind limits.
pub(crate) const CONFIRM_CHUNK: usize = 500;

/// Messages per multi-row INSERT: 15 values each, under SQLite's oldest bind limit (999).
pub(crate) const INSERT_CHUNK: usize = 64;

/// The most writes one group commit carries (see `SqliteStore`'s committer).
pub(crate) const MAX_GROUP: usize = 256;

/// Opening a store failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is neither `sqlite:` nor `postgres:`.
    #[error(
        "unsupported database URL {0:?}: use sqlite://path/to/file.db or postgres://user@host/db"
    )]
    UnsupportedUrl(String),
    /// The database could not be reached or opened.
    #[error("connect to {url}: {source}")]
    Connect {
        /// The URL with any password hidden.
        url: String,
        /// What sqlx reported.
        #[source]
        source: sqlx::Error,
    },
    /// The migrations failed.
    #[error("migrate: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl ConnectError {
    fn connect(url: &str, source: sqlx::Error) -> Self {
        Self::Connect {
            url: redact_password(url),
            source,
        }
    }
}

/// Hides the password of a database URL (`postgres://user:***@host/db`) for messages and logs.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// Opens the store named by a URL: `sqlite://…` (created if missing) or `postgres://…`.
pub async fn connect(url: &str) -> Result<Arc<dyn ScreeningStore>, ConnectError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else {
        Err(ConnectError::UnsupportedUrl(redact_password(url)))
    }
}

/// Now, at the microsecond precision both databases keep, so what is written reads back equal.
pub fn now_utc() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) fn db(error: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_database_url_is_hidden() {
        assert_eq!(
            redact_password("postgres://app:s3cret@db.internal:5432/screening"),
            "postgres://app:***@db.internal:5432/screening"
        );
        assert_eq!(
            redact_password("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(
            redact_password("sqlite://screening.db"),
            "sqlite://screening.db"
        );
    }

    #[tokio::test]
    async fn an_unknown_url_scheme_is_a_clear_error() {
        let error = connect("mysql://localhost/x").await.err().unwrap();
        assert!(
            error.to_string().contains("unsupported database URL"),
            "{error}"
        );
    }
}
