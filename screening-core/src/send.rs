//! The use case at the heart of the system: acting on an appointment, and for "Send to modality" or
//! "Resend", building the outbox message that the same transaction commits.

use chrono::{DateTime, Utc};

use crate::appointment::{
    Actor, Appointment, AppointmentAction, AppointmentEvent, TransitionError,
};
use crate::fhir::{render_service_request, FhirError, ServiceRequestInput};
use crate::gateway::{Gateway, NoRoute};
use crate::ids::{MessageId, SettingId};
use crate::message::{Message, MessageType};
use crate::people::{Clinic, ClinicSlot, Participant, Provider, Setting};
use crate::ports::{AppointmentChange, AppointmentStore, StoreError};

/// Everything acting on one appointment needs, as loaded by an [`AppointmentStore`].
#[derive(Debug, Clone)]
pub struct SendContext {
    /// The appointment as read (its version is the concurrency check).
    pub appointment: Appointment,
    /// Who is booked.
    pub participant: Participant,
    /// The booked slot.
    pub slot: ClinicSlot,
    /// The clinic of the slot.
    pub clinic: Clinic,
    /// Where the clinic runs.
    pub setting: Setting,
    /// Who runs the setting.
    pub provider: Provider,
    /// The gateways serving the setting.
    pub gateways: Vec<Gateway>,
    /// The appointment's most recent message, which a resend links to.
    pub latest_message_id: Option<MessageId>,
}

/// What the caller asks for; time and the new id come from outside so the core stays pure.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    /// What to do.
    pub action: AppointmentAction,
    /// The message type to send, for sending actions (`FHIR`).
    pub message_type: MessageType,
    /// Now.
    pub now: DateTime<Utc>,
    /// The id for the message, if one is written.
    pub new_message_id: MessageId,
    /// Who acts.
    pub by: Actor,
}

impl ActionRequest {
    /// A request to send `FHIR`, or to do a non-sending action.
    pub fn new(
        action: AppointmentAction,
        now: DateTime<Utc>,
        new_message_id: MessageId,
        by: Actor,
    ) -> Self {
        Self {
            action,
            message_type: MessageType::fhir(),
            now,
            new_message_id,
            by,
        }
    }
}

/// Why an action was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The state machine does not allow it (includes "already sent").
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// No gateway serves the clinic's setting.
    #[error("no gateway serves setting {setting_name:?}; add one in the gateway admin")]
    NoGateway {
        /// The setting without a gateway.
        setting_id: SettingId,
        /// Its name, for the message.
        setting_name: String,
    },
    /// The gateway has no destination for the message type.
    #[error(transparent)]
    NoRoute(#[from] NoRoute),
    /// We cannot render payloads of this type yet.
    #[error("message type {0} cannot be rendered yet; FHIR is supported")]
    UnsupportedMessageType(MessageType),
    /// The payload could not be rendered.
    #[error(transparent)]
    Fhir(#[from] FhirError),
}

/// The result of an allowed action: the new appointment, its event, and the message for sends.
#[derive(Debug, Clone)]
pub struct ActionOutcome {
    /// The appointment afterwards.
    pub appointment: Appointment,
    /// The audit event.
    pub event: AppointmentEvent,
    /// The outbox message, for sending actions.
    pub message: Option<Message>,
}

/// Applies an action to an appointment: pure, no I/O.
///
/// For `SendToModality` and `Resend` it picks the first gateway of the setting with a route for the
/// message type, renders the payload and builds the pending message; cancelling an appointment
/// that was sent builds the revoked order the same way, so the modality's worklist drops it.
pub fn act(context: &SendContext, request: &ActionRequest) -> Result<ActionOutcome, SendError> {
    let (appointment, event) =
        context
            .appointment
            .apply(request.action, request.now, request.by.clone())?;
    let withdraws = request.action == AppointmentAction::Cancel
        && context.appointment.state == crate::appointment::AppointmentState::SentToModality;
    let message = if request.action.sends_message() || withdraws {
        Some(build_message(context, request, withdraws)?)
    } else {
        None
    };
    Ok(ActionOutcome {
        appointment,
        event,
        message,
    })
}

/// "Send to modality" as the issue names it: the transition and the `FHIR` message, or why not.
pub fn send_to_modality(
    context: &SendContext,
    now: DateTime<Utc>,
    new_message_id: MessageId,
    by: Actor,
) -> Result<ActionOutcome, SendError> {
    act(
        context,
        &ActionRequest::new(AppointmentAction::SendToModality, now, new_message_id, by),
    )
}

fn build_message(
    context: &SendContext,
    request: &ActionRequest,
    revoked: bool,
) -> Result<Message, SendError> {
    let message_type = &request.message_type;
    let gateway = choose_gateway(context, message_type)?;
    let destination = gateway.destination_for(message_type)?.clone();
    let payload = match message_type.as_str() {
        MessageType::FHIR_NAME => render_service_request(&ServiceRequestInput {
            message_id: request.new_message_id,
            appointment_id: context.appointment.id,
            participant: &context.participant,
            slot: &context.slot,
            provider: &context.provider,
            setting: &context.setting,
            authored_on: request.now,
            revoked,
        })?,
        _ => return Err(SendError::UnsupportedMessageType(message_type.clone())),
    };
    Ok(Message {
        id: request.new_message_id,
        gateway_id: gateway.id,
        participant_id: context.participant.id,
        appointment_id: context.appointment.id,
        message_type: message_type.clone(),
        payload,
        destination,
        created_at: request.now,
        delivered_at: None,
        lease_expires_at: None,
        confirmed_at: None,
        failed_at: None,
        attempts: 0,
        last_error: None,
        resend_of: match request.action {
            AppointmentAction::Resend => context.latest_message_id,
            _ => None,
        },
    })
}

fn choose_gateway<'a>(
    context: &'a SendContext,
    message_type: &MessageType,
) -> Result<&'a Gateway, SendError> {
    let first = context
        .gateways
        .first()
        .ok_or_else(|| SendError::NoGateway {
            setting_id: context.setting.id,
            setting_name: context.setting.name.clone(),
        })?;
    Ok(context
        .gateways
        .iter()
        .find(|gateway| gateway.destination_for(message_type).is_ok())
        .unwrap_or(first))
}

/// Acting on an appointment through a store failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The action was refused; nothing was written.
    #[error(transparent)]
    Refused(#[from] SendError),
    /// Someone else changed the appointment at the same moment in a way that still allows this
    /// action; nothing was written, and trying again is safe.
    #[error(
        "the appointment was changed by someone else at the same moment; reload and try again"
    )]
    Conflict,
    /// Storage failed; nothing was written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads the appointment, applies the action and commits the change (and its message) atomically.
///
/// When two people act at the same moment, one commit wins; the other is re-checked against the
/// fresh state so it gets the precise refusal ("already sent to the modality") rather than a
/// generic conflict.
pub async fn act_on_appointment<S: AppointmentStore + ?Sized>(
    store: &S,
    appointment_id: crate::ids::AppointmentId,
    request: &ActionRequest,
) -> Result<ActionOutcome, ActionError> {
    let context = store.send_context(appointment_id).await?;
    let outcome = act(&context, request)?;
    commit_outcome(store, &context, request, outcome).await
}

/// Commits an outcome already worked out from `context` (by [`act`]): one load and one render per
/// action. The store checks in the transaction that the appointment is still at the version the
/// context was loaded at; if someone else committed first, the request is re-checked against the
/// fresh state for the precise refusal.
pub async fn commit_outcome<S: AppointmentStore + ?Sized>(
    store: &S,
    context: &SendContext,
    request: &ActionRequest,
    outcome: ActionOutcome,
) -> Result<ActionOutcome, ActionError> {
    let appointment_id = context.appointment.id;
    let change = AppointmentChange {
        appointment: outcome.appointment.clone(),
        expected_version: context.appointment.version,
        event: outcome.event.clone(),
        message: outcome.message.clone(),
    };
    match store.commit_change(&change).await {
        Ok(()) => Ok(outcome),
        Err(StoreError::VersionConflict { .. }) => {
            let fresh = store.send_context(appointment_id).await?;
            act(&fresh, request)?;
            Err(ActionError::Conflict)
        }
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appointment::AppointmentState;
    use crate::gateway::{Destination, Route, Transport};
    use crate::ids::*;
    use crate::nhs_number::NhsNumber;
    use crate::people::Sex;
    use chrono::NaiveDate;
    use uuid::Uuid;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn gateway(routes: Vec<Route>) -> Gateway {
        Gateway {
            id: GatewayId::from_uuid(id(10)),
            name: "Leeds gateway".into(),
            setting_id: SettingId::from_uuid(id(5)),
            transport: Transport::Polling,
            routes,
        }
    }

    fn fhir_route() -> Route {
        Route {
            message_type: MessageType::fhir(),
            destination: Destination::parse("https://ris.example/fhir/ServiceRequest").unwrap(),
        }
    }

    fn context(state: AppointmentState, gateways: Vec<Gateway>) -> SendContext {
        let now = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        SendContext {
            appointment: Appointment {
                id: AppointmentId::from_uuid(id(1)),
                clinic_slot_id: ClinicSlotId::from_uuid(id(2)),
                participant_id: ParticipantId::from_uuid(id(3)),
                state,
                version: 1,
            },
            participant: Participant {
                id: ParticipantId::from_uuid(id(3)),
                first_name: "Janet".into(),
                last_name: "Williams".into(),
                date_of_birth: NaiveDate::from_ymd_opt(1960, 4, 2).unwrap(),
                nhs_number: NhsNumber::parse("9990001235").unwrap(),
                sex: Sex::Female,
            },
            slot: ClinicSlot {
                id: ClinicSlotId::from_uuid(id(2)),
                clinic_id: ClinicId::from_uuid(id(4)),
                starts_at: now,
                duration_minutes: 10,
            },
            clinic: Clinic {
                id: ClinicId::from_uuid(id(4)),
                setting_id: SettingId::from_uuid(id(5)),
                date: now.date_naive(),
                name: "Morning".into(),
            },
            setting: Setting {
                id: SettingId::from_uuid(id(5)),
                provider_id: ProviderId::from_uuid(id(6)),
                name: "Leeds".into(),
            },
            provider: Provider {
                id: ProviderId::from_uuid(id(6)),
                name: "West Yorkshire".into(),
                ods_code: "RR8".into(),
            },
            gateways,
            latest_message_id: Some(MessageId::from_uuid(id(99))),
        }
    }

    fn request(action: AppointmentAction) -> ActionRequest {
        ActionRequest::new(
            action,
            DateTime::from_timestamp(1_795_000_100, 0).unwrap(),
            MessageId::from_uuid(id(42)),
            Actor("clinician".into()),
        )
    }

    #[test]
    fn sending_a_checked_in_appointment_builds_a_pending_fhir_message_for_the_route() {
        let ctx = context(
            AppointmentState::CheckedIn,
            vec![gateway(vec![fhir_route()])],
        );
        let outcome = act(&ctx, &request(AppointmentAction::SendToModality)).unwrap();
        assert_eq!(outcome.appointment.state, AppointmentState::SentToModality);
        let message = outcome.message.unwrap();
        assert_eq!(message.id, MessageId::from_uuid(id(42)));
        assert_eq!(message.gateway_id, GatewayId::from_uuid(id(10)));
        assert_eq!(
            message.destination.as_str(),
            "https://ris.example/fhir/ServiceRequest"
        );
        assert_eq!(message.status(), crate::message::MessageStatus::Pending);
        assert!(message.payload.contains("1224585002"));
        assert_eq!(message.resend_of, None);
    }

    #[test]
    fn send_to_modality_is_act_with_the_send_action() {
        let ctx = context(AppointmentState::Arrived, vec![gateway(vec![fhir_route()])]);
        let req = request(AppointmentAction::SendToModality);
        let outcome = send_to_modality(&ctx, req.now, req.new_message_id, req.by.clone()).unwrap();
        assert_eq!(outcome.event.action, AppointmentAction::SendToModality);
        assert_eq!(outcome.message, act(&ctx, &req).unwrap().message);
    }

    #[test]
    fn a_resend_keeps_the_state_and_links_to_the_latest_message() {
        let ctx = context(
            AppointmentState::SentToModality,
            vec![gateway(vec![fhir_route()])],
        );
        let outcome = act(&ctx, &request(AppointmentAction::Resend)).unwrap();
        assert_eq!(outcome.appointment.state, AppointmentState::SentToModality);
        assert_eq!(
            outcome.message.unwrap().resend_of,
            Some(MessageId::from_uuid(id(99)))
        );
    }

    #[test]
    fn a_gateway_without_a_route_for_the_type_is_a_typed_error() {
        let ctx = context(AppointmentState::CheckedIn, vec![gateway(vec![])]);
        let error = act(&ctx, &request(AppointmentAction::SendToModality)).unwrap_err();
        assert!(matches!(error, SendError::NoRoute(_)), "{error:?}");
        assert!(error.to_string().contains("no route for message type FHIR"));
    }

    #[test]
    fn a_setting_without_a_gateway_is_a_typed_error() {
        let ctx = context(AppointmentState::CheckedIn, vec![]);
        let error = act(&ctx, &request(AppointmentAction::SendToModality)).unwrap_err();
        assert!(matches!(error, SendError::NoGateway { .. }));
    }

    #[test]
    fn check_in_writes_no_message() {
        let ctx = context(AppointmentState::Arrived, vec![]);
        let outcome = act(&ctx, &request(AppointmentAction::CheckIn)).unwrap();
        assert_eq!(outcome.appointment.state, AppointmentState::CheckedIn);
        assert!(outcome.message.is_none());
    }

    #[test]
    fn an_unknown_message_type_is_refused_not_rendered_wrongly() {
        let ctx = context(
            AppointmentState::CheckedIn,
            vec![gateway(vec![Route {
                message_type: MessageType::parse("WORKLIST").unwrap(),
                destination: Destination::parse("log:").unwrap(),
            }])],
        );
        let mut req = request(AppointmentAction::SendToModality);
        req.message_type = MessageType::parse("WORKLIST").unwrap();
        assert!(matches!(
            act(&ctx, &req),
            Err(SendError::UnsupportedMessageType(_))
        ));
    }

    /// An in-memory store that counts what is asked of it: how many loads (`send_context`) and
    /// commits one action costs. `rival` commits a change of its own just before ours, as a second
    /// clinician would.
    struct CountingStore {
        context: std::sync::Mutex<SendContext>,
        loads: std::sync::atomic::AtomicUsize,
        commits: std::sync::atomic::AtomicUsize,
        rival: std::sync::Mutex<Option<AppointmentState>>,
    }

    impl CountingStore {
        fn new(context: SendContext) -> Self {
            Self {
                context: std::sync::Mutex::new(context),
                loads: Default::default(),
                commits: Default::default(),
                rival: Default::default(),
            }
        }
        fn counts(&self) -> (usize, usize) {
            use std::sync::atomic::Ordering::SeqCst;
            (self.loads.load(SeqCst), self.commits.load(SeqCst))
        }
    }

    #[async_trait::async_trait]
    impl AppointmentStore for CountingStore {
        async fn send_context(&self, _: AppointmentId) -> Result<SendContext, StoreError> {
            self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self.context.lock().unwrap().clone())
        }

        async fn commit_change(&self, change: &AppointmentChange) -> Result<(), StoreError> {
            self.commits
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut current = self.context.lock().unwrap();
            if let Some(state) = self.rival.lock().unwrap().take() {
                current.appointment.state = state;
                current.appointment.version += 1;
            }
            if current.appointment.version != change.expected_version {
                return Err(StoreError::VersionConflict {
                    expected: change.expected_version,
                });
            }
            current.appointment = change.appointment.clone();
            Ok(())
        }
    }

    fn sendable_store() -> CountingStore {
        CountingStore::new(context(
            AppointmentState::CheckedIn,
            vec![gateway(vec![fhir_route()])],
        ))
    }

    /// "Send to modality" for the store's appointment, through [`act_on_appointment`].
    async fn send_through(store: &CountingStore) -> Result<ActionOutcome, ActionError> {
        act_on_appointment(
            store,
            AppointmentId::from_uuid(id(1)),
            &request(AppointmentAction::SendToModality),
        )
        .await
    }

    #[tokio::test]
    async fn acting_through_a_store_costs_one_load_and_one_commit() {
        let store = sendable_store();
        let outcome = send_through(&store).await.unwrap();
        assert!(outcome.message.is_some());
        assert_eq!(store.counts(), (1, 1), "(loads, commits)");
    }

    #[tokio::test]
    async fn committing_a_checked_outcome_loads_nothing_more() {
        // The web page loads once, checks and renders with `act`, then commits that very outcome.
        let store = sendable_store();
        let loaded = store
            .send_context(AppointmentId::from_uuid(id(1)))
            .await
            .unwrap();
        let request = request(AppointmentAction::SendToModality);
        let outcome = act(&loaded, &request).unwrap();
        let rendered = outcome.message.clone().unwrap();
        let committed = commit_outcome(&store, &loaded, &request, outcome)
            .await
            .unwrap();
        assert_eq!(store.counts(), (1, 1), "(loads, commits)");
        assert_eq!(
            committed.message.unwrap().payload,
            rendered.payload,
            "the render checked is the one committed"
        );
    }

    #[tokio::test]
    async fn losing_a_race_rechecks_against_the_fresh_state_for_the_precise_refusal() {
        let store = sendable_store();
        *store.rival.lock().unwrap() = Some(AppointmentState::SentToModality);
        let refused = send_through(&store).await.unwrap_err();
        assert!(matches!(refused, ActionError::Refused(_)), "{refused:?}");
        assert_eq!(
            store.counts(),
            (2, 1),
            "one load more, only after the conflict"
        );

        // A rival change that still allows the action is a plain conflict, safe to retry.
        let store = sendable_store();
        *store.rival.lock().unwrap() = Some(AppointmentState::CheckedIn);
        let conflict = send_through(&store).await.unwrap_err();
        assert!(matches!(conflict, ActionError::Conflict), "{conflict:?}");
    }

    #[test]
    fn cancelling_a_sent_appointment_withdraws_its_order() {
        let ctx = context(
            AppointmentState::SentToModality,
            vec![gateway(vec![fhir_route()])],
        );
        let outcome = act(&ctx, &request(AppointmentAction::Cancel)).unwrap();
        assert_eq!(outcome.appointment.state, AppointmentState::Cancelled);
        let message = outcome.message.expect("a revoke message");
        let json: serde_json::Value = serde_json::from_str(&message.payload).unwrap();
        assert_eq!(json["status"], "revoked");
        // Cancelling before anything was sent writes no message.
        let ctx = context(
            AppointmentState::CheckedIn,
            vec![gateway(vec![fhir_route()])],
        );
        assert!(act(&ctx, &request(AppointmentAction::Cancel))
            .unwrap()
            .message
            .is_none());
    }
}
