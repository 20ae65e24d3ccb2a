//! Ports: the async traits that storage adapters implement (`screening-store` has SQLite and
//! PostgreSQL). Time is always passed in, so adapters and tests agree on "now".

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::appointment::{Appointment, AppointmentEvent};
use crate::ids::{AppointmentId, GatewayId, MessageId};
use crate::message::{Confirmed, LifecycleError, Message};
use crate::send::SendContext;

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{what} {id} was not found")]
    NotFound {
        /// `appointment`, `message`, `gateway`, …
        what: &'static str,
        /// Its id as text.
        id: String,
    },
    /// The appointment changed since it was read (optimistic concurrency); nothing was written.
    #[error("the appointment was changed by someone else (expected version {expected}); nothing was saved")]
    VersionConflict {
        /// The version the caller read.
        expected: i64,
    },
    /// A gateway acted on a message addressed to another gateway.
    #[error("message {message_id} belongs to another gateway")]
    WrongGateway {
        /// The message concerned.
        message_id: MessageId,
    },
    /// The message's lifecycle does not allow the step.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// A stored value failed to parse (a bug or a manual edit).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database itself failed (connect, query, …).
    #[error("database: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One committed appointment change: the transition, its audit event, and the message it wrote.
#[derive(Debug, Clone)]
pub struct AppointmentChange {
    /// The appointment after the transition (its version already incremented).
    pub appointment: Appointment,
    /// The version read before the transition; the write fails if it changed meanwhile.
    pub expected_version: i64,
    /// The audit event.
    pub event: AppointmentEvent,
    /// The outbox message, for actions that send.
    pub message: Option<Message>,
}

/// What acting on appointments needs from storage.
#[async_trait]
pub trait AppointmentStore: Send + Sync {
    /// Loads the appointment and everything needed to act on it and render its message.
    async fn send_context(&self, appointment_id: AppointmentId) -> Result<SendContext, StoreError>;

    /// Writes the appointment, its event and its message in ONE transaction, only if the appointment
    /// is still at `expected_version`; otherwise nothing is written and `VersionConflict` returned.
    async fn commit_change(&self, change: &AppointmentChange) -> Result<(), StoreError>;
}

/// What confirming one message did, with when the message was created (where its hand-off began).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmOutcome {
    /// Confirmed by this call, or before.
    pub confirmed: Confirmed,
    /// When the message was created.
    pub created_at: DateTime<Utc>,
}

/// The outbox, as the hub side of the gateway link uses it.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Adds a pending message on its own (a resend from the admin, or a message not tied to a
    /// transition), and wakes the gateway's waiters.
    async fn enqueue(&self, message: &Message) -> Result<(), StoreError>;

    /// Takes up to `limit` pending messages of a gateway, oldest first: each is marked delivered and
    /// leased until `lease_until`. Concurrent callers never receive the same message.
    async fn take_pending(
        &self,
        gateway_id: GatewayId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;

    /// Records that the gateway's destination accepted the message. Idempotent; another gateway's
    /// message is refused with `WrongGateway`.
    async fn confirm(
        &self,
        gateway_id: GatewayId,
        message_id: MessageId,
        now: DateTime<Utc>,
    ) -> Result<Confirmed, StoreError>;

    /// Confirms several of the gateway's messages at once: each id's outcome, in the order given,
    /// as [`Outbox::confirm`] would give it. The outer error is the store failing as a whole. The
    /// SQL stores confirm every open message of the batch in one statement; this default confirms
    /// one at a time.
    async fn confirm_many(
        &self,
        gateway_id: GatewayId,
        message_ids: &[MessageId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<ConfirmOutcome, StoreError>>, StoreError> {
        let mut outcomes = Vec::with_capacity(message_ids.len());
        for &message_id in message_ids {
            let outcome = match self.confirm(gateway_id, message_id, now).await {
                Ok(confirmed) => self
                    .message(message_id)
                    .await
                    .map(|message| ConfirmOutcome {
                        confirmed,
                        created_at: message.created_at,
                    }),
                Err(error) => Err(error),
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Parks the message as failed with a reason that names the phase.
    async fn fail(
        &self,
        gateway_id: GatewayId,
        message_id: MessageId,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Message, StoreError>;

    /// Records what the modality reported of a message's order (through the gateway that took it),
    /// and moves its appointment as the state machine says, in one transaction, with an audit
    /// event whose actor is the modality. Idempotent: a report already recorded changes nothing.
    /// Another gateway's message is refused with `WrongGateway`.
    async fn record_procedure(
        &self,
        gateway_id: GatewayId,
        report: &crate::procedure::ProcedureReport,
    ) -> Result<crate::appointment::AppointmentState, StoreError>;

    /// Makes a taken message pending again at once, with the reason it could not be handed on.
    async fn release(
        &self,
        gateway_id: GatewayId,
        message_id: MessageId,
        reason: &str,
    ) -> Result<Message, StoreError>;

    /// Makes messages whose lease expired unconfirmed pending again (or failed once `max_attempts`
    /// is spent). Returns how many were changed.
    async fn redeliver_expired(
        &self,
        now: DateTime<Utc>,
        max_attempts: u32,
    ) -> Result<u64, StoreError>;

    /// One message by id.
    async fn message(&self, message_id: MessageId) -> Result<Message, StoreError>;

    /// Waits until a message for the gateway may be pending, or `timeout` passes, without polling
    /// the database. Returns `true` when woken. A wake-up is a hint: callers then `take_pending`.
    async fn wait_for_pending(
        &self,
        gateway_id: GatewayId,
        timeout: Duration,
    ) -> Result<bool, StoreError>;
}
