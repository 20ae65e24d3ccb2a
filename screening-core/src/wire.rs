//! Wire types shared by the hub and the gateway, version 1.
//!
//! Compatible with the proof of concept: fields are only ever added (as optional), never renamed, and
//! readers ignore fields they do not know, so hubs and field gateways can be upgraded independently.

use serde::{Deserialize, Serialize};

use crate::gateway::Destination;
use crate::ids::MessageId;
use crate::message::{Message, MessageType};

/// The wire version these types describe (`/api/v1/`).
pub const WIRE_VERSION: u32 = 1;

/// A message as a gateway receives it, by polling or over the relay:
/// `{"message_id","type","payload","destination"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayMessage {
    /// The id to de-duplicate by and to confirm.
    pub message_id: MessageId,
    /// The message type (`FHIR`).
    #[serde(rename = "type")]
    pub message_type: MessageType,
    /// The payload: a JSON value for JSON types (FHIR travels as an object, as in the proof of
    /// concept), a string otherwise.
    pub payload: serde_json::Value,
    /// Where the gateway forwards it.
    pub destination: Destination,
    /// The hub's signature over the fields above ([`crate::signing`]); absent from proof-of-concept
    /// hubs and from hubs without a signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::signing::OrderSignature>,
}

impl GatewayMessage {
    /// The wire form of an outbox message.
    pub fn from_message(message: &Message) -> Self {
        let payload = if message.message_type.content_type().ends_with("json") {
            serde_json::from_str(&message.payload)
                .unwrap_or_else(|_| serde_json::Value::String(message.payload.clone()))
        } else {
            serde_json::Value::String(message.payload.clone())
        };
        Self {
            message_id: message.id,
            message_type: message.message_type.clone(),
            payload,
            destination: message.destination.clone(),
            signature: None,
        }
    }

    /// The bytes a destination receives: JSON payloads re-serialised, strings as they are.
    pub fn payload_bytes(&self) -> Vec<u8> {
        match &self.payload {
            serde_json::Value::String(text) => text.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        }
    }
}

/// A gateway's confirmation that the destination accepted a message: `{"message_id"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The message confirmed.
    pub message_id: MessageId,
}

/// A gateway's report that a message could not be forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    /// Why, naming the phase ("forward to destination: HTTP 500 …").
    pub reason: String,
}

/// A gateway agent's periodic report about itself; it feeds "last seen" in the admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The agent's version.
    pub agent_version: String,
    /// Seconds since the agent started.
    pub uptime_seconds: u64,
    /// Messages in the agent's inbox not yet forwarded or reported.
    pub inbox_depth: u64,
    /// Whether its relay listener's control channel is open (as far as the agent can tell);
    /// absent when it listens on no relay, and from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_listener_connected: Option<bool>,
    /// The DICOM worklist it serves; absent when it serves none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worklist: Option<WorklistHealth>,
}

/// What an agent reports of the worklist it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorklistHealth {
    /// When a modality last queried it (C-FIND); absent when none has since the agent started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_query_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The outcome a gateway reports over the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayStatus {
    /// Forwarded to the destination and accepted.
    Processed,
    /// Could not be processed; `reason` says why.
    Error,
}

/// The gateway's answer on a relay rendezvous: `{"status":"processed","message_id"}` or an error
/// status with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayReply {
    /// Processed or error.
    pub status: RelayStatus,
    /// The message answered.
    pub message_id: MessageId,
    /// Why it failed, with the phase, when `status` is error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_polled_message_has_the_proof_of_concept_field_names() {
        let json = r#"{"message_id":"67e55044-10b1-426f-9247-bb680e5fe0c8","type":"FHIR",
            "payload":{"resourceType":"ServiceRequest"},"destination":"log:","added_later":1}"#;
        let message: GatewayMessage = serde_json::from_str(json).unwrap();
        assert_eq!(message.message_type, MessageType::fhir());
        let back = serde_json::to_value(&message).unwrap();
        let mut keys: Vec<_> = back.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["destination", "message_id", "payload", "type"]);
    }

    #[test]
    fn a_relay_reply_omits_the_reason_when_processed_and_reads_it_when_given() {
        let id = MessageId::parse("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap();
        let ok = RelayReply {
            status: RelayStatus::Processed,
            message_id: id,
            reason: None,
        };
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"status":"processed","message_id":"67e55044-10b1-426f-9247-bb680e5fe0c8"}"#
        );
        let failed: RelayReply = serde_json::from_str(
            r#"{"status":"error","message_id":"67e55044-10b1-426f-9247-bb680e5fe0c8","reason":"forward to destination: HTTP 500"}"#,
        )
        .unwrap();
        assert_eq!(failed.status, RelayStatus::Error);
        assert_eq!(
            failed.reason.as_deref(),
            Some("forward to destination: HTTP 500")
        );
    }

    #[test]
    fn a_confirmation_is_just_the_message_id() {
        let c: Confirmation =
            serde_json::from_str(r#"{"message_id":"67e55044-10b1-426f-9247-bb680e5fe0c8"}"#)
                .unwrap();
        assert_eq!(
            c.message_id.to_string(),
            "67e55044-10b1-426f-9247-bb680e5fe0c8"
        );
        assert!(serde_json::from_str::<Confirmation>(r#"{"message_id":"nope"}"#).is_err());
    }
}

/// The v1 answer to a poll (`GET /api/v1/gateways/{id}/messages`).
#[derive(Debug, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// The messages now leased to the gateway, oldest first.
    pub messages: Vec<GatewayMessage>,
}

/// The v1 answer to a confirmation or failure report.
#[derive(Debug, Serialize, Deserialize)]
pub struct OutcomeResponse {
    /// The message concerned.
    pub message_id: MessageId,
    /// Its status now.
    pub status: crate::message::MessageStatus,
    /// True when this report changed nothing because an identical one came before.
    #[serde(default)]
    pub already: bool,
}

/// Several confirmations in one request (v1 `POST .../confirmations`): the messages the gateway
/// handed on, so a busy gateway pays one round trip and one commit for many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationBatch {
    /// The messages confirmed, at most [`ConfirmationBatch::MAX`].
    pub message_ids: Vec<MessageId>,
}

impl ConfirmationBatch {
    /// The most message ids one batch may carry.
    pub const MAX: usize = 1000;
}

/// The hub's answer to a [`ConfirmationBatch`]: one outcome per message id, in the order sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationBatchResponse {
    /// The outcomes.
    pub outcomes: Vec<BatchOutcome>,
}

/// What one confirmation of a batch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// The message concerned.
    pub message_id: MessageId,
    /// The HTTP status a confirmation of this message alone would have had (200, 403, 404, 409).
    pub status: u16,
    /// True when it had been confirmed before.
    #[serde(default)]
    pub already: bool,
    /// Why it was refused, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The hub's answer to a procedure report: the appointment's state after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcedureResponse {
    /// The order the report was about.
    pub message_id: MessageId,
    /// Where the appointment is now.
    pub appointment_state: crate::appointment::AppointmentState,
}
