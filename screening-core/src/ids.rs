//! Typed identifiers: a `MessageId` can never be passed where an `AppointmentId` is expected.
//!
//! Ids are UUIDs chosen by the caller (the core's logic never generates them), so tests are
//! repeatable. [`MessageId::generate`] is for the callers that make messages.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The text given is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be a UUID like 67e55044-10b1-426f-9247-bb680e5fe0c8, got {input:?}")]
pub struct IdParseError {
    /// Which id was being parsed (`message id`, `gateway id`, ...).
    pub kind: &'static str,
    /// The text that failed, cut to 64 characters.
    pub input: String,
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID the caller generated.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Parses the hyphenated (or simple) text form.
            pub fn parse(input: &str) -> Result<Self, IdParseError> {
                Uuid::parse_str(input.trim()).map(Self).map_err(|_| IdParseError {
                    kind: $kind,
                    input: input.chars().take(64).collect(),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

typed_id!(/// Identifies a screening participant.
    ParticipantId, "participant id");
typed_id!(/// Identifies a screening provider (an NHS organisation).
    ProviderId, "provider id");
typed_id!(/// Identifies a screening setting (a site or mobile unit).
    SettingId, "setting id");
typed_id!(/// Identifies a clinic (one session at a setting on one date).
    ClinicId, "clinic id");
typed_id!(/// Identifies a slot in a clinic.
    ClinicSlotId, "clinic slot id");
typed_id!(/// Identifies an appointment.
    AppointmentId, "appointment id");
typed_id!(/// Identifies a gateway (the process inside a hospital network).
    GatewayId, "gateway id");
typed_id!(/// Identifies a message in the outbox; gateways de-duplicate by it.
    MessageId, "message id");
typed_id!(/// Identifies a member of staff who signs in to the web app.
    UserId, "user id");

impl MessageId {
    /// A new message id: a UUID v7, which begins with the time it was made. The outbox's tables
    /// are indexed by message id, so time-ordered ids put each new message at the end of the index
    /// (random v4 ids put each on a different page, and SQLite took twice as long to insert them;
    /// see README's benchmarks). Ids made in one process increase even within a millisecond.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_through_its_text_form() {
        let id = MessageId::from_uuid(Uuid::from_u128(0x67e5504410b1426f9247bb680e5fe0c8));
        assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert_eq!(MessageId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn generated_message_ids_are_time_ordered_and_distinct() {
        let ids: Vec<MessageId> = (0..1000).map(|_| MessageId::generate()).collect();
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "each id sorts after the one made before it"
        );
        assert_eq!(ids[0].as_uuid().get_version_num(), 7);
    }

    #[test]
    fn a_malformed_id_names_which_id_it_was() {
        let error = GatewayId::parse("gw-1").unwrap_err();
        assert_eq!(error.kind, "gateway id");
        assert!(error.to_string().contains("gateway id must be a UUID"));
    }
}
