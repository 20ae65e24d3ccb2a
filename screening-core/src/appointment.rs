//! Appointments and their state machine.
//!
//! The whole machine is the [`TRANSITIONS`] table: the docs, the UI's buttons and the checks all read
//! it, so there is one place to change. Applying an action is a pure function that returns the new
//! appointment and the audit event, or a typed error; it never panics.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AppointmentId, ClinicSlotId, ParticipantId};

/// Where an appointment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentState {
    /// Booked; the participant has not arrived yet.
    Pending,
    /// The participant is at the setting.
    Arrived,
    /// Identity confirmed at reception.
    CheckedIn,
    /// An order has been sent to the mammography modality.
    SentToModality,
    /// The modality has started the examination (its MPPS IN PROGRESS).
    InProgress,
    /// The modality stopped the examination before it was done (its MPPS DISCONTINUED).
    Discontinued,
    /// The screening is done.
    Complete,
    /// Cancelled before it happened.
    Cancelled,
    /// The participant did not come.
    DidNotAttend,
}

/// Something staff do to an appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentAction {
    /// Record that the participant has arrived.
    MarkArrived,
    /// Check the participant in.
    CheckIn,
    /// Send the order to the modality (creates a message).
    SendToModality,
    /// Send the order again (creates a new message, keeps the state).
    Resend,
    /// Mark the screening as done.
    Complete,
    /// Cancel the appointment.
    Cancel,
    /// Record that the participant did not attend.
    MarkDidNotAttend,
    /// The modality reports it started (never a staff button).
    ModalityStarted,
    /// The modality reports it completed (never a staff button).
    ModalityCompleted,
    /// The modality reports it stopped before completing (never a staff button).
    ModalityDiscontinued,
}

/// One row of the state machine: `action` takes an appointment from `from` to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state the appointment must be in.
    pub from: AppointmentState,
    /// What staff do.
    pub action: AppointmentAction,
    /// The state afterwards.
    pub to: AppointmentState,
}

use AppointmentAction as A;
use AppointmentState as S;

const fn t(from: S, action: A, to: S) -> Transition {
    Transition { from, action, to }
}

/// The appointment state machine, the single source of truth for what is allowed.
pub const TRANSITIONS: &[Transition] = &[
    t(S::Pending, A::MarkArrived, S::Arrived),
    t(S::Pending, A::CheckIn, S::CheckedIn),
    t(S::Arrived, A::CheckIn, S::CheckedIn),
    t(S::Arrived, A::SendToModality, S::SentToModality),
    t(S::CheckedIn, A::SendToModality, S::SentToModality),
    t(S::SentToModality, A::Resend, S::SentToModality),
    t(S::SentToModality, A::Complete, S::Complete),
    t(S::SentToModality, A::ModalityStarted, S::InProgress),
    // A modality that reports only the end (no N-CREATE seen) still completes the appointment.
    t(S::SentToModality, A::ModalityCompleted, S::Complete),
    t(S::SentToModality, A::ModalityDiscontinued, S::Discontinued),
    t(S::InProgress, A::ModalityCompleted, S::Complete),
    t(S::InProgress, A::ModalityDiscontinued, S::Discontinued),
    t(S::InProgress, A::Complete, S::Complete),
    t(S::Discontinued, A::Resend, S::SentToModality),
    t(S::Discontinued, A::Complete, S::Complete),
    t(S::Pending, A::Cancel, S::Cancelled),
    t(S::Arrived, A::Cancel, S::Cancelled),
    t(S::CheckedIn, A::Cancel, S::Cancelled),
    // Cancelling a sent appointment also withdraws its order (a revoked ServiceRequest).
    t(S::SentToModality, A::Cancel, S::Cancelled),
    t(S::Pending, A::MarkDidNotAttend, S::DidNotAttend),
];

/// The state machine as a Markdown table (state, action, next state), for docs and admin pages.
pub fn transitions_markdown() -> String {
    let mut table = String::from("| From | Action | To |\n|---|---|---|\n");
    for row in TRANSITIONS {
        table.push_str(&format!(
            "| {} | {} | {} |\n",
            row.from.label(),
            row.action.label(),
            row.to.label()
        ));
    }
    table
}

impl AppointmentState {
    /// Every state, in the order a clinic moves through them.
    pub const ALL: [AppointmentState; 9] = [
        S::Pending,
        S::Arrived,
        S::CheckedIn,
        S::SentToModality,
        S::InProgress,
        S::Discontinued,
        S::Complete,
        S::Cancelled,
        S::DidNotAttend,
    ];

    /// The stored and wire form (`checked_in`).
    pub const fn code(self) -> &'static str {
        match self {
            S::Pending => "pending",
            S::Arrived => "arrived",
            S::CheckedIn => "checked_in",
            S::SentToModality => "sent_to_modality",
            S::InProgress => "in_progress",
            S::Discontinued => "discontinued",
            S::Complete => "complete",
            S::Cancelled => "cancelled",
            S::DidNotAttend => "did_not_attend",
        }
    }

    /// The label staff see ("Checked in").
    pub const fn label(self) -> &'static str {
        match self {
            S::Pending => "Pending",
            S::Arrived => "Arrived",
            S::CheckedIn => "Checked in",
            S::SentToModality => "Sent to modality",
            S::InProgress => "In progress",
            S::Discontinued => "Discontinued",
            S::Complete => "Complete",
            S::Cancelled => "Cancelled",
            S::DidNotAttend => "Did not attend",
        }
    }

    /// The actions allowed from this state, in table order, including the modality's.
    pub fn allowed_actions(self) -> impl Iterator<Item = AppointmentAction> {
        TRANSITIONS
            .iter()
            .filter(move |row| row.from == self)
            .map(|row| row.action)
    }

    /// The actions staff may take from this state (the UI shows one button each).
    pub fn staff_actions(self) -> impl Iterator<Item = AppointmentAction> {
        self.allowed_actions()
            .filter(|action| !action.by_modality())
    }

    /// Where `action` leads from this state, if it is allowed.
    pub fn after(self, action: AppointmentAction) -> Option<AppointmentState> {
        TRANSITIONS
            .iter()
            .find(|row| row.from == self && row.action == action)
            .map(|row| row.to)
    }
}

impl AppointmentAction {
    /// Every action, in table order.
    pub const ALL: [AppointmentAction; 10] = [
        A::MarkArrived,
        A::CheckIn,
        A::SendToModality,
        A::Resend,
        A::Complete,
        A::Cancel,
        A::MarkDidNotAttend,
        A::ModalityStarted,
        A::ModalityCompleted,
        A::ModalityDiscontinued,
    ];

    /// The stored and wire form (`send_to_modality`).
    pub const fn code(self) -> &'static str {
        match self {
            A::MarkArrived => "mark_arrived",
            A::CheckIn => "check_in",
            A::SendToModality => "send_to_modality",
            A::Resend => "resend",
            A::Complete => "complete",
            A::Cancel => "cancel",
            A::MarkDidNotAttend => "mark_did_not_attend",
            A::ModalityStarted => "modality_started",
            A::ModalityCompleted => "modality_completed",
            A::ModalityDiscontinued => "modality_discontinued",
        }
    }

    /// The button label staff see ("Send to modality").
    pub const fn label(self) -> &'static str {
        match self {
            A::MarkArrived => "Mark arrived",
            A::CheckIn => "Check in",
            A::SendToModality => "Send to modality",
            A::Resend => "Resend",
            A::Complete => "Complete",
            A::Cancel => "Cancel",
            A::MarkDidNotAttend => "Did not attend",
            A::ModalityStarted => "Started by the modality",
            A::ModalityCompleted => "Completed by the modality",
            A::ModalityDiscontinued => "Discontinued by the modality",
        }
    }

    /// Whether the modality reports this (through its gateway), rather than staff pressing it.
    pub const fn by_modality(self) -> bool {
        matches!(
            self,
            A::ModalityStarted | A::ModalityCompleted | A::ModalityDiscontinued
        )
    }

    /// Whether this action writes a message to the outbox.
    pub const fn sends_message(self) -> bool {
        matches!(self, A::SendToModality | A::Resend)
    }
}

/// A stored code that is not a known state or action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {code:?}")]
pub struct UnknownCode {
    /// `appointment state` or `appointment action`.
    pub kind: &'static str,
    /// The text that did not match.
    pub code: String,
}

impl FromStr for AppointmentState {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.code() == s)
            .ok_or_else(|| UnknownCode {
                kind: "appointment state",
                code: s.chars().take(32).collect(),
            })
    }
}

impl FromStr for AppointmentAction {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|action| action.code() == s)
            .ok_or_else(|| UnknownCode {
                kind: "appointment action",
                code: s.chars().take(32).collect(),
            })
    }
}

impl fmt::Display for AppointmentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl fmt::Display for AppointmentAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// An action that the state machine does not allow from the appointment's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The appointment was already sent; pressing "Send to modality" again is refused (use Resend).
    #[error("this appointment has already been sent to the modality; use Resend to send it again")]
    AlreadySent,
    /// Any other disallowed action.
    #[error("cannot {action} an appointment that is {state}", action = .action.label().to_lowercase(), state = .state.label().to_lowercase())]
    NotAllowed {
        /// What was attempted.
        action: AppointmentAction,
        /// The state the appointment is in.
        state: AppointmentState,
    },
}

/// Who performed an action: a staff member's username, or the name of a system component; kept
/// in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Actor(pub String);

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The audit record of one transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentEvent {
    /// The appointment it happened to.
    pub appointment_id: AppointmentId,
    /// What was done.
    pub action: AppointmentAction,
    /// The state before.
    pub from: AppointmentState,
    /// The state after.
    pub to: AppointmentState,
    /// When.
    pub at: DateTime<Utc>,
    /// By whom.
    pub by: Actor,
}

/// A participant's booking in a clinic slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    /// Our identifier.
    pub id: AppointmentId,
    /// The slot booked.
    pub clinic_slot_id: ClinicSlotId,
    /// Who is booked.
    pub participant_id: ParticipantId,
    /// Where it is in the state machine.
    pub state: AppointmentState,
    /// Incremented on every transition; the store's optimistic concurrency check.
    pub version: i64,
}

impl Appointment {
    /// Applies `action`: the new appointment (version incremented) and its audit event, or why not.
    pub fn apply(
        &self,
        action: AppointmentAction,
        at: DateTime<Utc>,
        by: Actor,
    ) -> Result<(Appointment, AppointmentEvent), TransitionError> {
        let to = match self.state.after(action) {
            Some(to) => to,
            None if action == A::SendToModality && self.state == S::SentToModality => {
                return Err(TransitionError::AlreadySent)
            }
            None => {
                return Err(TransitionError::NotAllowed {
                    action,
                    state: self.state,
                })
            }
        };
        let event = AppointmentEvent {
            appointment_id: self.id,
            action,
            from: self.state,
            to,
            at,
            by,
        };
        let next = Appointment {
            state: to,
            version: self.version + 1,
            ..self.clone()
        };
        Ok((next, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn appointment(state: AppointmentState) -> Appointment {
        Appointment {
            id: AppointmentId::from_uuid(Uuid::from_u128(1)),
            clinic_slot_id: ClinicSlotId::from_uuid(Uuid::from_u128(2)),
            participant_id: ParticipantId::from_uuid(Uuid::from_u128(3)),
            state,
            version: 7,
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn sending_is_allowed_from_arrived_and_checked_in_only() {
        for state in AppointmentState::ALL {
            let allowed = state.after(A::SendToModality).is_some();
            assert_eq!(
                allowed,
                matches!(state, S::Arrived | S::CheckedIn),
                "{state:?}"
            );
        }
    }

    #[test]
    fn a_transition_returns_the_new_state_a_new_version_and_the_event() {
        let (next, event) = appointment(S::CheckedIn)
            .apply(A::SendToModality, at(), Actor("clinician-1".into()))
            .unwrap();
        assert_eq!(next.state, S::SentToModality);
        assert_eq!(next.version, 8);
        assert_eq!(event.from, S::CheckedIn);
        assert_eq!(event.to, S::SentToModality);
        assert_eq!(event.at, at());
        assert_eq!(event.by, Actor("clinician-1".into()));
    }

    #[test]
    fn resending_keeps_the_state() {
        let (next, event) = appointment(S::SentToModality)
            .apply(A::Resend, at(), Actor("c".into()))
            .unwrap();
        assert_eq!(next.state, S::SentToModality);
        assert_eq!(
            (event.from, event.to),
            (S::SentToModality, S::SentToModality)
        );
    }

    #[test]
    fn sending_twice_is_refused_as_already_sent() {
        let error = appointment(S::SentToModality)
            .apply(A::SendToModality, at(), Actor("c".into()))
            .unwrap_err();
        assert_eq!(error, TransitionError::AlreadySent);
        assert!(error.to_string().contains("already been sent"));
    }

    #[test]
    fn every_action_not_in_the_table_is_a_typed_error_never_a_panic() {
        for state in AppointmentState::ALL {
            for action in AppointmentAction::ALL {
                let result = appointment(state).apply(action, at(), Actor("c".into()));
                assert_eq!(
                    result.is_ok(),
                    state.after(action).is_some(),
                    "{state:?} {action:?}"
                );
            }
        }
    }

    #[test]
    fn a_refused_action_names_the_action_and_the_state() {
        let error = appointment(S::Complete)
            .apply(A::Cancel, at(), Actor("c".into()))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot cancel an appointment that is complete"
        );
    }

    #[test]
    fn terminal_states_allow_nothing() {
        for state in [S::Complete, S::Cancelled, S::DidNotAttend] {
            assert_eq!(state.allowed_actions().count(), 0, "{state:?}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for state in AppointmentState::ALL {
            assert_eq!(state.code().parse::<AppointmentState>(), Ok(state));
        }
        for action in AppointmentAction::ALL {
            assert_eq!(action.code().parse::<AppointmentAction>(), Ok(action));
        }
        assert!("sent".parse::<AppointmentState>().is_err());
    }
}
