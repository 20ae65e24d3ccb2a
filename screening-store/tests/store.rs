//! The store against real databases: every scenario runs on a temporary SQLite file and on a fresh
//! PostgreSQL database.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use screening_core::prelude::*;
use screening_core::procedure::{ProcedureReport, ProcedureStatus};
use screening_core::send::SendError;
use screening_store::testing::{Backend, CapturedLogs, Scope, TestStore};
use screening_store::{DemoData, MessageFilter, ScreeningStore, StaffAccount};
use uuid::Uuid;

/// Runs a scenario once per backend, as two tests.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario(Backend::Postgres).await
            }
        }
    )*};
}

on_both_backends!(
    seeding_twice_changes_nothing,
    sending_commits_the_state_its_event_and_the_message_together,
    two_clinicians_pressing_send_at_once_make_exactly_one_message,
    a_commit_that_fails_part_way_writes_nothing,
    taking_leases_messages_and_confirming_is_idempotent,
    taking_does_what_the_core_deliver_function_does,
    confirming_does_what_the_core_confirm_function_does,
    a_confirmation_from_another_gateway_is_refused,
    a_failure_is_kept_with_its_reason,
    an_expired_lease_is_redelivered_and_parked_once_attempts_run_out,
    a_waiting_gateway_wakes_when_a_message_is_committed,
    a_resend_links_to_the_previous_message,
    a_gateway_and_its_routes_round_trip,
    last_seen_is_written_at_most_once_per_resolution,
    clinic_summaries_count_appointments_by_state,
    the_clinic_view_shows_only_the_latest_message_of_each_appointment,
    the_admin_filters_messages_by_status_and_gateway,
    the_gateway_backlog_counts_pending_messages_and_their_age,
    a_staff_account_is_saved_once_per_username,
    a_session_lasts_until_it_expires_or_ends,
    the_clinic_page_reads_appointments_with_their_latest_message_and_counts,
    the_modalitys_reports_move_the_appointment_once_and_show_on_the_clinic_page,
);

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_400_000 + seconds, 0).unwrap()
}

async fn seeded(backend: Backend) -> Option<(TestStore, DemoData)> {
    let test = TestStore::new(backend).await?;
    let demo = test.store.seed_demo(day(), t(0)).await.expect("seed");
    Some((test, demo))
}

fn send_request(action: AppointmentAction, at: DateTime<Utc>) -> ActionRequest {
    ActionRequest::new(
        action,
        at,
        MessageId::from_uuid(Uuid::new_v4()),
        Actor("clinician-1".into()),
    )
}

/// The first demo appointment that can be sent.
/// Performs `action` on an appointment at `at`; the message it wrote, if any.
async fn perform(
    store: &dyn ScreeningStore,
    id: AppointmentId,
    action: AppointmentAction,
    at: DateTime<Utc>,
) -> Option<Message> {
    act_on_appointment(store, id, &send_request(action, at))
        .await
        .expect("the action is allowed")
        .message
}

/// Presses "Send to modality" for `id` at `at`; the message it made.
async fn send(store: &dyn ScreeningStore, id: AppointmentId, at: DateTime<Utc>) -> Message {
    perform(store, id, AppointmentAction::SendToModality, at)
        .await
        .expect("sending makes a message")
}

fn sendable(demo: &DemoData) -> AppointmentId {
    demo.appointments
        .iter()
        .find(|a| a.state == AppointmentState::CheckedIn)
        .unwrap()
        .id
}

/// A pending message for the demo gateway, not tied to a transition.
fn loose_message(demo: &DemoData, created_at: DateTime<Utc>) -> Message {
    demo.pending_message(MessageId::from_uuid(Uuid::new_v4()), created_at)
}

async fn seeding_twice_changes_nothing(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    test.store.seed_demo(day(), t(5)).await.unwrap();
    let appointments = test
        .store
        .clinic_appointments(demo.clinic.id)
        .await
        .unwrap();
    assert_eq!(appointments.len(), 10);
    assert!(appointments
        .iter()
        .all(|a| a.participant.nhs_number.is_test_number()));
    assert!(appointments
        .windows(2)
        .all(|w| w[0].slot.starts_at < w[1].slot.starts_at));
    let gateway = test.store.gateway(demo.gateway.id).await.unwrap();
    assert_eq!(gateway, demo.gateway);
    test.cleanup().await;
}

async fn sending_commits_the_state_its_event_and_the_message_together(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let id = sendable(&demo);
    let message = send(test.store.as_ref(), id, t(10)).await;

    let context = test.store.send_context(id).await.unwrap();
    assert_eq!(context.appointment.state, AppointmentState::SentToModality);
    assert_eq!(context.appointment.version, 1);
    let events = test.store.appointment_events(id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, AppointmentAction::SendToModality);
    assert_eq!(events[0].by, Actor("clinician-1".into()));
    let stored = test.store.message(message.id).await.unwrap();
    assert_eq!(stored, message);
    assert_eq!(stored.status(), MessageStatus::Pending);
    let order = parse_service_request(&stored.payload).unwrap();
    assert_eq!(order.id.unwrap().value.unwrap(), message.id.to_string());
    test.cleanup().await;
}

async fn two_clinicians_pressing_send_at_once_make_exactly_one_message(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let candidates: Vec<_> = demo
        .appointments
        .iter()
        .filter(|a| a.state.after(AppointmentAction::SendToModality).is_some())
        .map(|a| a.id)
        .collect();
    assert!(candidates.len() >= 3);
    for id in candidates {
        let press = |store: Arc<dyn ScreeningStore>| async move {
            act_on_appointment(
                store.as_ref(),
                id,
                &send_request(AppointmentAction::SendToModality, t(20)),
            )
            .await
        };
        let (first, second) = tokio::join!(
            tokio::spawn(press(test.store.clone())),
            tokio::spawn(press(test.store.clone()))
        );
        let results = [first.unwrap(), second.unwrap()];
        let succeeded = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(succeeded, 1, "{results:?}");
        let refusal = results.into_iter().find_map(Result::err).unwrap();
        assert!(
            matches!(
                refusal,
                ActionError::Refused(SendError::Transition(TransitionError::AlreadySent))
            ),
            "{refusal:?}"
        );
        assert!(refusal.to_string().contains("already been sent"));
        assert_eq!(test.store.appointment_messages(id).await.unwrap().len(), 1);
        assert_eq!(test.store.appointment_events(id).await.unwrap().len(), 1);
    }
    test.cleanup().await;
}

async fn a_commit_that_fails_part_way_writes_nothing(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let id = sendable(&demo);
    let context = test.store.send_context(id).await.unwrap();
    let mut outcome = act(
        &context,
        &send_request(AppointmentAction::SendToModality, t(30)),
    )
    .unwrap();
    // A message for a gateway that does not exist violates a foreign key after the appointment row
    // and the event were written in the same transaction.
    let mut message = outcome.message.take().unwrap();
    message.gateway_id = GatewayId::from_uuid(Uuid::new_v4());
    let change = AppointmentChange {
        appointment: outcome.appointment,
        expected_version: context.appointment.version,
        event: outcome.event,
        message: Some(message),
    };
    let error = test.store.commit_change(&change).await.unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    let after = test.store.send_context(id).await.unwrap();
    assert_eq!(after.appointment.state, AppointmentState::CheckedIn);
    assert_eq!(after.appointment.version, context.appointment.version);
    assert!(test.store.appointment_events(id).await.unwrap().is_empty());
    assert!(test
        .store
        .appointment_messages(id)
        .await
        .unwrap()
        .is_empty());
    test.cleanup().await;
}

async fn taking_leases_messages_and_confirming_is_idempotent(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let gateway = demo.gateway.id;
    let first = loose_message(&demo, t(1));
    let second = loose_message(&demo, t(2));
    test.store.enqueue(&second).await.unwrap();
    test.store.enqueue(&first).await.unwrap();

    let taken = test
        .store
        .take_pending(gateway, t(10), t(40), 10)
        .await
        .unwrap();
    assert_eq!(
        taken.iter().map(|m| m.id).collect::<Vec<_>>(),
        [first.id, second.id],
        "oldest first"
    );
    assert!(taken
        .iter()
        .all(|m| m.status() == MessageStatus::Delivered && m.attempts == 1));
    assert!(test
        .store
        .take_pending(gateway, t(11), t(41), 10)
        .await
        .unwrap()
        .is_empty());

    assert_eq!(
        test.store.confirm(gateway, first.id, t(12)).await.unwrap(),
        Confirmed::Now
    );
    assert_eq!(
        test.store.confirm(gateway, first.id, t(13)).await.unwrap(),
        Confirmed::Already
    );
    let confirmed = test.store.message(first.id).await.unwrap();
    assert_eq!(confirmed.status(), MessageStatus::Confirmed);
    assert_eq!(confirmed.confirmed_at, Some(t(12)));
    assert_eq!(confirmed.delivered_at, Some(t(10)));

    let missing = test
        .store
        .confirm(gateway, MessageId::from_uuid(Uuid::new_v4()), t(14))
        .await;
    assert!(matches!(
        missing,
        Err(StoreError::NotFound {
            what: "message",
            ..
        })
    ));
    test.cleanup().await;
}

async fn taking_does_what_the_core_deliver_function_does(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let message = loose_message(&demo, t(1));
    test.store.enqueue(&message).await.unwrap();
    let taken = test
        .store
        .take_pending(demo.gateway.id, t(5), t(35), 1)
        .await
        .unwrap();
    assert_eq!(taken, vec![message.deliver(t(5), t(35)).unwrap()]);
    test.cleanup().await;
}

async fn confirming_does_what_the_core_confirm_function_does(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    // A delivered message and one confirmed straight from pending (its lease had expired).
    let delivered = loose_message(&demo, t(1));
    let pending = loose_message(&demo, t(2));
    test.store.enqueue(&delivered).await.unwrap();
    let taken = test
        .store
        .take_pending(demo.gateway.id, t(3), t(33), 1)
        .await
        .unwrap()
        .remove(0);
    test.store.enqueue(&pending).await.unwrap();
    for (message, at) in [(taken, t(4)), (pending, t(5))] {
        test.store
            .confirm(demo.gateway.id, message.id, at)
            .await
            .unwrap();
        let (expected, _) = message.confirm(at).unwrap();
        assert_eq!(test.store.message(message.id).await.unwrap(), expected);
    }
    test.cleanup().await;
}

async fn a_confirmation_from_another_gateway_is_refused(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let other = Gateway {
        id: GatewayId::from_uuid(Uuid::new_v4()),
        name: "Another site".into(),
        ..demo.gateway.clone()
    };
    test.store.save_gateway(&other, t(0)).await.unwrap();
    let message = loose_message(&demo, t(1));
    test.store.enqueue(&message).await.unwrap();
    test.store
        .take_pending(demo.gateway.id, t(2), t(32), 5)
        .await
        .unwrap();

    let refused = test.store.confirm(other.id, message.id, t(3)).await;
    assert!(
        matches!(refused, Err(StoreError::WrongGateway { .. })),
        "{refused:?}"
    );
    assert!(test
        .store
        .take_pending(other.id, t(3), t(33), 5)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        test.store.message(message.id).await.unwrap().status(),
        MessageStatus::Delivered
    );
    test.cleanup().await;
}

fn report(message: &Message, status: ProcedureStatus, at: DateTime<Utc>) -> ProcedureReport {
    ProcedureReport {
        message_id: message.id,
        status,
        at,
        station_ae_title: "MAMMO1".into(),
        reason: (status == ProcedureStatus::Discontinued).then(|| "Patient refused".into()),
    }
}

async fn the_modalitys_reports_move_the_appointment_once_and_show_on_the_clinic_page(
    backend: Backend,
) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let store = test.store.as_ref();
    let id = sendable(&demo);
    let first = send(store, id, t(1)).await;
    let gateway = demo.gateway.id;

    let started = report(&first, ProcedureStatus::InProgress, t(10));
    assert_eq!(
        store.record_procedure(gateway, &started).await.unwrap(),
        AppointmentState::InProgress
    );
    let version = store.send_context(id).await.unwrap().appointment.version;
    // The same report again (a retry after a lost answer) changes nothing.
    assert_eq!(
        store.record_procedure(gateway, &started).await.unwrap(),
        AppointmentState::InProgress
    );
    assert_eq!(
        store.send_context(id).await.unwrap().appointment.version,
        version
    );

    // Another gateway cannot report on this order.
    let other = Gateway {
        id: GatewayId::from_uuid(Uuid::new_v4()),
        name: "Another site".into(),
        ..demo.gateway.clone()
    };
    store.save_gateway(&other, t(0)).await.unwrap();
    assert!(matches!(
        store.record_procedure(other.id, &started).await,
        Err(StoreError::WrongGateway { .. })
    ));

    // The clinic page shows what the modality said.
    let latest = store
        .clinic_latest_messages(demo.clinic.id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.id == first.id)
        .unwrap();
    let note = latest.procedure.unwrap();
    assert_eq!(
        (note.status, note.at, note.station.as_str()),
        (ProcedureStatus::InProgress, t(10), "MAMMO1")
    );

    let discontinued = report(&first, ProcedureStatus::Discontinued, t(20));
    assert_eq!(
        store
            .record_procedure(gateway, &discontinued)
            .await
            .unwrap(),
        AppointmentState::Discontinued
    );
    // After the end, nothing more moves it.
    let late = report(&first, ProcedureStatus::Completed, t(21));
    assert_eq!(
        store.record_procedure(gateway, &late).await.unwrap(),
        AppointmentState::Discontinued
    );
    let events = store.appointment_events(id).await.unwrap();
    let by_modality: Vec<_> = events
        .iter()
        .filter(|e| e.action.by_modality())
        .map(|e| (e.action, e.by.0.as_str()))
        .collect();
    assert_eq!(
        by_modality,
        [
            (AppointmentAction::ModalityStarted, "modality MAMMO1"),
            (AppointmentAction::ModalityDiscontinued, "modality MAMMO1"),
        ]
    );

    // Resent after the discontinuation: a report on the replaced order stays on that order.
    let second = perform(store, id, AppointmentAction::Resend, t(30))
        .await
        .unwrap();
    let stale = ProcedureReport {
        status: ProcedureStatus::InProgress,
        ..report(&first, ProcedureStatus::InProgress, t(31))
    };
    let _ = store.record_procedure(gateway, &stale).await.unwrap();
    assert_eq!(
        store.send_context(id).await.unwrap().appointment.state,
        AppointmentState::SentToModality
    );
    assert_eq!(
        store
            // The setting now has two gateways; the resend went to whichever the route chose.
            .record_procedure(
                second.gateway_id,
                &report(&second, ProcedureStatus::Completed, t(40))
            )
            .await
            .unwrap(),
        AppointmentState::Complete
    );
    test.cleanup().await;
}

async fn a_failure_is_kept_with_its_reason(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let message = loose_message(&demo, t(1));
    test.store.enqueue(&message).await.unwrap();
    test.store
        .take_pending(demo.gateway.id, t(2), t(32), 5)
        .await
        .unwrap();
    let reason = "forward to destination: HTTP 500 Internal Server Error";
    let failed = test
        .store
        .fail(demo.gateway.id, message.id, t(3), reason)
        .await
        .unwrap();
    assert_eq!(failed.status(), MessageStatus::Failed);
    let stored = test.store.message(message.id).await.unwrap();
    assert_eq!(stored.last_error.as_deref(), Some(reason));
    assert_eq!(stored.failed_at, Some(t(3)));
    let confirm = test.store.confirm(demo.gateway.id, message.id, t(4)).await;
    assert!(
        matches!(confirm, Err(StoreError::Lifecycle(_))),
        "{confirm:?}"
    );
    assert!(test
        .store
        .take_pending(demo.gateway.id, t(5), t(35), 5)
        .await
        .unwrap()
        .is_empty());
    test.cleanup().await;
}

async fn an_expired_lease_is_redelivered_and_parked_once_attempts_run_out(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let gateway = demo.gateway.id;
    let message = loose_message(&demo, t(1));
    test.store.enqueue(&message).await.unwrap();
    test.store
        .take_pending(gateway, t(10), t(40), 5)
        .await
        .unwrap();

    assert_eq!(
        test.store.redeliver_expired(t(39), 2).await.unwrap(),
        0,
        "lease still running"
    );
    assert_eq!(test.store.redeliver_expired(t(40), 2).await.unwrap(), 1);
    let again = test
        .store
        .take_pending(gateway, t(41), t(71), 5)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);

    assert_eq!(
        test.store.redeliver_expired(t(71), 2).await.unwrap(),
        0,
        "parked, not pending"
    );
    let parked = test.store.message(message.id).await.unwrap();
    assert_eq!(parked.status(), MessageStatus::Failed);
    assert!(parked.last_error.unwrap().contains("after 2 attempts"));
    test.cleanup().await;
}

async fn a_waiting_gateway_wakes_when_a_message_is_committed(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let gateway = demo.gateway.id;
    assert!(!test
        .store
        .wait_for_pending(gateway, Duration::from_millis(200))
        .await
        .unwrap());

    // A waiter in this instance, and on PostgreSQL one in a second instance on the same database.
    let mut waiters = vec![test.store.clone()];
    if backend == Backend::Postgres {
        waiters.push(screening_store::connect(&test.url).await.unwrap());
    }
    let handles: Vec<_> = waiters
        .into_iter()
        .map(|store| {
            tokio::spawn(async move {
                store
                    .wait_for_pending(gateway, Duration::from_secs(20))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(test.store.as_ref(), sendable(&demo), t(5)).await;
    for handle in handles {
        let woken = tokio::time::timeout(Duration::from_secs(10), handle).await;
        assert!(matches!(woken, Ok(Ok(Ok(true)))), "{woken:?}");
    }
    // With a message pending, waiting returns at once.
    assert!(test
        .store
        .wait_for_pending(gateway, Duration::from_secs(20))
        .await
        .unwrap());
    test.cleanup().await;
}

/// The LISTEN connection dropped (here: terminated by the server) is logged, re-established, and
/// wake-ups from another instance reach this one again.
#[tokio::test]
async fn a_lost_listen_connection_is_logged_and_wakeups_resume() {
    let (logs, _guard) = CapturedLogs::start(Scope::Thread);
    let Some((test, demo)) = seeded(Backend::Postgres).await else {
        return;
    };
    let gateway = demo.gateway.id;
    let waiting = screening_store::PgStore::connect(&test.url).await.unwrap();
    let admin = test.postgres.as_ref().unwrap().pool();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(admin)
    .await
    .unwrap();
    assert_eq!(
        terminated,
        [true, true],
        "both instances' LISTEN connections"
    );
    logs.until_contains("PostgreSQL LISTEN: ", Duration::from_secs(10))
        .await
        .unwrap_or_else(|text| panic!("the lost connection is not logged: {text}"));
    logs.until_contains(
        "connection lost and re-established",
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|text| panic!("the connection is not re-established: {text}"));

    let waiter = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let woken = waiting
            .wait_for_pending(gateway, Duration::from_secs(30))
            .await;
        (woken, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(test.store.as_ref(), sendable(&demo), t(5)).await;
    let (woken, waited) = waiter.await.unwrap();
    assert!(woken.unwrap(), "woken by the other instance's NOTIFY");
    assert!(
        waited < Duration::from_secs(10),
        "woken, not timed out: {waited:?}"
    );
    test.cleanup().await;
}

async fn a_resend_links_to_the_previous_message(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let id = sendable(&demo);
    let first = send(test.store.as_ref(), id, t(1)).await;
    let second = perform(test.store.as_ref(), id, AppointmentAction::Resend, t(2))
        .await
        .unwrap();
    assert_eq!(second.resend_of, Some(first.id));
    let messages = test.store.appointment_messages(id).await.unwrap();
    assert_eq!(
        messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        [second.id, first.id]
    );
    let state = test.store.send_context(id).await.unwrap().appointment.state;
    assert_eq!(state, AppointmentState::SentToModality);
    test.cleanup().await;
}

async fn a_gateway_and_its_routes_round_trip(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let relay = Gateway {
        id: GatewayId::from_uuid(Uuid::new_v4()),
        name: "Relay gateway".into(),
        setting_id: demo.setting.id,
        transport: Transport::Relay(RelayTransport {
            namespace: "contoso.servicebus.windows.net".into(),
            hybrid_connection: "leeds".into(),
            key_name: "send".into(),
            key_ref: "env:LEEDS_RELAY_KEY".parse().unwrap(),
        }),
        routes: vec![
            Route {
                message_type: MessageType::fhir(),
                destination: Destination::parse("https://ris.example/fhir").unwrap(),
            },
            Route {
                message_type: MessageType::parse("WORKLIST").unwrap(),
                destination: Destination::parse("file:///var/spool/worklist").unwrap(),
            },
        ],
    };
    test.store.save_gateway(&relay, t(1)).await.unwrap();
    assert_eq!(test.store.gateway(relay.id).await.unwrap(), relay);

    let edited = Gateway {
        routes: relay.routes[..1].to_vec(),
        name: "Renamed".into(),
        ..relay.clone()
    };
    test.store.save_gateway(&edited, t(2)).await.unwrap();
    assert_eq!(test.store.gateway(relay.id).await.unwrap(), edited);
    test.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_concurrent_consumers_never_receive_the_same_message() {
    let Some((test, demo)) = seeded(Backend::Postgres).await else {
        return;
    };
    const MESSAGES: usize = 300;
    for i in 0..MESSAGES {
        test.store
            .enqueue(&loose_message(&demo, t(i as i64)))
            .await
            .unwrap();
    }
    let consumers: Vec<_> = (0..6)
        .map(|_| {
            let store = test.store.clone();
            let gateway = demo.gateway.id;
            tokio::spawn(async move {
                let mut received = Vec::new();
                loop {
                    let batch = store
                        .take_pending(gateway, t(1000), t(2000), 7)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return received;
                    }
                    received.extend(batch.into_iter().map(|m| m.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut busy_consumers = 0;
    for consumer in consumers {
        let received = consumer.await.unwrap();
        busy_consumers += usize::from(!received.is_empty());
        all.extend(received);
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), MESSAGES, "every message delivered");
    assert_eq!(unique.len(), MESSAGES, "no message delivered twice");
    assert!(busy_consumers > 1, "the consumers really ran concurrently");
    test.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_connect_error_naming_the_phase() {
    let error = screening_store::connect("postgres://nobody:pw@127.0.0.1:1/none")
        .await
        .err()
        .unwrap();
    let text = error.to_string();
    assert!(
        text.starts_with("connect to postgres://nobody:***@127.0.0.1:1/none"),
        "{text}"
    );
}

async fn last_seen_is_written_at_most_once_per_resolution(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let gateway = demo.gateway.id;
    assert_eq!(test.store.gateway_last_seen(gateway).await.unwrap().0, None);
    test.store.record_seen(gateway, t(100)).await.unwrap();
    test.store.record_seen(gateway, t(110)).await.unwrap();
    assert_eq!(
        test.store.gateway_last_seen(gateway).await.unwrap().0,
        Some(t(100)),
        "within 30 s: kept"
    );
    test.store.record_seen(gateway, t(131)).await.unwrap();
    assert_eq!(
        test.store.gateway_last_seen(gateway).await.unwrap().0,
        Some(t(131))
    );
    test.cleanup().await;
}

async fn clinic_summaries_count_appointments_by_state(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let clinics = test.store.clinics().await.unwrap();
    assert_eq!(clinics.len(), 1);
    let summary = &clinics[0];
    assert_eq!(summary.clinic, demo.clinic);
    assert_eq!(summary.setting_name, demo.setting.name);
    assert_eq!(summary.total(), demo.appointments.len() as u64);
    for state in AppointmentState::ALL {
        let expected = demo
            .appointments
            .iter()
            .filter(|a| a.state == state)
            .count();
        assert_eq!(summary.count(state), expected as u64, "{state:?}");
    }
    // Sending moves one appointment from its state to "sent".
    let id = sendable(&demo);
    let before = test.store.clinic(demo.clinic.id).await.unwrap();
    send(test.store.as_ref(), id, t(1)).await;
    let after = test.store.clinic(demo.clinic.id).await.unwrap();
    assert_eq!(
        after.count(AppointmentState::SentToModality),
        before.count(AppointmentState::SentToModality) + 1
    );
    let unknown = ClinicId::from_uuid(Uuid::new_v4());
    assert!(matches!(
        test.store.clinic(unknown).await,
        Err(StoreError::NotFound { what: "clinic", .. })
    ));
    test.cleanup().await;
}

async fn the_clinic_view_shows_only_the_latest_message_of_each_appointment(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    assert!(test
        .store
        .clinic_latest_messages(demo.clinic.id)
        .await
        .unwrap()
        .is_empty());
    let id = sendable(&demo);
    for (action, at) in [
        (AppointmentAction::SendToModality, t(1)),
        (AppointmentAction::Resend, t(2)),
    ] {
        perform(test.store.as_ref(), id, action, at).await;
    }
    let latest = test
        .store
        .clinic_latest_messages(demo.clinic.id)
        .await
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].appointment_id, id);
    assert_eq!(latest[0].created_at, t(2));
    test.cleanup().await;
}

async fn the_admin_filters_messages_by_status_and_gateway(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let first = demo.pending_message(MessageId::from_uuid(Uuid::new_v4()), t(1));
    let second = demo.pending_message(MessageId::from_uuid(Uuid::new_v4()), t(2));
    test.store.enqueue(&first).await.unwrap();
    test.store.enqueue(&second).await.unwrap();
    test.store
        .take_pending(demo.gateway.id, t(3), t(100), 1)
        .await
        .unwrap();
    test.store
        .fail(
            demo.gateway.id,
            first.id,
            t(4),
            "forward to destination: HTTP 500",
        )
        .await
        .unwrap();

    let all = test
        .store
        .messages(&MessageFilter::default())
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|l| l.message.id).collect::<Vec<_>>(),
        [second.id, first.id],
        "newest first"
    );
    assert_eq!(all[0].nhs_number, demo.participants[0].nhs_number);
    let failed = test
        .store
        .messages(&MessageFilter {
            status: Some(MessageStatus::Failed),
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].message.last_error.as_deref(),
        Some("forward to destination: HTTP 500")
    );
    for status in [
        MessageStatus::Pending,
        MessageStatus::Delivered,
        MessageStatus::Confirmed,
    ] {
        let listed = test
            .store
            .messages(&MessageFilter {
                status: Some(status),
                ..MessageFilter::default()
            })
            .await
            .unwrap();
        let expected = all.iter().filter(|l| l.message.status() == status).count();
        assert_eq!(listed.len(), expected, "{status:?}");
        assert!(listed.iter().all(|l| l.message.status() == status));
    }
    let other_gateway = test
        .store
        .messages(&MessageFilter {
            gateway_id: Some(GatewayId::from_uuid(Uuid::new_v4())),
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert!(other_gateway.is_empty());
    let one = test.store.message_listing(first.id).await.unwrap();
    assert_eq!(one.message.id, first.id);
    test.cleanup().await;
}

async fn the_gateway_backlog_counts_pending_messages_and_their_age(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let backlog = test.store.gateway_backlogs().await.unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].pending, 0);
    assert_eq!(backlog[0].oldest_pending_at, None);
    for at in [t(5), t(3), t(9)] {
        let message = demo.pending_message(MessageId::from_uuid(Uuid::new_v4()), at);
        test.store.enqueue(&message).await.unwrap();
    }
    let backlog = test.store.gateway_backlogs().await.unwrap();
    assert_eq!(backlog[0].gateway_id, demo.gateway.id);
    assert_eq!(backlog[0].pending, 3);
    assert_eq!(backlog[0].oldest_pending_at, Some(t(3)));
    let settings = test.store.settings().await.unwrap();
    assert_eq!(settings, vec![demo.setting.clone()]);
    test.cleanup().await;
}

async fn a_staff_account_is_saved_once_per_username(backend: Backend) {
    let Some((test, _demo)) = seeded(backend).await else {
        return;
    };
    let username = Username::parse("Clinic.Lead@nhs.net").unwrap();
    assert!(test.store.staff_account(&username).await.unwrap().is_none());
    let account = StaffAccount {
        user: StaffUser {
            id: UserId::from_uuid(Uuid::new_v4()),
            username: username.clone(),
            display_name: "Clinic Lead".into(),
            role: StaffRole::Staff,
        },
        password_hash: "$argon2id$first".into(),
    };
    let saved = test.store.save_staff_account(&account, t(1)).await.unwrap();
    assert_eq!(saved, account.user);
    // Saving the same username again keeps the id and replaces role and password.
    let again = StaffAccount {
        user: StaffUser {
            id: UserId::from_uuid(Uuid::new_v4()),
            role: StaffRole::Admin,
            ..account.user.clone()
        },
        password_hash: "$argon2id$second".into(),
    };
    let saved = test.store.save_staff_account(&again, t(2)).await.unwrap();
    assert_eq!(saved.id, account.user.id);
    let stored = test.store.staff_account(&username).await.unwrap().unwrap();
    assert_eq!(stored.user.role, StaffRole::Admin);
    assert_eq!(stored.password_hash, "$argon2id$second");
    test.cleanup().await;
}

async fn a_session_lasts_until_it_expires_or_ends(backend: Backend) {
    let Some((test, _demo)) = seeded(backend).await else {
        return;
    };
    let account = StaffAccount {
        user: StaffUser {
            id: UserId::from_uuid(Uuid::new_v4()),
            username: Username::parse("clinic.lead").unwrap(),
            display_name: "Clinic Lead".into(),
            role: StaffRole::Staff,
        },
        password_hash: "$argon2id$x".into(),
    };
    let user = test.store.save_staff_account(&account, t(0)).await.unwrap();
    test.store
        .create_session("hash-a", user.id, t(0), t(100))
        .await
        .unwrap();
    assert_eq!(
        test.store.session_user("hash-a", t(50)).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        test.store.session_user("hash-a", t(100)).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        test.store.session_user("unknown", t(50)).await.unwrap(),
        None
    );
    // A role change shows in the live session at once.
    let promoted = StaffAccount {
        user: StaffUser {
            role: StaffRole::Admin,
            ..user.clone()
        },
        ..account
    };
    test.store
        .save_staff_account(&promoted, t(1))
        .await
        .unwrap();
    let seen = test
        .store
        .session_user("hash-a", t(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.role, StaffRole::Admin);
    test.store.end_session("hash-a").await.unwrap();
    assert_eq!(
        test.store.session_user("hash-a", t(2)).await.unwrap(),
        None,
        "signed out"
    );
    test.store.end_session("hash-a").await.unwrap();
    // Creating a session forgets expired ones.
    test.store
        .create_session("hash-b", user.id, t(0), t(10))
        .await
        .unwrap();
    test.store
        .create_session("hash-c", user.id, t(20), t(100))
        .await
        .unwrap();
    assert_eq!(test.store.session_user("hash-b", t(5)).await.unwrap(), None);
    test.cleanup().await;
}

async fn the_clinic_page_reads_appointments_with_their_latest_message_and_counts(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let id = sendable(&demo);
    let mut sent = Vec::new();
    for (action, at) in [
        (AppointmentAction::SendToModality, t(1)),
        (AppointmentAction::Resend, t(2)),
    ] {
        sent.push(perform(test.store.as_ref(), id, action, at).await.unwrap());
    }
    test.store
        .take_pending(demo.gateway.id, t(3), t(100), 10)
        .await
        .unwrap();
    test.store
        .fail(
            demo.gateway.id,
            sent[1].id,
            t(4),
            "forward to destination: HTTP 503",
        )
        .await
        .unwrap();

    let page = test.store.clinic_page(demo.clinic.id).await.unwrap();
    assert_eq!(page.summary.clinic, demo.clinic);
    assert_eq!(page.summary.setting_name, demo.setting.name);
    let appointments = test
        .store
        .clinic_appointments(demo.clinic.id)
        .await
        .unwrap();
    assert_eq!(
        page.rows
            .iter()
            .map(|r| r.appointment.id)
            .collect::<Vec<_>>(),
        appointments
            .iter()
            .map(|a| a.appointment.id)
            .collect::<Vec<_>>(),
        "slot order"
    );
    assert_eq!(page.rows[0].participant, appointments[0].participant);
    let summary = test.store.clinic(demo.clinic.id).await.unwrap();
    assert_eq!(
        page.summary.counts, summary.counts,
        "counts from the rows agree with SQL"
    );
    for row in &page.rows {
        if row.appointment.id == id {
            let latest = row.latest.as_ref().unwrap();
            assert_eq!(latest.id, sent[1].id, "the newest message");
            assert_eq!(latest.status(), MessageStatus::Failed);
            assert_eq!(
                latest.last_error.as_deref(),
                Some("forward to destination: HTTP 503")
            );
            assert_eq!(latest.delivered_at, Some(t(3)));
        } else {
            assert!(row.latest.is_none());
        }
    }
    let latest = test
        .store
        .clinic_latest_messages(demo.clinic.id)
        .await
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(
        Some(&latest[0]),
        page.rows.iter().find_map(|r| r.latest.as_ref())
    );
    assert!(matches!(
        test.store
            .clinic_page(ClinicId::from_uuid(Uuid::new_v4()))
            .await,
        Err(StoreError::NotFound { what: "clinic", .. })
    ));
    test.cleanup().await;
}
