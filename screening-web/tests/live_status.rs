//! The clinic page's live status is woken by the store's notifier, never by polling: open pages
//! read the database only when their own clinic changes, and a change made by another instance on
//! the same PostgreSQL reaches a page served by this one.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use screening_core::prelude::*;
use screening_store::now_utc;
use screening_store::testing::Backend;

/// Sends `appointment` to the modality through the store, as any instance would.
async fn send_through(store: &dyn screening_store::ScreeningStore, appointment: AppointmentId) {
    act_through(store, appointment, AppointmentAction::SendToModality).await;
}

/// The gateway takes what waits and confirms `message`.
async fn take_and_confirm(
    store: &dyn screening_store::ScreeningStore,
    gateway: GatewayId,
    message: MessageId,
) {
    store
        .take_pending(
            gateway,
            now_utc(),
            now_utc() + chrono::TimeDelta::seconds(60),
            10,
        )
        .await
        .unwrap();
    store.confirm(gateway, message, now_utc()).await.unwrap();
}

#[tokio::test]
async fn open_clinic_pages_read_the_database_only_when_their_clinic_changes() {
    let app = TestApp::sqlite().await;
    // A second clinic, tomorrow's, whose changes are none of today's pages' business.
    let tomorrow = screening_core::demo::demo_clinic(
        screening_core::london::today(now_utc()) + chrono::Days::new(1),
        10,
    );
    app.store.seed(&tomorrow, now_utc()).await.unwrap();
    assert_ne!(tomorrow.clinic.id, app.demo.clinic.id);
    let today = app.sendable().clone();
    send_through(app.store.as_ref(), today.id).await;

    // Twenty open pages (four per session, the most a session may hold), each given the status.
    let events = format!("{}/events", app.clinic_path());
    let mut streams = Vec::new();
    for _ in 0..5 {
        let visitor = app.signed_in(STAFF).await;
        for _ in 0..4 {
            let stream = visitor.open_stream(&events).await;
            assert_eq!(stream.status(), StatusCode::OK);
            streams.push((stream, String::new()));
        }
    }
    for (stream, received) in &mut streams {
        read_until(stream, received, "\"status\":\"pending\"").await;
    }
    let reads = || app.state.live_status_reads.load(Ordering::Relaxed);
    let settled = reads();
    assert_eq!(settled, 1, "one read for the twenty pages");

    // Nothing changes: no reads, however long the pages stay open.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(reads(), settled, "idle pages read the database");

    // Another clinic's send and confirmation: still none.
    let elsewhere = tomorrow
        .appointments
        .iter()
        .find(|a| a.state.after(AppointmentAction::SendToModality).is_some())
        .expect("a sendable appointment tomorrow");
    send_through(app.store.as_ref(), elsewhere.id).await;
    let sent_elsewhere = app
        .store
        .appointment_messages(elsewhere.id)
        .await
        .unwrap()
        .remove(0);
    // Confirmed without a take: the gateway is the same, and a take would take today's too.
    app.store
        .confirm(tomorrow.gateway.id, sent_elsewhere.id, now_utc())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        reads(),
        settled,
        "another clinic's changes woke today's pages"
    );

    // This clinic's confirmation reaches every page, for a read or two in all (taken, confirmed).
    let message = app
        .store
        .appointment_messages(today.id)
        .await
        .unwrap()
        .remove(0);
    take_and_confirm(app.store.as_ref(), app.demo.gateway.id, message.id).await;
    for (stream, received) in &mut streams {
        read_until(stream, received, "\"status\":\"confirmed\"").await;
    }
    let woken = reads() - settled;
    assert!((1..=2).contains(&woken), "{woken} reads for two changes");
    app.stop().await;
}

#[tokio::test]
async fn a_confirmation_handled_by_another_instance_reaches_the_page() {
    let Some(app) = TestApp::on(Backend::Postgres).await else {
        return;
    };
    let other = app.another_instance().await;
    let visitor = app.signed_in(STAFF).await;
    let mut stream = visitor
        .open_stream(&format!("{}/events", app.clinic_path()))
        .await;
    assert_eq!(stream.status(), StatusCode::OK);
    let mut received = String::new();

    // Sent, taken and confirmed through instance B; the page is served by instance A.
    let appointment = app.sendable().clone();
    send_through(other.store.as_ref(), appointment.id).await;
    read_until(&mut stream, &mut received, "\"status\":\"pending\"").await;
    let message = other
        .store
        .appointment_messages(appointment.id)
        .await
        .unwrap()
        .remove(0);
    take_and_confirm(other.store.as_ref(), app.demo.gateway.id, message.id).await;
    read_until(&mut stream, &mut received, "\"status\":\"confirmed\"").await;
    assert!(received.contains(&format!("\"appointment_id\":\"{}\"", appointment.id)));

    // And while nothing changes, instance A's page reads nothing. (The page may have read
    // "confirmed" on the take's NOTIFY, with the confirmation's own still on its way: it lands
    // first.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = app.state.live_status_reads.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.state.live_status_reads.load(Ordering::Relaxed), settled);
    other.stop().await;
    app.stop().await;
}
