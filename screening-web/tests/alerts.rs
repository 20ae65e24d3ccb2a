//! Alerts end to end, on SQLite and PostgreSQL: the gateway agent delivers, then is stopped; the
//! next Send to modality waits, the "messages waiting" alert opens within its threshold, the clinic
//! page of the gateway's site shows the banner, and a webhook receiver (which fails the first
//! time) hears the opening once, signed. The agent starts again, the message is delivered, the
//! alert resolves, the banner goes, and the receiver hears the resolution once.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::{TestApp, ADMIN, STAFF};
use screening_core::alert::AlertThresholds;
use screening_core::prelude::*;
use screening_gateway::auth::{generate_credential, hash_credential};
use screening_gateway::backoff::Backoff;
use screening_gateway::testing::{agent_config, serve, start_agent, RunningAgent};
use screening_store::testing::Backend;
use screening_web::server::alerts::{self, AlertSettings, Webhook, SIGNATURE_HEADER};

const SECRET: &str = "webhook-secret-for-tests";

/// Every request the receiver got: its signature header, its body, and whether it was taken.
type Requests = Arc<Mutex<Vec<(String, Vec<u8>, bool)>>>;

async fn receive(
    State(requests): State<Requests>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let mut requests = requests.lock().unwrap();
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // The first request fails, as a receiver that is restarting would.
    let take = !requests.is_empty();
    requests.push((signature, body.to_vec(), take));
    if take {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// The events the receiver took, as JSON.
fn taken(requests: &Requests) -> Vec<serde_json::Value> {
    requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, taken)| *taken)
        .map(|(_, body, _)| serde_json::from_slice(body).unwrap())
        .collect()
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited 10 s for {what}");
}

async fn agent_for(
    app: &TestApp,
    gateway: GatewayId,
    credential: &str,
    inbox: &std::path::Path,
) -> RunningAgent {
    start_agent(agent_config(&app.base, gateway, credential, inbox)).await
}

/// The message Send to modality made for `appointment`.
async fn message_of(app: &TestApp, appointment: AppointmentId) -> MessageId {
    app.all_messages()
        .await
        .into_iter()
        .find(|m| m.appointment_id == appointment)
        .expect("Send to modality made a message")
        .id
}

async fn status_of(app: &TestApp, id: MessageId) -> MessageStatus {
    app.store.message(id).await.unwrap().status()
}

async fn a_stopped_agent_opens_an_alert_that_resolves_when_it_is_back(backend: Backend) {
    // The clinic page keeps its table and the open alerts for ten minutes unless the store
    // announces a change: the banner comes and goes by the announcement of the alert's change.
    let config = screening_web::server::WebConfig {
        clinic_table_max_age: Duration::from_secs(600),
        ..Default::default()
    };
    let Some(app) = TestApp::with_config(backend, config).await else {
        return;
    };
    let requests: Requests = Arc::default();
    let receiver = serve(
        Router::new()
            .route("/hooks/alerts", post(receive))
            .with_state(requests.clone()),
    )
    .await;
    let settings = AlertSettings {
        thresholds: AlertThresholds {
            oldest_pending: chrono::TimeDelta::seconds(1),
            ..AlertThresholds::default()
        },
        check_every: Duration::from_millis(100),
        webhook: Some(Webhook {
            url: format!("{receiver}/hooks/alerts").parse().unwrap(),
            secret: SECRET.into(),
        }),
        retry: Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(200),
        },
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watcher = alerts::spawn(app.store.clone(), settings, async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
    });

    let gateway = app.demo.gateway.id;
    let credential = generate_credential();
    app.store
        .set_gateway_credential_hash(gateway, &hash_credential(&credential))
        .await
        .unwrap();
    let folder = tempfile::tempdir().unwrap();
    let inbox = folder.path().join("agent.db");
    let staff = app.signed_in(STAFF).await;
    let sendable: Vec<Appointment> = app
        .demo
        .appointments
        .iter()
        .filter(|a| a.state.after(AppointmentAction::SendToModality).is_some())
        .take(2)
        .cloned()
        .collect();

    // Working: the first order is delivered, and nothing is raised.
    let agent = agent_for(&app, gateway, &credential, &inbox).await;
    app.send(&staff, &sendable[0]).await;
    let first = message_of(&app, sendable[0].id).await;
    until("the first order confirmed", async || {
        status_of(&app, first).await == MessageStatus::Confirmed
    })
    .await;

    // The agent is switched off (and its last long poll has ended at the hub).
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert!(app.store.open_alerts().await.unwrap().is_empty());
    let page = staff.get(&app.clinic_path()).await.body;
    assert!(!page.contains("data-alert=\"open\""), "no banner yet");
    assert_eq!(
        app.send(&staff, &sendable[1]).await.status,
        reqwest::StatusCode::SEE_OTHER
    );
    let second = message_of(&app, sendable[1].id).await;

    until("the opening taken by the receiver", async || {
        taken(&requests).len() == 1
    })
    .await;
    let opened = &taken(&requests)[0];
    assert_eq!(opened["event"], "opened");
    assert_eq!(opened["alert"]["rule"], "messages_waiting");
    assert_eq!(opened["alert"]["gateway_id"], gateway.to_string());
    assert_eq!(status_of(&app, second).await, MessageStatus::Pending);
    {
        let requests = requests.lock().unwrap();
        // The refused first try and the retry carry the same event, and every request is signed.
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].1, requests[1].1);
        for (signature, body, _) in requests.iter() {
            assert_eq!(signature, &alerts::signature(SECRET, body));
        }
    }
    // The clinic page of the gateway's site says so, and what to do.
    let page = staff.get(&app.clinic_path()).await.body;
    assert!(
        page.contains("data-alert=\"open\""),
        "no banner on the clinic page"
    );
    assert!(page.contains("are not being delivered since"), "{page}");
    assert!(page.contains("Use the manual process"));
    let admin = app.signed_in(ADMIN).await;
    let listed = admin.get("/admin/alerts").await;
    assert_eq!(listed.status, reqwest::StatusCode::OK);
    assert!(listed.body.contains("Open now: 1"), "{}", listed.body);
    assert!(listed.body.contains("Sent (attempt 2)"), "{}", listed.body);

    // Switched back on: the waiting order goes through and the alert resolves, once.
    let agent = agent_for(&app, gateway, &credential, &inbox).await;
    until("the second order confirmed", async || {
        status_of(&app, second).await == MessageStatus::Confirmed
    })
    .await;
    until("the resolution taken by the receiver", async || {
        taken(&requests).len() == 2
    })
    .await;
    let resolved = &taken(&requests)[1];
    assert_eq!(resolved["event"], "resolved");
    assert_eq!(resolved["alert"]["id"], opened["alert"]["id"]);
    assert!(resolved["alert"]["resolved_at"].is_string());
    // Nothing more, however long it stays resolved.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(requests.lock().unwrap().len(), 3);
    let page = staff.get(&app.clinic_path()).await.body;
    assert!(!page.contains("data-alert=\"open\""), "the banner is gone");
    let listed = admin.get("/admin/alerts").await.body;
    assert!(listed.contains("Open now: 0"));

    agent.stop.send(true).unwrap();
    stop.send(true).unwrap();
    watcher.await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_stopped_agent_opens_an_alert_that_resolves_when_it_is_back() {
    a_stopped_agent_opens_an_alert_that_resolves_when_it_is_back(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_stopped_agent_opens_an_alert_that_resolves_when_it_is_back() {
    a_stopped_agent_opens_an_alert_that_resolves_when_it_is_back(Backend::Postgres).await;
}

#[tokio::test]
async fn a_webhook_without_a_secret_is_refused_at_start() {
    let options = screening_web::server::cli::AlertOptions {
        check_seconds: 30,
        gateway_silent_minutes: 10,
        unproven_minutes: 15,
        listener_absent_minutes: 2,
        worklist_grace_minutes: 0,
        message_waiting_seconds: 300,
        failed_messages: 1,
        webhook_url: Some("https://hooks.example/alerts".into()),
    };
    // The test process has no SCREENING_ALERT_WEBHOOK_SECRET.
    let error = options.settings().unwrap_err();
    assert!(error.contains("SCREENING_ALERT_WEBHOOK_SECRET"), "{error}");
}
