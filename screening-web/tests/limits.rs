//! The server's own limits: a page request that takes too long is answered 503 and changes
//! nothing; one session may hold only so many live status streams open.

mod common;

use std::time::Duration;

use common::{TestApp, ADMIN, STAFF};
use reqwest::StatusCode;
use screening_core::prelude::*;
use screening_store::testing::Backend;
use screening_web::server::limits::MAX_STREAMS_PER_SESSION;
use screening_web::server::WebConfig;
use sqlx::Connection;

#[tokio::test]
async fn a_send_stuck_behind_a_locked_database_is_answered_503_and_saves_nothing() {
    let app = TestApp::with_config(
        Backend::Sqlite,
        WebConfig {
            request_timeout: Duration::from_millis(500),
            ..WebConfig::default()
        },
    )
    .await
    .unwrap();
    let visitor = app.signed_in(STAFF).await;
    let appointment = app.sendable().clone();
    // The form's token is read first: only the press itself meets the lock (a page read under a
    // busy CI machine may take longer than this test's 0.5 s limit, and that is not the point).
    let token = visitor.get(&app.clinic_path()).await.csrf();
    let version = appointment.version.to_string();
    let press = [
        ("csrf_token", token.as_str()),
        ("action", "send_to_modality"),
        ("version", version.as_str()),
    ];

    // Another process holds SQLite's write lock, so the send waits in the busy handler (10 s).
    let mut locker = sqlx::SqliteConnection::connect(app.database_url())
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    let reply = visitor.post(&app.action_path(appointment.id), &press).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("Sorry, the service is taking too long")
            && reply.body.contains("gave up after 0.5 seconds"),
        "{}",
        reply.body
    );
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    drop(locker);

    // Nothing was half done, and the app goes on working: the same press now succeeds, once.
    assert_eq!(app.state_of(appointment.id).await, appointment.state);
    assert!(app.all_messages().await.is_empty());
    let mut sent = false;
    for _ in 0..50 {
        let reply = app.send(&visitor, &appointment).await;
        if reply.status == StatusCode::SEE_OTHER {
            sent = true;
            break;
        }
        // The abandoned write may still hold the one writer connection for a moment.
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent, "the send succeeds once the database is free");
    assert_eq!(
        app.state_of(appointment.id).await,
        AppointmentState::SentToModality
    );
    assert_eq!(app.all_messages().await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_session_holds_a_bounded_number_of_live_streams() {
    let app = TestApp::sqlite().await;
    let staff = app.signed_in(STAFF).await;
    let events = format!("{}/events", app.clinic_path());
    let mut open = Vec::new();
    for _ in 0..MAX_STREAMS_PER_SESSION {
        let stream = staff.open_stream(&events).await;
        assert_eq!(stream.status(), StatusCode::OK);
        open.push(stream);
    }
    let refused = staff.open_stream(&events).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = refused.text().await.unwrap();
    assert!(body.contains("Too many live clinic pages"), "{body}");

    // Another session is not affected.
    let admin = app.signed_in(ADMIN).await;
    assert_eq!(admin.open_stream(&events).await.status(), StatusCode::OK);

    // A closed stream gives its place back (the server notices the closed connection).
    drop(open.pop());
    let mut reopened = false;
    for _ in 0..100 {
        let stream = staff.open_stream(&events).await;
        if stream.status() == StatusCode::OK {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(reopened, "a place freed by a closed stream is given back");
    app.stop().await;
}

#[tokio::test]
async fn a_form_over_64_kib_is_answered_413_and_changes_nothing() {
    let app = TestApp::sqlite().await;
    let visitor = app.signed_in(STAFF).await;
    let appointment = app.sendable().clone();
    let padding = "x".repeat(70 * 1024);
    let reply = visitor
        .submit(
            &app.clinic_path(),
            &app.action_path(appointment.id),
            &[
                ("action", "send_to_modality"),
                ("version", &appointment.version.to_string()),
                ("padding", &padding),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        reply.body.contains("The form was too large"),
        "{}",
        reply.body
    );
    assert_eq!(app.state_of(appointment.id).await, appointment.state);
    assert!(app.all_messages().await.is_empty());
    app.stop().await;
}
