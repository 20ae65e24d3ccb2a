//! Messages in the outbox and their delivery lifecycle.
//!
//! A message is *pending* until a gateway takes it (`delivered_at`, with a lease), *confirmed* when the
//! gateway reports that its destination accepted it, *failed* with a reason when the destination
//! refuses or attempts run out. A lease that expires without confirmation makes it pending again
//! (at-least-once delivery; the gateway de-duplicates by message id).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::gateway::Destination;
use crate::ids::{AppointmentId, GatewayId, MessageId, ParticipantId};

/// The kind of payload: `FHIR` first; an open set (`WORKLIST`, …) of upper-case names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageType(String);

/// A message type name that is empty, too long, or not upper-case letters, digits, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a message type is 1 to 32 upper-case letters, digits, '_' or '-' (like FHIR); got {0:?}")]
pub struct MessageTypeError(pub String);

impl MessageType {
    /// The name of the FHIR R4 `ServiceRequest` message type.
    pub const FHIR_NAME: &'static str = "FHIR";

    /// The FHIR R4 `ServiceRequest` message type.
    pub fn fhir() -> Self {
        Self(Self::FHIR_NAME.to_string())
    }

    /// Parses a message type name.
    pub fn parse(input: &str) -> Result<Self, MessageTypeError> {
        let valid = (1..=32).contains(&input.len())
            && input
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
        if valid {
            Ok(Self(input.to_string()))
        } else {
            Err(MessageTypeError(input.chars().take(64).collect()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The HTTP content type a destination receives for this type.
    pub fn content_type(&self) -> &'static str {
        match self.0.as_str() {
            Self::FHIR_NAME => "application/fhir+json",
            _ => "application/json",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MessageType {
    type Err = MessageTypeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for MessageType {
    type Error = MessageTypeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<MessageType> for String {
    fn from(value: MessageType) -> Self {
        value.0
    }
}

/// Where a message is in its delivery lifecycle, derived from its timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Waiting for a gateway to take it.
    Pending,
    /// Taken by a gateway (leased), not yet confirmed.
    Delivered,
    /// The gateway reports its destination accepted it.
    Confirmed,
    /// Refused or out of attempts; kept with its reason.
    Failed,
}

impl MessageStatus {
    /// Every status.
    pub const ALL: [MessageStatus; 4] = [
        MessageStatus::Pending,
        MessageStatus::Delivered,
        MessageStatus::Confirmed,
        MessageStatus::Failed,
    ];

    /// The status a message's timestamps give it: confirmed wins over failed, failed over
    /// delivered, and with none of them it is pending. The one rule every view of a message uses.
    pub const fn from_times(delivered: bool, confirmed: bool, failed: bool) -> Self {
        if confirmed {
            MessageStatus::Confirmed
        } else if failed {
            MessageStatus::Failed
        } else if delivered {
            MessageStatus::Delivered
        } else {
            MessageStatus::Pending
        }
    }

    /// `pending`, `delivered`, `confirmed` or `failed`.
    pub const fn code(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Confirmed => "confirmed",
            MessageStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A lifecycle step that the message's status does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// The message was already confirmed, so it cannot be taken, failed or redelivered.
    #[error("message {0} is already confirmed")]
    AlreadyConfirmed(MessageId),
    /// The message has failed; it can only be resent as a new message.
    #[error("message {0} has failed; resend it to try again")]
    AlreadyFailed(MessageId),
    /// Taking a message another gateway holds a live lease on.
    #[error("message {0} is leased until {1}")]
    Leased(MessageId, DateTime<Utc>),
    /// Redelivering a message that is not delivered or whose lease is still running.
    #[error("message {0} is not delivered with an expired lease")]
    LeaseNotExpired(MessageId),
}

/// What a confirmation did: idempotent, so a repeat is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// This call confirmed it.
    Now,
    /// It had been confirmed before; nothing changed.
    Already,
}

/// An order or notification on its way to a gateway and then to a destination. Its `Debug` leaves
/// the payload out (it holds the participant's name and NHS number): only its size is shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Our identifier; the gateway de-duplicates by it.
    pub id: MessageId,
    /// The gateway that must carry it.
    pub gateway_id: GatewayId,
    /// Whom it concerns.
    pub participant_id: ParticipantId,
    /// The appointment that caused it.
    pub appointment_id: AppointmentId,
    /// The kind of payload.
    pub message_type: MessageType,
    /// The rendered payload (FHIR JSON for `FHIR`).
    pub payload: String,
    /// Where the gateway forwards it, from the gateway's route at creation time.
    pub destination: Destination,
    /// When it was committed to the outbox.
    pub created_at: DateTime<Utc>,
    /// When a gateway last took it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Until when the current taker holds it; after that it may be redelivered.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the gateway reported the destination accepted it.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When it was given up on.
    pub failed_at: Option<DateTime<Utc>>,
    /// How many times a gateway has taken it.
    pub attempts: u32,
    /// The latest problem, with the phase that failed.
    pub last_error: Option<String>,
    /// The message this one resends, if any (lineage).
    pub resend_of: Option<MessageId>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("gateway_id", &self.gateway_id)
            .field("participant_id", &self.participant_id)
            .field("appointment_id", &self.appointment_id)
            .field("message_type", &self.message_type)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("destination", &self.destination)
            .field("created_at", &self.created_at)
            .field("delivered_at", &self.delivered_at)
            .field("lease_expires_at", &self.lease_expires_at)
            .field("confirmed_at", &self.confirmed_at)
            .field("failed_at", &self.failed_at)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .field("resend_of", &self.resend_of)
            .finish()
    }
}

impl Message {
    /// The status derived from the timestamps.
    pub fn status(&self) -> MessageStatus {
        MessageStatus::from_times(
            self.delivered_at.is_some(),
            self.confirmed_at.is_some(),
            self.failed_at.is_some(),
        )
    }

    fn ensure_open(&self) -> Result<(), LifecycleError> {
        match self.status() {
            MessageStatus::Confirmed => Err(LifecycleError::AlreadyConfirmed(self.id)),
            MessageStatus::Failed => Err(LifecycleError::AlreadyFailed(self.id)),
            _ => Ok(()),
        }
    }

    /// A gateway takes the message: delivered now, leased until `lease_until`, one more attempt.
    pub fn deliver(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Message, LifecycleError> {
        self.ensure_open()?;
        if let Some(lease) = self.lease_expires_at.filter(|lease| *lease > now) {
            return Err(LifecycleError::Leased(self.id, lease));
        }
        Ok(Message {
            delivered_at: Some(now),
            lease_expires_at: Some(lease_until),
            attempts: self.attempts + 1,
            ..self.clone()
        })
    }

    /// The gateway reports the destination accepted it. Idempotent; a failed message stays failed.
    pub fn confirm(&self, now: DateTime<Utc>) -> Result<(Message, Confirmed), LifecycleError> {
        match self.status() {
            MessageStatus::Confirmed => Ok((self.clone(), Confirmed::Already)),
            MessageStatus::Failed => Err(LifecycleError::AlreadyFailed(self.id)),
            // A confirmation after the lease expired still means the destination has it.
            MessageStatus::Pending | MessageStatus::Delivered => Ok((
                Message {
                    delivered_at: self.delivered_at.or(Some(now)),
                    confirmed_at: Some(now),
                    lease_expires_at: None,
                    ..self.clone()
                },
                Confirmed::Now,
            )),
        }
    }

    /// The destination refused it or attempts ran out: parked as failed, kept with its reason.
    pub fn fail(&self, now: DateTime<Utc>, reason: &str) -> Result<Message, LifecycleError> {
        self.ensure_open()?;
        Ok(Message {
            failed_at: Some(now),
            lease_expires_at: None,
            last_error: Some(reason.to_string()),
            ..self.clone()
        })
    }

    /// The taker could not hand the message on (the relay had no listener, the gateway answered
    /// with an error): pending again at once, with the reason, to be retried.
    pub fn release(&self, reason: &str) -> Result<Message, LifecycleError> {
        self.ensure_open()?;
        Ok(Message {
            delivered_at: None,
            lease_expires_at: None,
            last_error: Some(reason.to_string()),
            ..self.clone()
        })
    }

    /// The lease ran out without a confirmation: pending again, or failed once `max_attempts` is spent.
    pub fn redeliver(
        &self,
        now: DateTime<Utc>,
        max_attempts: u32,
    ) -> Result<Message, LifecycleError> {
        self.ensure_open()?;
        match self.lease_expires_at {
            Some(lease) if self.delivered_at.is_some() && lease <= now => {}
            _ => return Err(LifecycleError::LeaseNotExpired(self.id)),
        }
        if self.attempts >= max_attempts {
            return self.fail(
                now,
                &format!(
                    "await confirmation: no confirmation after {} attempts",
                    self.attempts
                ),
            );
        }
        Ok(Message {
            delivered_at: None,
            lease_expires_at: None,
            last_error: Some("await confirmation: lease expired without confirmation".into()),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use uuid::Uuid;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn pending() -> Message {
        Message {
            id: MessageId::from_uuid(Uuid::from_u128(1)),
            gateway_id: GatewayId::from_uuid(Uuid::from_u128(2)),
            participant_id: ParticipantId::from_uuid(Uuid::from_u128(3)),
            appointment_id: AppointmentId::from_uuid(Uuid::from_u128(4)),
            message_type: MessageType::fhir(),
            payload: "{}".into(),
            destination: Destination::parse("log:").unwrap(),
            created_at: t(0),
            delivered_at: None,
            lease_expires_at: None,
            confirmed_at: None,
            failed_at: None,
            attempts: 0,
            last_error: None,
            resend_of: None,
        }
    }

    #[test]
    fn debug_shows_the_payloads_size_never_its_contents() {
        let message = Message {
            payload: r#"{"name":[{"family":"O'Brien","given":["Siân"]}],"nhs":"9434765919"}"#
                .into(),
            ..pending()
        };
        let shown = format!("{message:?}");
        assert!(shown.contains("payload: <"), "{shown}");
        for secret in ["O'Brien", "Siân", "9434765919"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("attempts: 0"),
            "the rest is still shown: {shown}"
        );
    }

    #[test]
    fn a_new_message_is_pending() {
        assert_eq!(pending().status(), MessageStatus::Pending);
    }

    #[test]
    fn delivering_sets_the_lease_and_counts_an_attempt() {
        let delivered = pending().deliver(t(1), t(31)).unwrap();
        assert_eq!(delivered.status(), MessageStatus::Delivered);
        assert_eq!(delivered.delivered_at, Some(t(1)));
        assert_eq!(delivered.lease_expires_at, Some(t(31)));
        assert_eq!(delivered.attempts, 1);
    }

    #[test]
    fn a_leased_message_cannot_be_taken_again_before_the_lease_ends() {
        let delivered = pending().deliver(t(1), t(31)).unwrap();
        assert!(matches!(
            delivered.deliver(t(2), t(32)),
            Err(LifecycleError::Leased(..))
        ));
    }

    #[test]
    fn confirming_is_idempotent() {
        let delivered = pending().deliver(t(1), t(31)).unwrap();
        let (confirmed, first) = delivered.confirm(t(2)).unwrap();
        assert_eq!(first, Confirmed::Now);
        assert_eq!(confirmed.status(), MessageStatus::Confirmed);
        let (again, second) = confirmed.confirm(t(9)).unwrap();
        assert_eq!(second, Confirmed::Already);
        assert_eq!(
            again.confirmed_at,
            Some(t(2)),
            "the first confirmation time is kept"
        );
    }

    #[test]
    fn a_failed_message_keeps_its_reason_and_cannot_be_confirmed() {
        let failed = pending()
            .deliver(t(1), t(31))
            .unwrap()
            .fail(t(2), "forward to destination: HTTP 500")
            .unwrap();
        assert_eq!(failed.status(), MessageStatus::Failed);
        assert_eq!(
            failed.last_error.as_deref(),
            Some("forward to destination: HTTP 500")
        );
        assert!(matches!(
            failed.confirm(t(3)),
            Err(LifecycleError::AlreadyFailed(_))
        ));
    }

    #[test]
    fn a_confirmed_message_cannot_fail() {
        let (confirmed, _) = pending().confirm(t(1)).unwrap();
        assert!(matches!(
            confirmed.fail(t(2), "x"),
            Err(LifecycleError::AlreadyConfirmed(_))
        ));
    }

    #[test]
    fn redelivery_needs_an_expired_lease() {
        let delivered = pending().deliver(t(0), t(30)).unwrap();
        assert!(matches!(
            delivered.redeliver(t(29), 5),
            Err(LifecycleError::LeaseNotExpired(_))
        ));
        let again = delivered.redeliver(t(30), 5).unwrap();
        assert_eq!(again.status(), MessageStatus::Pending);
        assert_eq!(again.attempts, 1);
        assert!(again.last_error.unwrap().contains("lease expired"));
    }

    #[test]
    fn redelivery_parks_the_message_as_failed_once_attempts_are_spent() {
        let mut message = pending();
        for round in 0..3 {
            let start = t(round * 100);
            message = message
                .deliver(start, start + Duration::seconds(30))
                .unwrap()
                .redeliver(start + Duration::seconds(30), 3)
                .unwrap();
        }
        assert_eq!(message.status(), MessageStatus::Failed);
        assert!(message.last_error.unwrap().contains("after 3 attempts"));
    }

    #[test]
    fn a_released_message_is_pending_again_with_its_reason_and_keeps_its_attempts() {
        let released = pending()
            .deliver(t(1), t(31))
            .unwrap()
            .release("connect: HTTP 404: no listeners")
            .unwrap();
        assert_eq!(released.status(), MessageStatus::Pending);
        assert_eq!(released.attempts, 1);
        assert_eq!(
            released.last_error.as_deref(),
            Some("connect: HTTP 404: no listeners")
        );
        let (confirmed, _) = released.confirm(t(2)).unwrap();
        assert!(matches!(
            confirmed.release("x"),
            Err(LifecycleError::AlreadyConfirmed(_))
        ));
    }

    #[test]
    fn message_types_are_upper_case_names() {
        assert_eq!(MessageType::parse("FHIR"), Ok(MessageType::fhir()));
        assert!(MessageType::parse("WORKLIST_V2").is_ok());
        assert!(MessageType::parse("fhir").is_err());
        assert!(MessageType::parse("").is_err());
        assert_eq!(MessageType::fhir().content_type(), "application/fhir+json");
    }
}
