//! Health proven by traffic: the hub sends each gateway an echo through the path real orders
//! take (the long-poll answer or a relay rendezvous, signed like an order), and the agent answers
//! it without forwarding (a worklist gateway first checks its DICOM listener with a C-ECHO). The
//! round trip is what the admin shows: "proven working at 09:12 (round trip 4 ms)".
//!
//! An agent that predates echoes sees a `log:` order and confirms it, so the path is still proven.

use chrono::{DateTime, TimeDelta, Utc};

use crate::gateway::Destination;
use crate::ids::MessageId;
use crate::message::MessageType;
use crate::wire::GatewayMessage;

/// The message type of an echo.
pub const ECHO_TYPE_NAME: &str = "ECHO";

/// How long an echo may go unanswered before the gateway counts as not proven.
pub const ECHO_ANSWER_WITHIN: TimeDelta = TimeDelta::seconds(60);

impl MessageType {
    /// The echo's message type.
    pub fn echo() -> Self {
        MessageType::parse(ECHO_TYPE_NAME).expect("a valid message type name")
    }

    /// True for an echo, which a gateway answers and never forwards.
    pub fn is_echo(&self) -> bool {
        self.as_str() == ECHO_TYPE_NAME
    }
}

/// The wire form of echo `id`, requested at `requested_at`.
pub fn echo_message(id: MessageId, requested_at: DateTime<Utc>) -> GatewayMessage {
    GatewayMessage {
        message_id: id,
        message_type: MessageType::echo(),
        payload: serde_json::json!({ "echo_requested_at": requested_at }),
        destination: Destination::parse("log:").expect("log: is a destination"),
        signature: None,
    }
}

/// What the hub knows of a gateway's echoes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EchoRecord {
    /// The echo in flight: when it was asked for (`None` when none is waiting).
    pub requested_at: Option<DateTime<Utc>>,
    /// When an echo last came back answered.
    pub proven_at: Option<DateTime<Utc>>,
    /// That echo's round trip, in milliseconds.
    pub round_trip_ms: Option<i64>,
    /// When the last answer came, good or bad.
    pub answered_at: Option<DateTime<Utc>>,
    /// Why the last answer was not good (the phase first), if it was not.
    pub last_error: Option<String>,
}

/// Whether a gateway's path is proven, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// The last echo came back answered, in time.
    Proven {
        /// When.
        at: DateTime<Utc>,
        /// Its round trip in milliseconds.
        round_trip_ms: i64,
    },
    /// An echo failed or went unanswered after the last good one (`since`: that good one).
    NotProven {
        /// The last good echo, if there ever was one.
        since: Option<DateTime<Utc>>,
        /// What went wrong.
        why: String,
    },
    /// No echo has been sent yet.
    NotChecked,
}

impl EchoRecord {
    /// The proof as of `now`: an echo unanswered for [`ECHO_ANSWER_WITHIN`], or a failed
    /// answer, takes it away (the late echo is the newer news, so it is told first).
    pub fn proof(&self, now: DateTime<Utc>) -> Proof {
        if let Some(requested_at) = self.requested_at {
            if now - requested_at >= ECHO_ANSWER_WITHIN {
                return Proof::NotProven {
                    since: self.proven_at,
                    why: format!(
                        "await reply: no answer to the echo within {} seconds",
                        ECHO_ANSWER_WITHIN.num_seconds()
                    ),
                };
            }
        }
        let failed_last = self.answered_at.is_some() && self.answered_at != self.proven_at;
        if failed_last {
            return Proof::NotProven {
                since: self.proven_at,
                why: self
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the echo failed".into()),
            };
        }
        match (self.proven_at, self.round_trip_ms) {
            (Some(at), Some(round_trip_ms)) => Proof::Proven { at, round_trip_ms },
            _ if self.requested_at.is_some() => Proof::NotProven {
                since: None,
                why: "the first echo has not come back yet".into(),
            },
            _ => Proof::NotChecked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_400_000 + seconds, 0).unwrap()
    }

    #[test]
    fn an_echo_is_a_log_order_of_type_echo_that_an_old_agent_would_simply_confirm() {
        let id = MessageId::from_uuid(uuid::Uuid::from_u128(9));
        let wire = echo_message(id, t(0));
        assert!(wire.message_type.is_echo());
        assert!(!MessageType::fhir().is_echo());
        assert_eq!(wire.destination.as_str(), "log:");
        let json = serde_json::to_value(&wire).unwrap();
        assert_eq!(json["type"], "ECHO");
    }

    #[test]
    fn the_proof_follows_the_last_answer_and_lapses_when_an_echo_goes_unanswered() {
        assert_eq!(EchoRecord::default().proof(t(0)), Proof::NotChecked);
        let waiting = EchoRecord {
            requested_at: Some(t(0)),
            ..EchoRecord::default()
        };
        assert!(matches!(
            waiting.proof(t(1)),
            Proof::NotProven { since: None, .. }
        ));
        let proven = EchoRecord {
            requested_at: None,
            proven_at: Some(t(1)),
            round_trip_ms: Some(4),
            answered_at: Some(t(1)),
            last_error: None,
        };
        assert_eq!(
            proven.proof(t(100)),
            Proof::Proven {
                at: t(1),
                round_trip_ms: 4
            }
        );
        // The next echo is on its way: still proven until it is late.
        let next = EchoRecord {
            requested_at: Some(t(300)),
            ..proven.clone()
        };
        assert!(matches!(next.proof(t(310)), Proof::Proven { .. }));
        let Proof::NotProven { since, why } = next.proof(t(360)) else {
            panic!("a late echo takes the proof away");
        };
        assert_eq!(since, Some(t(1)));
        assert!(why.starts_with("await reply"), "{why}");
        let failed = EchoRecord {
            answered_at: Some(t(301)),
            last_error: Some("worklist: the DICOM listener did not answer".into()),
            ..proven
        };
        assert_eq!(
            failed.proof(t(302)),
            Proof::NotProven {
                since: Some(t(1)),
                why: "worklist: the DICOM listener did not answer".into()
            }
        );
    }
}
