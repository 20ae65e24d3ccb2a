//! The store against real databases: every scenario runs on a temporary SQLite file and on a fresh
//! PostgreSQL database.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use screening_core::alert::{
    AlertChange, AlertRule, AlertThresholds, AlertTransition, GatewayObservation,
};
use screening_core::prelude::*;
use screening_core::procedure::{ProcedureReport, ProcedureStatus};
use screening_core::send::SendError;
use screening_store::testing::{Backend, CapturedLogs, Scope, TestStore};
use screening_store::{
    DemoData, MessageFilter, MessageStep, RetentionPolicy, ScreeningStore, StaffAccount,
    WebhookState,
};
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
    sending_reads_the_appointment_its_latest_message_and_its_settings_gateways,
    last_seen_is_written_at_most_once_per_resolution,
    clinic_summaries_count_appointments_by_state,
    the_clinic_view_shows_only_the_latest_message_of_each_appointment,
    the_admin_filters_messages_by_status_and_gateway,
    the_gateway_backlog_counts_pending_messages_and_their_age,
    a_staff_account_is_saved_once_per_username,
    a_session_lasts_until_it_expires_or_ends,
    sign_in_attempts_are_counted_atomically_per_window,
    the_clinic_page_reads_appointments_with_their_latest_message_and_counts,
    the_modalitys_reports_move_the_appointment_once_and_show_on_the_clinic_page,
    an_alert_opens_once_resolves_once_and_queues_its_webhook_in_order,
    unresolved_failures_count_until_the_appointment_is_resent,
    retention_removes_old_payloads_then_old_records_and_never_a_moving_message,
    a_messages_history_has_every_step_and_the_admin_finds_it_by_business_keys,
    an_echo_wakes_the_gateway_is_taken_once_and_its_answer_proves_the_path,
    every_change_to_a_messages_status_is_heard_once_in_this_instance_and_others,
    confirming_many_at_once_gives_each_message_its_own_outcome,
    changes_sent_together_commit_together_and_a_conflict_is_undone_alone,
    a_replaced_credential_is_seen_at_once_here_and_within_the_keep_elsewhere,
    a_takes_echo_look_reads_the_credential_the_confirmation_then_uses,
    a_poll_just_after_a_take_that_left_nothing_skips_its_look_unless_woken,
    takes_for_many_gateways_at_once_each_get_their_own_messages_once,
    confirmations_from_many_gateways_at_once_each_confirm_their_own_once,
    reads_beyond_the_connections_queue_and_every_connection_comes_back,
);

/// Reads many more than the read connections at once, some given up mid-way: each one kept
/// is answered, and every connection is given back (a read connection lost for good would leave
/// the later reads waiting).
async fn reads_beyond_the_connections_queue_and_every_connection_comes_back(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let gateway = demo.gateway.id;
    let (open, idle) = test.store.connections();
    let busy_before = open as usize - idle;
    let read = |store: Arc<dyn ScreeningStore>| async move {
        // Two reads side by side (the gateway and its routes), then a third.
        let found = store.gateway(gateway).await.unwrap();
        store
            .wait_for_pending(gateway, Duration::ZERO)
            .await
            .unwrap();
        found.id
    };
    for round in 0..3 {
        let reads: Vec<_> = (0..8 * open as usize)
            .map(|_| tokio::spawn(read(test.store.clone())))
            .collect();
        // Every other one given up at once, most while they wait for a connection or a row.
        for (index, handle) in reads.iter().enumerate() {
            if index % 2 == 1 {
                handle.abort();
            }
        }
        for (index, handle) in reads.into_iter().enumerate() {
            let answered = tokio::time::timeout(Duration::from_secs(20), handle)
                .await
                .unwrap_or_else(|_| panic!("round {round}: read {index} not answered in 20 s"));
            match answered {
                Ok(id) => assert_eq!(id, gateway),
                Err(error) => assert!(error.is_cancelled() && index % 2 == 1, "{error}"),
            }
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (now_open, idle) = test.store.connections();
        if now_open as usize - idle <= busy_before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{idle} of {now_open} read connections idle after every read ended \
             ({busy_before} busy before)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    test.cleanup().await;
}

/// `count` more gateways like the demo's, saved; their ids.
async fn saved_gateways(test: &TestStore, demo: &DemoData, count: usize) -> Vec<GatewayId> {
    let mut gateways = Vec::with_capacity(count);
    for n in 0..count {
        let gateway = Gateway {
            id: GatewayId::from_uuid(Uuid::new_v4()),
            name: format!("Gateway {n}"),
            ..demo.gateway.clone()
        };
        test.store.save_gateway(&gateway, t(0)).await.unwrap();
        gateways.push(gateway.id);
    }
    gateways
}

/// Many confirmations at once (on SQLite, grouped into one statement): each gateway confirms its
/// own messages at its own time; a message confirmed by two calls at once is confirmed by one of
/// them (the other hears "already"); one gateway naming another's message is refused.
async fn confirmations_from_many_gateways_at_once_each_confirm_their_own_once(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let gateways = saved_gateways(&test, &demo, 12).await;
    let mut sent: std::collections::HashMap<GatewayId, Vec<Message>> = Default::default();
    for &gateway in &gateways {
        for at in [1, 2] {
            let message = Message {
                gateway_id: gateway,
                ..loose_message(&demo, t(at))
            };
            test.store.enqueue(&message).await.unwrap();
            sent.entry(gateway).or_default().push(message);
        }
        let taken = test
            .store
            .take_pending(gateway, t(50), t(80), 10)
            .await
            .unwrap();
        assert_eq!(taken.len(), 2);
    }
    // Each gateway: both its messages at 100 + n; its first again at 300; the next gateway's
    // first at 400.
    let mut calls = Vec::new();
    for (n, &gateway) in gateways.iter().enumerate() {
        let own: Vec<MessageId> = sent[&gateway].iter().map(|m| m.id).collect();
        let neighbours = sent[&gateways[(n + 1) % gateways.len()]][0].id;
        calls.push((gateway, own.clone(), 100 + n as i64));
        calls.push((gateway, vec![own[0]], 300));
        calls.push((gateway, vec![neighbours], 400));
    }
    let answers: Vec<_> = calls
        .into_iter()
        .map(|(gateway, ids, at)| {
            let store = test.store.clone();
            tokio::spawn(async move {
                let outcomes = store.confirm_many(gateway, &ids, t(at)).await.unwrap();
                (gateway, ids, at, outcomes)
            })
        })
        .collect();
    // Per message: the times of the calls that confirmed it now, and how many heard "already".
    let mut confirmed_at: std::collections::HashMap<MessageId, Vec<i64>> = Default::default();
    let mut already: std::collections::HashMap<MessageId, usize> = Default::default();
    for answer in answers {
        let (gateway, ids, at, outcomes) = answer.await.unwrap();
        assert_eq!(outcomes.len(), ids.len());
        for (id, outcome) in ids.into_iter().zip(outcomes) {
            let message = sent[&gateway].iter().find(|m| m.id == id);
            match (message, outcome) {
                (None, Err(StoreError::WrongGateway { message_id })) => assert_eq!(message_id, id),
                (Some(message), Ok(outcome)) => {
                    assert_eq!(outcome.created_at, message.created_at);
                    match outcome.confirmed {
                        Confirmed::Now => confirmed_at.entry(id).or_default().push(at),
                        Confirmed::Already => *already.entry(id).or_default() += 1,
                    }
                }
                (message, outcome) => panic!("{id}: {message:?} answered {outcome:?}"),
            }
        }
    }
    for gateway in &gateways {
        for (index, message) in sent[gateway].iter().enumerate() {
            let times = &confirmed_at[&message.id];
            assert_eq!(times.len(), 1, "confirmed now once: {times:?}");
            let expected_already = if index == 0 { 1 } else { 0 };
            assert_eq!(
                already.get(&message.id).copied().unwrap_or(0),
                expected_already
            );
            let stored = test.store.message(message.id).await.unwrap();
            assert_eq!(
                stored.confirmed_at,
                Some(t(times[0])),
                "the time of the call that confirmed it"
            );
            assert_eq!(stored.delivered_at, Some(t(50)), "taken at 50");
            assert_eq!(stored.lease_expires_at, None);
        }
    }
    test.cleanup().await;
}

/// Many long polls woken at once take together (on SQLite, one statement for many gateways): each
/// take gets its own gateway's messages, oldest first, at most its limit, with its own times, and
/// no message goes to two takes, even when one gateway takes twice at once.
async fn takes_for_many_gateways_at_once_each_get_their_own_messages_once(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let gateways = saved_gateways(&test, &demo, 12).await;
    // Three messages each, the newest committed first.
    let mut sent: std::collections::HashMap<GatewayId, Vec<MessageId>> = Default::default();
    for (g, &gateway) in gateways.iter().enumerate() {
        for n in (0..3).rev() {
            let message = Message {
                gateway_id: gateway,
                ..loose_message(&demo, t(1 + n))
            };
            test.store.enqueue(&message).await.unwrap();
            sent.entry(gateway).or_default().insert(0, message.id);
        }
        assert_eq!(sent[&gateway].len(), 3, "gateway {g}");
    }
    // Every gateway takes twice at once, at most 2 each time, each take at its own moment.
    let takes: Vec<_> = gateways
        .iter()
        .flat_map(|&gateway| [(gateway, 100), (gateway, 200)])
        .map(|(gateway, at)| {
            let store = test.store.clone();
            tokio::spawn(async move {
                let now = t(at);
                let taken = store
                    .take_pending(gateway, now, now + chrono::TimeDelta::seconds(30), 2)
                    .await
                    .unwrap();
                (gateway, at, taken)
            })
        })
        .collect();
    let mut taken_by: std::collections::HashMap<GatewayId, Vec<(i64, Vec<Message>)>> =
        Default::default();
    for take in takes {
        let (gateway, at, taken) = take.await.unwrap();
        assert!(taken.len() <= 2, "at most the limit: {}", taken.len());
        for message in &taken {
            assert_eq!(message.gateway_id, gateway, "only its own gateway's");
            assert_eq!(message.delivered_at, Some(t(at)), "its own time");
            assert_eq!(message.lease_expires_at, Some(t(at + 30)));
            assert_eq!(message.attempts, 1);
        }
        taken_by.entry(gateway).or_default().push((at, taken));
    }
    for gateway in &gateways {
        let mut takes = taken_by.remove(gateway).unwrap();
        // The take that got the oldest message went first; together they got all three, once
        // each, each take oldest first.
        takes.sort_by_key(|(_, taken)| taken.first().map(|m| m.created_at));
        takes.retain(|(_, taken)| !taken.is_empty());
        let ids: Vec<MessageId> = takes
            .iter()
            .flat_map(|(_, taken)| taken.iter().map(|m| m.id))
            .collect();
        assert_eq!(ids, sent[gateway], "all three, once each, oldest first");
    }
    test.cleanup().await;
}

/// The credential hash `store` answers with for `gateway` now.
async fn hash_in(store: &Arc<dyn ScreeningStore>, gateway: GatewayId) -> Option<String> {
    store.gateway_credential_hash(gateway).await.unwrap()
}

/// A seeded store whose demo gateway's credential hash "first" was set and read through it (so it
/// is kept), the gateway, and a second store on the same database.
async fn first_credential_kept(
    backend: Backend,
) -> Option<(TestStore, GatewayId, Arc<dyn ScreeningStore>)> {
    let (test, demo) = seeded(backend).await?;
    let gateway = demo.gateway.id;
    test.store
        .set_gateway_credential_hash(gateway, "first")
        .await
        .unwrap();
    assert_eq!(
        hash_in(&test.store, gateway).await.as_deref(),
        Some("first")
    );
    let elsewhere = screening_store::connect(&test.url).await.unwrap();
    Some((test, gateway, elsewhere))
}

/// A gateway that is not there has no hash, kept or read: `NotFound`.
async fn assert_no_hash_for_an_unknown_gateway(store: &Arc<dyn ScreeningStore>) {
    let other = GatewayId::from_uuid(Uuid::new_v4());
    assert!(matches!(
        store.gateway_credential_hash(other).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Credential hashes are kept for a moment (a delivery's three requests read one), but a credential
/// replaced through this store is the one it answers with at once, and one replaced through
/// another connection to the same database (another instance, or the CLI) within the keep.
async fn a_replaced_credential_is_seen_at_once_here_and_within_the_keep_elsewhere(
    backend: Backend,
) {
    let Some((test, gateway, elsewhere)) = first_credential_kept(backend).await else {
        return;
    };
    let store = &test.store;
    store
        .set_gateway_credential_hash(gateway, "second")
        .await
        .unwrap();
    assert_eq!(
        hash_in(store, gateway).await.as_deref(),
        Some("second"),
        "replaced through this store: seen at once"
    );
    elsewhere
        .set_gateway_credential_hash(gateway, "third")
        .await
        .unwrap();
    // Kept: the read within the keep answers from memory (which is what saves the reads).
    assert_eq!(
        hash_in(store, gateway).await.as_deref(),
        Some("second"),
        "within the keep, this store answers from memory"
    );
    tokio::time::sleep(screening_store::CREDENTIAL_KEEP).await;
    assert_eq!(
        hash_in(store, gateway).await.as_deref(),
        Some("third"),
        "after the keep, the hash is read again"
    );
    // No gateway at all is still NotFound (nothing kept answers for it).
    assert_no_hash_for_an_unknown_gateway(store).await;
    test.cleanup().await;
}

/// A take's look for an echo reads the gateway's row, and keeps its credential hash as a read of
/// the hash would: the confirmation that follows a take within milliseconds then needs no read of
/// its own. What it keeps is what the database held at the take (a later replacement elsewhere is
/// seen after the keep, as before).
async fn a_takes_echo_look_reads_the_credential_the_confirmation_then_uses(backend: Backend) {
    let Some((test, gateway, elsewhere)) = first_credential_kept(backend).await else {
        return;
    };
    let store = &test.store;
    elsewhere
        .set_gateway_credential_hash(gateway, "second")
        .await
        .unwrap();
    tokio::time::sleep(screening_store::CREDENTIAL_KEEP).await;
    // The keep of "first" is over; the take's look reads the row as it is now.
    let now = screening_store::now_utc();
    let echo = store
        .take_echo(gateway, now, now + chrono::TimeDelta::seconds(60))
        .await
        .unwrap();
    assert_eq!(echo, None, "no echo asked for");
    elsewhere
        .set_gateway_credential_hash(gateway, "third")
        .await
        .unwrap();
    assert_eq!(
        hash_in(store, gateway).await.as_deref(),
        Some("second"),
        "the hash the take's look read is kept, so this needed no read"
    );
    tokio::time::sleep(screening_store::CREDENTIAL_KEEP).await;
    assert_eq!(hash_in(store, gateway).await.as_deref(), Some("third"));
    // A take for a gateway that is not there finds no echo and keeps nothing.
    let other = GatewayId::from_uuid(Uuid::new_v4());
    assert_eq!(
        store
            .take_echo(other, now, now + chrono::TimeDelta::seconds(60))
            .await
            .unwrap(),
        None
    );
    assert_no_hash_for_an_unknown_gateway(store).await;
    test.cleanup().await;
}

/// A take that leaves nothing pending (no message left, no echo to take) lets the gateway's next
/// long poll skip its look, unless something woke the gateway since the take began: a message
/// committed, an echo asked for. A write this store is never told of (another process on the same
/// SQLite file) is therefore found one poll later, and not at all after [`QUIET_KEEP`].
async fn a_poll_just_after_a_take_that_left_nothing_skips_its_look_unless_woken(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let gateway = demo.gateway.id;
    let store = &test.store;
    // What the hub does on a long poll woken for the gateway: look for an echo, take messages.
    let take = |limit: u32| async move {
        let now = screening_store::now_utc();
        let lease = now + chrono::TimeDelta::seconds(60);
        let echo = store.take_echo(gateway, now, lease).await.unwrap();
        (
            echo,
            store
                .take_pending(gateway, now, lease, limit)
                .await
                .unwrap(),
        )
    };
    let poll = |within: Duration| async move {
        tokio::time::timeout(
            Duration::from_secs(10),
            store.wait_for_pending(gateway, within),
        )
        .await
        .expect("the wait ends by its own timeout")
        .unwrap()
    };
    assert_eq!(take(10).await, (None, vec![]));
    // A message committed here after the take wakes the gateway: the next poll looks and finds
    // it at once (it would otherwise wait the whole 20 s and answer nothing).
    let first = loose_message(&demo, t(1));
    store.enqueue(&first).await.unwrap();
    assert!(
        poll(Duration::from_secs(20)).await,
        "woken since the take: looked"
    );
    let (echo, taken) = take(10).await;
    assert_eq!((echo, taken.len()), (None, 1));
    // An echo asked for after the take wakes it likewise.
    let echo_id = MessageId::generate();
    store
        .request_echo(gateway, echo_id, screening_store::now_utc(), "test")
        .await
        .unwrap();
    assert!(
        poll(Duration::from_secs(20)).await,
        "echo asked for: looked"
    );
    let (echo, _) = take(10).await;
    assert_eq!(echo.map(|(id, _)| id), Some(echo_id));
    store
        .answer_echo(gateway, echo_id, screening_store::now_utc(), Ok(()))
        .await
        .unwrap();
    if backend == Backend::Sqlite {
        // A second store on the same file: its commits wake only its own waiters.
        let elsewhere = screening_store::connect(&test.url).await.unwrap();
        assert_eq!(take(10).await, (None, vec![]));
        elsewhere
            .enqueue(&loose_message(&demo, t(2)))
            .await
            .unwrap();
        assert!(
            !poll(Duration::from_millis(300)).await,
            "just after a take that left nothing, and nothing woke it here: no look"
        );
        assert!(
            poll(Duration::from_millis(300)).await,
            "the poll after that looks"
        );
        // A take of as many as it asked for may have left more: the next poll looks.
        elsewhere
            .enqueue(&loose_message(&demo, t(3)))
            .await
            .unwrap();
        let (_, taken) = take(2).await;
        assert_eq!(taken.len(), 2);
        elsewhere
            .enqueue(&loose_message(&demo, t(4)))
            .await
            .unwrap();
        assert!(
            poll(Duration::from_millis(300)).await,
            "a full take: looked"
        );
        // And a take that left nothing longer ago than the keep.
        let (_, taken) = take(10).await;
        assert_eq!(taken.len(), 1);
        elsewhere
            .enqueue(&loose_message(&demo, t(5)))
            .await
            .unwrap();
        tokio::time::sleep(screening_store::QUIET_KEEP).await;
        assert!(
            poll(Duration::from_millis(300)).await,
            "past the keep: looked"
        );
    }
    test.cleanup().await;
}

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
        MessageId::generate(),
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
    demo.pending_message(MessageId::generate(), created_at)
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
    let good = outcome.message.take().unwrap();
    let mut message = good.clone();
    message.gateway_id = GatewayId::from_uuid(Uuid::new_v4());
    let mut change = AppointmentChange {
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
    // A stale version writes nothing either, and says so.
    change.message = Some(good.clone());
    change.expected_version += 1;
    let error = test.store.commit_change(&change).await.unwrap_err();
    assert!(
        matches!(error, StoreError::VersionConflict { .. }),
        "{error:?}"
    );
    assert!(test.store.appointment_events(id).await.unwrap().is_empty());
    // A change to an appointment that does not exist says so.
    let mut unknown = change.clone();
    unknown.expected_version -= 1;
    unknown.appointment.id = AppointmentId::from_uuid(Uuid::new_v4());
    let error = test.store.commit_change(&unknown).await.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::NotFound {
                what: "appointment",
                ..
            }
        ),
        "{error:?}"
    );
    // No failure left a transaction open on the writer: the change itself commits.
    change.expected_version -= 1;
    test.store.commit_change(&change).await.unwrap();
    assert_eq!(test.store.message(good.id).await.unwrap(), good);
    assert_eq!(test.store.appointment_events(id).await.unwrap().len(), 1);
    assert_eq!(
        test.store.send_context(id).await.unwrap().appointment,
        change.appointment
    );
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
        .confirm(gateway, MessageId::generate(), t(14))
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

/// A relay gateway of the demo's setting with `routes`.
fn relay_gateway(demo: &DemoData, routes: Vec<Route>) -> Gateway {
    Gateway {
        id: GatewayId::from_uuid(Uuid::new_v4()),
        name: "Relay gateway".into(),
        setting_id: demo.setting.id,
        transport: Transport::Relay(RelayTransport {
            namespace: "contoso.servicebus.windows.net".into(),
            hybrid_connection: "leeds".into(),
            key_name: "send".into(),
            key_ref: "env:LEEDS_RELAY_KEY".parse().unwrap(),
        }),
        routes,
    }
}

async fn a_gateway_and_its_routes_round_trip(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let relay = relay_gateway(
        &demo,
        vec![
            Route {
                message_type: MessageType::fhir(),
                destination: Destination::parse("https://ris.example/fhir").unwrap(),
            },
            Route {
                message_type: MessageType::parse("WORKLIST").unwrap(),
                destination: Destination::parse("file:///var/spool/worklist").unwrap(),
            },
        ],
    );
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

/// "Send to modality"'s context (one statement): the appointment, its latest message, and every
/// gateway of its setting in the order they were added, each with all its routes.
async fn sending_reads_the_appointment_its_latest_message_and_its_settings_gateways(
    backend: Backend,
) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let route = |message_type: &str, destination: &str| Route {
        message_type: MessageType::parse(message_type).unwrap(),
        destination: Destination::parse(destination).unwrap(),
    };
    // Routes saved out of order: read back by message type.
    let relay = relay_gateway(
        &demo,
        vec![
            route("WORKLIST", "file:///var/spool/worklist"),
            route("FHIR", "https://ris.example/fhir"),
        ],
    );
    let bare = Gateway {
        id: GatewayId::from_uuid(Uuid::new_v4()),
        name: "No routes yet".into(),
        routes: vec![],
        ..demo.gateway.clone()
    };
    test.store.save_gateway(&bare, t(6)).await.unwrap();
    test.store.save_gateway(&relay, t(5)).await.unwrap();
    let id = sendable(&demo);

    let context = test.store.send_context(id).await.unwrap();
    assert_eq!(context.appointment.id, id);
    assert_eq!(context.setting.id, demo.setting.id);
    assert_eq!(context.latest_message_id, None);
    let in_order = Gateway {
        routes: vec![relay.routes[1].clone(), relay.routes[0].clone()],
        ..relay.clone()
    };
    assert_eq!(context.gateways, vec![demo.gateway.clone(), in_order, bare]);

    let message = send(test.store.as_ref(), id, t(10)).await;
    let context = test.store.send_context(id).await.unwrap();
    assert_eq!(context.latest_message_id, Some(message.id));
    assert_eq!(context.appointment.version, 1);

    let missing = AppointmentId::from_uuid(Uuid::new_v4());
    assert!(matches!(
        test.store.send_context(missing).await,
        Err(StoreError::NotFound {
            what: "appointment",
            ..
        })
    ));
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
    let first = demo.pending_message(MessageId::generate(), t(1));
    let second = demo.pending_message(MessageId::generate(), t(2));
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
        let message = demo.pending_message(MessageId::generate(), at);
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

async fn sign_in_attempts_are_counted_atomically_per_window(backend: Backend) {
    let Some(test) = TestStore::new(backend).await else {
        return;
    };
    let window = chrono::TimeDelta::seconds(900);
    // Twenty attempts at once: each gets its own count, 1 to 20, none lost or repeated.
    let attempts = (0..20).map(|_| {
        let store = test.store.clone();
        tokio::spawn(async move {
            store
                .count_sign_in_attempt("user:clinic.lead", t(0), window)
                .await
                .unwrap()
        })
    });
    let mut counts: Vec<u32> = futures_counts(attempts).await;
    counts.sort();
    assert_eq!(counts, (1..=20).collect::<Vec<u32>>());
    // Another key has its own count; a success takes one back; the window's end starts afresh.
    assert_eq!(
        test.store
            .count_sign_in_attempt("addr:192.0.2.7", t(1), window)
            .await
            .unwrap(),
        1
    );
    test.store
        .forgive_sign_in_attempts("user:clinic.lead", false)
        .await
        .unwrap();
    assert_eq!(
        test.store
            .count_sign_in_attempt("user:clinic.lead", t(2), window)
            .await
            .unwrap(),
        20
    );
    assert_eq!(
        test.store
            .count_sign_in_attempt("user:clinic.lead", t(900), window)
            .await
            .unwrap(),
        1,
        "the window ended"
    );
    test.store
        .forgive_sign_in_attempts("user:clinic.lead", true)
        .await
        .unwrap();
    assert_eq!(
        test.store
            .count_sign_in_attempt("user:clinic.lead", t(901), window)
            .await
            .unwrap(),
        1
    );
    test.cleanup().await;
}

async fn futures_counts(tasks: impl Iterator<Item = tokio::task::JoinHandle<u32>>) -> Vec<u32> {
    let mut counts = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        counts.push(task.await.unwrap());
    }
    counts
}

/// The alerts' changes as the watcher works them out at `now` (core rules, store's view).
async fn alert_changes(
    store: &dyn ScreeningStore,
    thresholds: &AlertThresholds,
    now: DateTime<Utc>,
) -> Vec<AlertChange> {
    screening_store::alert_changes(store, thresholds, now)
        .await
        .unwrap()
}

async fn an_alert_opens_once_resolves_once_and_queues_its_webhook_in_order(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let store = test.store.as_ref();
    store.record_seen(demo.gateway.id, t(1)).await.unwrap();
    let thresholds = AlertThresholds {
        oldest_pending: chrono::TimeDelta::seconds(60),
        ..AlertThresholds::default()
    };
    let message = send(store, sendable(&demo), t(10)).await;
    let seen = store.gateway_observations(day()).await.unwrap();
    let leeds = seen
        .iter()
        .find(|o| o.gateway_id == demo.gateway.id)
        .unwrap();
    assert_eq!(leeds.oldest_pending_at, Some(t(10)));
    assert_eq!(leeds.last_seen_at, Some(t(1)));
    assert!(alert_changes(store, &thresholds, t(70)).await.is_empty());

    // Past the threshold: one alert opens, with one event queued for the webhook.
    let changes = alert_changes(store, &thresholds, t(71)).await;
    assert_eq!(changes.len(), 1);
    let written = store
        .apply_alert_changes(&changes, t(71), true)
        .await
        .unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].1, AlertTransition::Opened);
    // Another instance that saw the same condition at the same time writes nothing.
    assert!(store
        .apply_alert_changes(&changes, t(71), true)
        .await
        .unwrap()
        .is_empty());
    // Still true a minute later: nothing changes.
    assert!(alert_changes(store, &thresholds, t(130)).await.is_empty());
    let open = store.open_alerts().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].rule, AlertRule::MessagesWaiting);
    assert_eq!(open[0].setting_id, demo.gateway.setting_id);
    assert_eq!(open[0].since, t(10));
    assert!(
        open[0].summary.contains("not being delivered"),
        "{}",
        open[0].summary
    );

    // The webhook queue: claimed once under a lease, tried again after its retry time.
    let claimed = store
        .claim_alert_notification(t(72), chrono::TimeDelta::seconds(30))
        .await
        .unwrap()
        .expect("the opening is due");
    assert_eq!(claimed.transition, AlertTransition::Opened);
    assert_eq!(claimed.webhook_attempts, 1);
    assert!(store
        .claim_alert_notification(t(73), chrono::TimeDelta::seconds(30))
        .await
        .unwrap()
        .is_none());
    store
        .alert_notification_failed(claimed.id, "connect: refused", t(80))
        .await
        .unwrap();
    assert!(store
        .claim_alert_notification(t(79), chrono::TimeDelta::seconds(30))
        .await
        .unwrap()
        .is_none());
    let again = store
        .claim_alert_notification(t(80), chrono::TimeDelta::seconds(30))
        .await
        .unwrap()
        .expect("due again");
    assert_eq!((again.id, again.webhook_attempts), (claimed.id, 2));

    // The gateway takes and confirms the message: the alert resolves, once, and its resolution
    // queues behind the opening that is still being sent.
    store
        .take_pending(demo.gateway.id, t(140), t(170), 5)
        .await
        .unwrap();
    store
        .confirm(demo.gateway.id, message.id, t(141))
        .await
        .unwrap();
    let changes = alert_changes(store, &thresholds, t(150)).await;
    assert!(
        matches!(changes.as_slice(), [AlertChange::Resolve(_)]),
        "{changes:?}"
    );
    let written = store
        .apply_alert_changes(&changes, t(150), true)
        .await
        .unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].1, AlertTransition::Resolved);
    assert!(store
        .apply_alert_changes(&changes, t(150), true)
        .await
        .unwrap()
        .is_empty());
    assert!(store.open_alerts().await.unwrap().is_empty());
    // The second try's sender never said how it went (it crashed): once its lease is over the
    // opening is handed out again, still ahead of the resolution queued behind it.
    let third = store
        .claim_alert_notification(t(151), chrono::TimeDelta::seconds(30))
        .await
        .unwrap()
        .expect("the opening's lease is over");
    assert_eq!((third.id, third.webhook_attempts), (claimed.id, 3));
    assert!(
        store
            .claim_alert_notification(t(152), chrono::TimeDelta::seconds(30))
            .await
            .unwrap()
            .is_none(),
        "the resolution waits for the opening"
    );
    store
        .alert_notification_sent(claimed.id, t(152))
        .await
        .unwrap();
    let resolution = store
        .claim_alert_notification(t(152), chrono::TimeDelta::seconds(30))
        .await
        .unwrap()
        .expect("now the resolution is due");
    assert_eq!(resolution.transition, AlertTransition::Resolved);
    assert_eq!(resolution.alert.resolved_at, Some(t(150)));
    store
        .alert_notification_sent(resolution.id, t(153))
        .await
        .unwrap();

    let history = store.alert_events(10).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|e| (e.transition, e.webhook, e.webhook_attempts))
            .collect::<Vec<_>>(),
        [
            (AlertTransition::Resolved, WebhookState::Sent, 1),
            (AlertTransition::Opened, WebhookState::Sent, 3),
        ]
    );
    test.cleanup().await;
}

async fn unresolved_failures_count_until_the_appointment_is_resent(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let store = test.store.as_ref();
    let id = sendable(&demo);
    let first = send(store, id, t(1)).await;
    store
        .take_pending(demo.gateway.id, t(2), t(32), 5)
        .await
        .unwrap();
    store
        .fail(
            demo.gateway.id,
            first.id,
            t(3),
            "forward to destination: HTTP 500",
        )
        .await
        .unwrap();
    let of_leeds = |seen: Vec<GatewayObservation>| {
        seen.into_iter()
            .find(|o| o.gateway_id == demo.gateway.id)
            .unwrap()
    };
    let seen = of_leeds(store.gateway_observations(day()).await.unwrap());
    assert_eq!(
        (seen.unresolved_failures, seen.earliest_failure_at),
        (1, Some(t(3)))
    );
    // Without a webhook the events are kept but not queued.
    let changes = alert_changes(store, &AlertThresholds::default(), t(4)).await;
    assert!(
        matches!(changes.as_slice(), [AlertChange::Open(c)] if c.rule == AlertRule::MessagesFailed)
    );
    store
        .apply_alert_changes(&changes, t(4), false)
        .await
        .unwrap();
    assert!(store
        .claim_alert_notification(t(5), chrono::TimeDelta::seconds(30))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.alert_events(5).await.unwrap()[0].webhook,
        WebhookState::NotConfigured
    );

    perform(store, id, AppointmentAction::Resend, t(6))
        .await
        .unwrap();
    let seen = of_leeds(store.gateway_observations(day()).await.unwrap());
    assert_eq!(
        seen.unresolved_failures, 0,
        "the resend superseded the failure"
    );
    let changes = alert_changes(store, &AlertThresholds::default(), t(7)).await;
    assert!(
        matches!(changes.as_slice(), [AlertChange::Resolve(_)]),
        "{changes:?}"
    );
    test.cleanup().await;
}

const DAY: i64 = 24 * 60 * 60;

/// A confirmed message with a payload of `size` bytes, created and confirmed at `at`.
async fn confirmed_message(
    store: &dyn ScreeningStore,
    demo: &DemoData,
    at: DateTime<Utc>,
    size: usize,
) -> Message {
    let mut message = loose_message(demo, at);
    message.payload = format!(
        "{{\"resourceType\":\"ServiceRequest\",\"note\":\"{}\"}}",
        "x".repeat(size)
    );
    store.enqueue(&message).await.unwrap();
    store
        .take_pending(
            demo.gateway.id,
            at,
            at + chrono::TimeDelta::seconds(30),
            1000,
        )
        .await
        .unwrap();
    store
        .confirm(demo.gateway.id, message.id, at)
        .await
        .unwrap();
    message
}

async fn retention_removes_old_payloads_then_old_records_and_never_a_moving_message(
    backend: Backend,
) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let store = test.store.as_ref();
    let policy = RetentionPolicy::default();
    let old = confirmed_message(store, &demo, t(0), 100).await;
    let month = confirmed_message(store, &demo, t(20 * DAY), 100).await;
    // A resend of the old message, itself recent: it keeps its record and loses only the link.
    let mut resend = loose_message(&demo, t(700 * DAY));
    resend.resend_of = Some(old.id);
    store.enqueue(&resend).await.unwrap();
    // Pending for ages (a gateway switched off): never pruned.
    let stuck = loose_message(&demo, t(DAY));
    store.enqueue(&stuck).await.unwrap();

    // 60 days on: payloads older than 30 days are gone, records stay.
    let pruned = store.prune(&policy, t(60 * DAY), 2).await.unwrap();
    assert_eq!((pruned.payloads, pruned.messages), (2, 0));
    assert_eq!(store.message(old.id).await.unwrap().payload, "");
    assert_eq!(store.message(month.id).await.unwrap().payload, "");
    assert!(!store.message(stuck.id).await.unwrap().payload.is_empty());
    // Again: nothing more to do.
    assert_eq!(
        store.prune(&policy, t(60 * DAY), 2).await.unwrap().payloads,
        0
    );

    // Past two years: the old finished messages and old audit go; the pending one and the
    // recent resend stay.
    for at in [t(0), t(750 * DAY)] {
        store
            .record_admin_event(&screening_store::AdminEvent {
                occurred_at: at,
                actor: "admin".into(),
                action: "showed a message's payload".into(),
                subject: format!("message {}", old.id),
            })
            .await
            .unwrap();
    }
    let pruned = store.prune(&policy, t(760 * DAY), 1).await.unwrap();
    assert_eq!(pruned.messages, 2, "{pruned:?}");
    assert!(store.message(old.id).await.is_err());
    assert!(store.message(month.id).await.is_err());
    assert_eq!(
        store.message(stuck.id).await.unwrap().status(),
        MessageStatus::Pending
    );
    assert_eq!(store.message(resend.id).await.unwrap().resend_of, None);
    assert_eq!(pruned.admin_events, 1);
    let audit = store.admin_events(10).await.unwrap();
    assert_eq!(
        audit.iter().map(|e| e.occurred_at).collect::<Vec<_>>(),
        [t(750 * DAY)]
    );
    test.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_pruning_makes_the_database_file_smaller() {
    let test = TestStore::sqlite().await;
    let store = test.store.as_ref();
    let demo = store.seed_demo(day(), t(0)).await.unwrap();
    for n in 0..400 {
        confirmed_message(store, &demo, t(n), 8 * 1024).await;
    }
    let path = test.url.trim_start_matches("sqlite://").to_string();
    // Everything written is in the file itself, not only in the write-ahead log.
    store
        .prune(&RetentionPolicy::default(), t(401), 100)
        .await
        .unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    assert!(before > 400 * 8 * 1024, "{before} bytes hold the payloads");
    let pruned = store
        .prune(&RetentionPolicy::default(), t(40 * DAY), 100)
        .await
        .unwrap();
    assert_eq!(pruned.payloads, 400);
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(
        after < before / 4,
        "the file went from {before} to {after} bytes"
    );
    test.cleanup().await;
}

async fn a_messages_history_has_every_step_and_the_admin_finds_it_by_business_keys(
    backend: Backend,
) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let store = test.store.as_ref();
    let appointment = sendable(&demo);
    let first = send(store, appointment, t(10)).await;
    let gateway = demo.gateway.id;
    store.take_pending(gateway, t(11), t(41), 5).await.unwrap();
    // Not confirmed within its lease: back in the queue, taken again, then refused for good.
    assert_eq!(store.redeliver_expired(t(50), 3).await.unwrap(), 1);
    store.take_pending(gateway, t(51), t(81), 5).await.unwrap();
    store
        .fail(gateway, first.id, t(52), "forward to destination: HTTP 500")
        .await
        .unwrap();
    let second = perform(store, appointment, AppointmentAction::Resend, t(60))
        .await
        .unwrap();
    store.take_pending(gateway, t(61), t(91), 5).await.unwrap();
    store.confirm(gateway, second.id, t(62)).await.unwrap();

    let history = |events: Vec<screening_store::MessageEvent>| {
        events
            .into_iter()
            .map(|e| (e.step, e.detail, e.related))
            .collect::<Vec<_>>()
    };
    let first_history = history(store.message_events(first.id).await.unwrap());
    assert_eq!(
        first_history,
        [
            (MessageStep::Created, Some("clinician-1".to_string()), None),
            (MessageStep::Taken, Some("attempt 1".to_string()), None),
            (
                MessageStep::Returned,
                Some("await confirmation: lease expired without confirmation".to_string()),
                None
            ),
            (MessageStep::Taken, Some("attempt 2".to_string()), None),
            (
                MessageStep::Failed,
                Some("forward to destination: HTTP 500".to_string()),
                None
            ),
            (MessageStep::Resent, None, Some(second.id)),
        ]
    );
    // The modality reports the step started; a month on, retention removes the payload.
    let started = report(&second, ProcedureStatus::InProgress, t(63));
    store.record_procedure(gateway, &started).await.unwrap();
    let month_on = t(62 + 31 * DAY);
    store
        .prune(&RetentionPolicy::default(), month_on, 100)
        .await
        .unwrap();
    let mut times: Vec<_> = store
        .message_events(second.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.step, e.at, e.detail, e.related))
        .collect();
    // Written at the database's own time.
    let removed = times.pop().expect("the payload's removal");
    assert_eq!((removed.0, removed.2), (MessageStep::PayloadRemoved, None));
    assert_eq!(
        times,
        [
            (
                MessageStep::Created,
                t(60),
                Some("clinician-1".into()),
                Some(first.id)
            ),
            (MessageStep::Taken, t(61), Some("attempt 1".into()), None),
            (MessageStep::Confirmed, t(62), None, None),
            (
                MessageStep::Procedure,
                t(63),
                Some("in_progress on MAMMO1".into()),
                None
            ),
        ]
    );

    let found = |filter: MessageFilter| async move {
        store
            .messages(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|listing| listing.message.id)
            .collect::<Vec<_>>()
    };
    let participant = demo
        .participants
        .iter()
        .find(|p| p.id == first.participant_id)
        .unwrap();
    let other = demo
        .participants
        .iter()
        .find(|p| p.id != first.participant_id)
        .unwrap();
    assert_eq!(
        found(MessageFilter {
            nhs_number: Some(participant.nhs_number),
            ..Default::default()
        })
        .await,
        [second.id, first.id]
    );
    assert!(found(MessageFilter {
        nhs_number: Some(other.nhs_number),
        ..Default::default()
    })
    .await
    .is_empty());
    let accession = screening_core::worklist::accession_number(appointment);
    for text in [accession.clone(), accession.to_lowercase()] {
        assert_eq!(
            found(MessageFilter {
                accession_number: Some(text),
                ..Default::default()
            })
            .await,
            [second.id, first.id]
        );
    }
    assert!(found(MessageFilter {
        accession_number: Some("BS123".into()),
        ..Default::default()
    })
    .await
    .is_empty());
    assert_eq!(
        found(MessageFilter {
            created_from: Some(t(55)),
            ..Default::default()
        })
        .await,
        [second.id]
    );
    assert_eq!(
        found(MessageFilter {
            created_before: Some(t(55)),
            ..Default::default()
        })
        .await,
        [first.id]
    );
    assert_eq!(
        found(MessageFilter {
            limit: 1,
            offset: 1,
            ..Default::default()
        })
        .await,
        [first.id]
    );
    test.cleanup().await;
}

async fn an_echo_wakes_the_gateway_is_taken_once_and_its_answer_proves_the_path(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let store = test.store.clone();
    let gateway = demo.gateway.id;
    let record = |store: Arc<dyn ScreeningStore>| async move {
        store
            .echo_records()
            .await
            .unwrap()
            .into_iter()
            .find(|(id, _)| *id == gateway)
            .unwrap()
            .1
    };
    assert_eq!(
        record(store.clone()).await.proof(t(0)),
        screening_core::echo::Proof::NotChecked
    );
    // A gateway waiting for work is woken by the echo, as by an order.
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .wait_for_pending(gateway, Duration::from_secs(10))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let echo = MessageId::generate();
    store
        .request_echo(gateway, echo, t(100), "schedule")
        .await
        .unwrap();
    assert!(waiting.await.unwrap().unwrap(), "woken by the echo");
    assert_eq!(
        store.take_echo(gateway, t(101), t(131)).await.unwrap(),
        Some((echo, t(100)))
    );
    assert_eq!(
        store.take_echo(gateway, t(102), t(132)).await.unwrap(),
        None,
        "leased"
    );
    assert!(!store
        .wait_for_pending(gateway, Duration::ZERO)
        .await
        .unwrap());
    // Unanswered past its lease: taken again.
    assert_eq!(
        store.take_echo(gateway, t(131), t(161)).await.unwrap(),
        Some((echo, t(100)))
    );
    let round_trip = store
        .answer_echo(gateway, echo, t(103), Ok(()))
        .await
        .unwrap();
    assert_eq!(round_trip, 3_000);
    assert_eq!(
        record(store.clone()).await.proof(t(104)),
        screening_core::echo::Proof::Proven {
            at: t(103),
            round_trip_ms: 3_000
        }
    );
    // Answered once; an unknown echo or another gateway's is not found.
    assert!(matches!(
        store.answer_echo(gateway, echo, t(105), Ok(())).await,
        Err(StoreError::NotFound { .. })
    ));
    let unknown_gateway = GatewayId::from_uuid(Uuid::new_v4());
    assert!(matches!(
        store.request_echo(unknown_gateway, echo, t(105), "x").await,
        Err(StoreError::NotFound { .. })
    ));
    // A failed echo keeps the last proof's time and says why.
    let second = MessageId::generate();
    store
        .request_echo(gateway, second, t(400), "admin")
        .await
        .unwrap();
    store
        .answer_echo(
            gateway,
            second,
            t(401),
            Err("worklist: the DICOM listener did not answer"),
        )
        .await
        .unwrap();
    assert_eq!(
        record(store.clone()).await.proof(t(402)),
        screening_core::echo::Proof::NotProven {
            since: Some(t(103)),
            why: "worklist: the DICOM listener did not answer".into()
        }
    );
    // Each outcome is in the gateway's echo history, newest first; an echo replaced before any
    // answer came is recorded as unanswered.
    let third = MessageId::generate();
    store
        .request_echo(gateway, third, t(700), "schedule")
        .await
        .unwrap();
    store
        .request_echo(gateway, MessageId::generate(), t(1000), "schedule")
        .await
        .unwrap();
    let history = store.echo_events(gateway, 10).await.unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|e| {
            (
                e.echo_id,
                e.requested_by.as_str(),
                e.answered_at,
                e.round_trip_ms,
                e.error.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                third,
                "schedule",
                None,
                None,
                Some(screening_store::echo::UNANSWERED)
            ),
            (
                second,
                "admin",
                Some(t(401)),
                None,
                Some("worklist: the DICOM listener did not answer")
            ),
            (echo, "schedule", Some(t(103)), Some(3_000), None),
        ]
    );
    // The alert rules see the same record.
    let observed = store
        .gateway_observations(day())
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.gateway_id == gateway)
        .unwrap();
    assert_eq!(observed.echo, record(store.clone()).await);
    test.cleanup().await;
}

/// The next status change a watcher hears (2 s at most).
async fn heard(changes: &mut screening_store::StatusSubscription) -> screening_store::StatusChange {
    tokio::time::timeout(Duration::from_secs(2), changes.next())
        .await
        .expect("a status change is heard")
        .expect("the store is still there")
}

async fn every_change_to_a_messages_status_is_heard_once_in_this_instance_and_others(
    backend: Backend,
) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let store = test.store.as_ref();
    // Another instance on the same database hears PostgreSQL's changes too (on SQLite, one file
    // is one process's: the same store stands in).
    let other = match backend {
        Backend::Postgres => screening_store::connect(&test.url).await.unwrap(),
        Backend::Sqlite => test.store.clone(),
    };
    let mut here = store.status_changes();
    let mut there = other.status_changes();
    let gateway = demo.gateway.id;
    let appointment = sendable(&demo);
    let only = |id: AppointmentId| screening_store::StatusChange::Appointments(vec![id].into());

    let message = send(store, appointment, t(1)).await;
    let mut checks = vec![("sent", appointment)];
    let taken = || store.take_pending(gateway, t(2), t(30), 10);
    assert_eq!(taken().await.unwrap().len(), 1);
    checks.push(("taken", appointment));
    store
        .release(gateway, message.id, "the destination was busy")
        .await
        .unwrap();
    checks.push(("released", appointment));
    taken().await.unwrap();
    checks.push(("taken again", appointment));
    assert_eq!(store.redeliver_expired(t(30), 5).await.unwrap(), 1);
    checks.push(("redelivered", appointment));
    store.confirm(gateway, message.id, t(31)).await.unwrap();
    checks.push(("confirmed", appointment));
    store
        .record_procedure(
            gateway,
            &report(&message, ProcedureStatus::InProgress, t(32)),
        )
        .await
        .unwrap();
    checks.push(("the modality's report", appointment));
    let loose = loose_message(&demo, t(33));
    store.enqueue(&loose).await.unwrap();
    checks.push(("enqueued", loose.appointment_id));
    store
        .fail(gateway, loose.id, t(34), "refused")
        .await
        .unwrap();
    checks.push(("failed", loose.appointment_id));
    // Confirming again changes nothing, and is not announced.
    store.confirm(gateway, message.id, t(35)).await.unwrap();

    for (what, id) in checks {
        assert_eq!(heard(&mut here).await, only(id), "{what}");
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), here.next())
            .await
            .is_err(),
        "each change is heard once"
    );
    // The other instance hears the same appointments (changes close together may come as one).
    let mut heard_there = HashSet::new();
    while let Ok(change) = tokio::time::timeout(Duration::from_millis(500), there.next()).await {
        match change.expect("the store is still there") {
            screening_store::StatusChange::Appointments(ids) => {
                heard_there.extend(ids.iter().copied())
            }
            screening_store::StatusChange::Unknown => panic!("nothing was missed"),
        }
    }
    assert_eq!(
        heard_there,
        HashSet::from([appointment, loose.appointment_id])
    );
    drop(other);
    test.cleanup().await;
}

async fn confirming_many_at_once_gives_each_message_its_own_outcome(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let store = test.store.as_ref();
    let gateway = demo.gateway.id;
    let other = Gateway {
        id: GatewayId::from_uuid(Uuid::new_v4()),
        name: "Another site".into(),
        ..demo.gateway.clone()
    };
    store.save_gateway(&other, t(0)).await.unwrap();
    let [taken, pending, confirmed_before, failed] =
        [1, 2, 3, 4].map(|s| loose_message(&demo, t(s)));
    let others = Message {
        gateway_id: other.id,
        ..loose_message(&demo, t(5))
    };
    for message in [&taken, &confirmed_before, &failed, &others] {
        store.enqueue(message).await.unwrap();
    }
    assert_eq!(
        store
            .take_pending(gateway, t(6), t(36), 10)
            .await
            .unwrap()
            .len(),
        3
    );
    store.enqueue(&pending).await.unwrap();
    store
        .confirm(gateway, confirmed_before.id, t(7))
        .await
        .unwrap();
    store
        .fail(gateway, failed.id, t(8), "refused")
        .await
        .unwrap();
    let unknown = MessageId::generate();

    let ids = [
        taken.id,
        pending.id,
        confirmed_before.id,
        failed.id,
        others.id,
        unknown,
        taken.id,
    ];
    let outcomes = store.confirm_many(gateway, &ids, t(10)).await.unwrap();
    assert_eq!(outcomes.len(), ids.len());
    let confirmed = |confirmed, message: &Message| ConfirmOutcome {
        confirmed,
        created_at: message.created_at,
    };
    assert_eq!(
        outcomes[0].as_ref().unwrap(),
        &confirmed(Confirmed::Now, &taken)
    );
    assert_eq!(
        outcomes[1].as_ref().unwrap(),
        &confirmed(Confirmed::Now, &pending)
    );
    assert_eq!(
        outcomes[2].as_ref().unwrap(),
        &confirmed(Confirmed::Already, &confirmed_before)
    );
    assert!(
        matches!(outcomes[3], Err(StoreError::Lifecycle(_))),
        "{:?}",
        outcomes[3]
    );
    assert!(
        matches!(outcomes[4], Err(StoreError::WrongGateway { message_id }) if message_id == others.id),
        "{:?}",
        outcomes[4]
    );
    assert!(
        matches!(outcomes[5], Err(StoreError::NotFound { .. })),
        "{:?}",
        outcomes[5]
    );
    assert_eq!(
        outcomes[6].as_ref().unwrap(),
        &confirmed(Confirmed::Already, &taken),
        "an id named twice is confirmed once"
    );
    // What is stored is what the core's confirm makes of each message.
    let delivered = taken.deliver(t(6), t(36)).unwrap();
    for message in [delivered, pending] {
        let (expected, _) = message.confirm(t(10)).unwrap();
        assert_eq!(store.message(message.id).await.unwrap(), expected);
    }
    assert_eq!(
        store.message(failed.id).await.unwrap().status(),
        MessageStatus::Failed
    );
    assert_eq!(
        store.message(others.id).await.unwrap().status(),
        MessageStatus::Pending
    );
    test.cleanup().await;
}

async fn changes_sent_together_commit_together_and_a_conflict_is_undone_alone(backend: Backend) {
    let Some((test, demo)) = seeded(backend).await else {
        return;
    };
    let store = test.store.as_ref();
    let mut changes = Vec::new();
    for appointment in &demo.appointments {
        if appointment
            .state
            .after(AppointmentAction::SendToModality)
            .is_none()
        {
            continue;
        }
        let context = store.send_context(appointment.id).await.unwrap();
        let outcome = act(
            &context,
            &send_request(AppointmentAction::SendToModality, t(40)),
        )
        .unwrap();
        changes.push(AppointmentChange {
            appointment: outcome.appointment,
            expected_version: context.appointment.version,
            event: outcome.event,
            message: outcome.message,
        });
    }
    assert!(changes.len() >= 3);
    // Someone else changed the second appointment after it was read.
    changes[1].expected_version -= 1;
    let loose: Vec<Message> = (0..10).map(|i| loose_message(&demo, t(41 + i))).collect();
    // Polled together by one task, every write is queued before any commits: they share one
    // transaction (on both databases).
    let (committed, enqueued) = tokio::join!(
        futures_util::future::join_all(changes.iter().map(|change| store.commit_change(change))),
        futures_util::future::join_all(loose.iter().map(|message| store.enqueue(message))),
    );
    for (n, (change, outcome)) in changes.iter().zip(&committed).enumerate() {
        let id = change.appointment.id;
        let message_id = change.message.as_ref().unwrap().id;
        // (The loose messages name the first demo appointment: look for this change's own.)
        let stored = store
            .appointment_messages(id)
            .await
            .unwrap()
            .iter()
            .any(|message| message.id == message_id);
        let events = store.appointment_events(id).await.unwrap().len();
        if n == 1 {
            assert!(
                matches!(outcome, Err(StoreError::VersionConflict { .. })),
                "{outcome:?}"
            );
            assert!(!stored, "the conflicting change wrote no message");
            assert_eq!(events, 0);
        } else {
            outcome.as_ref().unwrap();
            assert!(stored);
            assert_eq!(events, 1);
            assert_eq!(
                store.send_context(id).await.unwrap().appointment,
                change.appointment
            );
        }
    }
    assert!(enqueued.iter().all(Result::is_ok), "{enqueued:?}");
    let taken = store
        .take_pending(demo.gateway.id, t(60), t(90), 100)
        .await
        .unwrap();
    assert_eq!(taken.len(), changes.len() - 1 + loose.len());
    test.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_sqlite_go_on_while_another_process_holds_the_write_lock() {
    let test = TestStore::sqlite().await;
    let store = screening_store::SqliteStore::connect(&test.url)
        .await
        .unwrap();
    // Just after this store opened, another process (a backup, the CLI) takes the write lock.
    let other = screening_store::SqliteStore::connect(&test.url)
        .await
        .unwrap();
    let holding = other.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
    let started = std::time::Instant::now();
    // As many reads at once as it has readers, and more.
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        reads.spawn(async move { screening_store::WebStore::clinics(&store).await.map(|_| ()) });
    }
    while let Some(read) = reads.join_next().await {
        read.unwrap().expect("a read under another's write lock");
    }
    // Not the 10 s busy timeout a reader opened under the lock would have waited.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(holding);
}
