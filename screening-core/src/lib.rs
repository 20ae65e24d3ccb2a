//! # screening-core
//!
//! The pure domain of NHS breast screening's link to mammography modalities: NHS numbers, participants
//! and clinics, the appointment state machine, gateways and their routes, outbox messages and their
//! delivery lifecycle, the FHIR R4 `ServiceRequest`, the wire types shared by hub and gateway, and the
//! ports (async traits) that storage adapters implement.
//!
//! No I/O, no async runtime, no clock, no randomness: time and ids are passed in, so another NHS
//! service can embed the logic and test it deterministically.
//!
//! ## Example: send a participant to the modality without any database
//!
//! ```
//! use chrono::{DateTime, NaiveDate};
//! use screening_core::prelude::*;
//! use uuid::Uuid;
//!
//! let now = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
//! let setting_id = SettingId::from_uuid(Uuid::from_u128(5));
//! let context = SendContext {
//!     appointment: Appointment {
//!         id: AppointmentId::from_uuid(Uuid::from_u128(1)),
//!         clinic_slot_id: ClinicSlotId::from_uuid(Uuid::from_u128(2)),
//!         participant_id: ParticipantId::from_uuid(Uuid::from_u128(3)),
//!         state: AppointmentState::CheckedIn,
//!         version: 1,
//!     },
//!     participant: Participant {
//!         id: ParticipantId::from_uuid(Uuid::from_u128(3)),
//!         first_name: "Janet".into(),
//!         last_name: "Williams".into(),
//!         date_of_birth: NaiveDate::from_ymd_opt(1960, 4, 2).unwrap(),
//!         nhs_number: NhsNumber::parse("999 000 1235").unwrap(),
//!         sex: Sex::Female,
//!     },
//!     slot: ClinicSlot {
//!         id: ClinicSlotId::from_uuid(Uuid::from_u128(2)),
//!         clinic_id: ClinicId::from_uuid(Uuid::from_u128(4)),
//!         starts_at: now,
//!         duration_minutes: 10,
//!     },
//!     clinic: Clinic {
//!         id: ClinicId::from_uuid(Uuid::from_u128(4)),
//!         setting_id,
//!         date: now.date_naive(),
//!         name: "Morning clinic".into(),
//!     },
//!     setting: Setting {
//!         id: setting_id,
//!         provider_id: ProviderId::from_uuid(Uuid::from_u128(6)),
//!         name: "Leeds St James's".into(),
//!     },
//!     provider: Provider {
//!         id: ProviderId::from_uuid(Uuid::from_u128(6)),
//!         name: "West Yorkshire Breast Screening".into(),
//!         ods_code: "RR8".into(),
//!     },
//!     gateways: vec![Gateway {
//!         id: GatewayId::from_uuid(Uuid::from_u128(7)),
//!         name: "Leeds gateway".into(),
//!         setting_id,
//!         transport: Transport::Polling,
//!         routes: vec![Route {
//!             message_type: MessageType::fhir(),
//!             destination: Destination::parse("https://ris.example.nhs.uk/fhir/ServiceRequest").unwrap(),
//!         }],
//!     }],
//!     latest_message_id: None,
//! };
//!
//! let request = ActionRequest::new(
//!     AppointmentAction::SendToModality,
//!     now,
//!     MessageId::from_uuid(Uuid::from_u128(42)),
//!     Actor("clinician@example.nhs.uk".into()),
//! );
//! let outcome = act(&context, &request).unwrap();
//! assert_eq!(outcome.appointment.state, AppointmentState::SentToModality);
//!
//! let message = outcome.message.unwrap();
//! assert_eq!(message.status(), MessageStatus::Pending);
//! let order = parse_service_request(&message.payload).unwrap();
//! assert_eq!(order.intent.value.as_deref(), Some("order"));
//!
//! // Pressing the button twice is refused with a clear reason.
//! let twice = act(&SendContext { appointment: outcome.appointment, ..context }, &request);
//! assert!(twice.unwrap_err().to_string().contains("already been sent"));
//! ```

#![warn(missing_docs)]

pub mod alert;
pub mod appointment;
#[cfg(feature = "demo")]
pub mod demo;
pub mod echo;
pub mod fhir;
pub mod gateway;
pub mod ids;
pub mod london;
pub mod message;
pub mod nhs_number;
pub mod people;
pub mod ports;
pub mod procedure;
pub mod send;
pub mod signing;
pub mod staff;
pub mod wire;
pub mod worklist;

/// The names most callers need, in one import.
pub mod prelude {
    pub use crate::appointment::{
        Actor, Appointment, AppointmentAction, AppointmentEvent, AppointmentState, TransitionError,
        TRANSITIONS,
    };
    pub use crate::fhir::{parse_service_request, render_service_request, ServiceRequestInput};
    pub use crate::gateway::{Destination, Gateway, RelayTransport, Route, SecretRef, Transport};
    pub use crate::ids::*;
    pub use crate::message::{Confirmed, Message, MessageStatus, MessageType};
    pub use crate::nhs_number::{NhsNumber, NhsNumberError};
    pub use crate::people::{Clinic, ClinicSlot, Participant, Provider, Setting, Sex};
    pub use crate::ports::{
        AppointmentChange, AppointmentStore, ConfirmOutcome, Outbox, StoreError,
    };
    pub use crate::send::{
        act, act_on_appointment, ActionError, ActionOutcome, ActionRequest, SendContext, SendError,
    };
    pub use crate::staff::{StaffRole, StaffUser, Username, UsernameError};
    pub use crate::wire::{
        Confirmation, FailureReport, GatewayMessage, Heartbeat, RelayReply, RelayStatus,
    };
}
