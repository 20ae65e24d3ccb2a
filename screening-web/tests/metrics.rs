//! Operations endpoints: `/healthz` and `/readyz` answer without signing in; `/metrics` is absent
//! without a token, refuses a wrong one, and with the right one serves Prometheus text that
//! promtool (Debian `prometheus`, the independent checker) accepts and in which a send and its
//! confirmation through the hub API move the right figures.
//!
//! One test sends messages: the `metrics` recorder is one per process, so the figures it checks
//! must not be moved by another test in this binary.

mod common;

use common::{TestApp, STAFF};
use reqwest::StatusCode;
use screening_core::message::MessageStatus;
use screening_store::testing::Backend;
use screening_web::server::WebConfig;

const TOKEN: &str = "metrics-token-for-tests-0123";

async fn metrics_app() -> TestApp {
    TestApp::with_config(
        Backend::Sqlite,
        WebConfig {
            metrics_token: Some(TOKEN.into()),
            ..WebConfig::default()
        },
    )
    .await
    .expect("SQLite is always there")
}

async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The value of the sample `name{labels}` (labels in the exporter's order), or 0 when absent.
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
        .unwrap_or(0.0)
}

fn promtool_checks(text: &str) {
    screening_gateway::testing::peers::promtool_check(text);
}

#[tokio::test]
async fn readyz_answers_503_with_the_reason_when_a_migration_is_missing() {
    let app = TestApp::sqlite().await;
    // As if this build were newer than the database: its last migration is not applied.
    let database = sqlx::SqlitePool::connect(app.database_url()).await.unwrap();
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .execute(&database)
    .await
    .unwrap();
    let ready = app.visitor().get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        ready.body.contains("migrations are applied"),
        "{}",
        ready.body
    );
    let alive = app.visitor().get("/healthz").await;
    assert_eq!(alive.status, StatusCode::OK, "the process itself is alive");
    database.close().await;
    app.stop().await;
}

#[tokio::test]
async fn health_answers_without_signing_in_and_metrics_need_their_token() {
    let app = TestApp::sqlite().await;
    let visitor = app.visitor();
    let alive = visitor.get("/healthz").await;
    assert_eq!(
        (alive.status, alive.body.as_str()),
        (StatusCode::OK, "ok\n")
    );
    let ready = visitor.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (StatusCode::OK, "ready\n")
    );
    assert_eq!(
        scrape(&app, Some(TOKEN)).await.0,
        StatusCode::NOT_FOUND,
        "no token configured: no /metrics"
    );
    app.stop().await;

    let app = metrics_app().await;
    assert_eq!(scrape(&app, None).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = scrape(&app, Some("metrics-token-for-tests-0124")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("authenticate"), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_and_its_confirmation_move_the_figures_and_promtool_accepts_them() {
    let app = metrics_app().await;
    let gateway = app.demo.gateway.id;
    let as_gateway = app.as_gateway().await;
    let label = format!("gateway=\"{gateway}\"");
    let (status, before) = scrape(&app, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);

    let visitor = app.signed_in(STAFF).await;
    let appointment = app.sendable().clone();
    assert_eq!(
        app.send(&visitor, &appointment).await.status,
        StatusCode::SEE_OTHER
    );
    let (_, pending) = scrape(&app, Some(TOKEN)).await;
    assert_eq!(
        sample(
            &pending,
            &format!("screening_messages{{{label},status=\"pending\"}}")
        ) - sample(
            &before,
            &format!("screening_messages{{{label},status=\"pending\"}}")
        ),
        1.0,
        "{pending}"
    );
    assert!(
        sample(
            &pending,
            &format!("screening_oldest_pending_message_age_seconds{{{label}}}")
        ) >= 0.0
    );

    // The gateway takes it and confirms it over the hub API.
    let taken = as_gateway.take().await;
    let message_id = taken["messages"][0]["message_id"].as_str().unwrap();
    assert_eq!(as_gateway.confirm(message_id).await, StatusCode::OK);

    let (_, after) = scrape(&app, Some(TOKEN)).await;
    let moved = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(
        moved(&format!(
            "screening_messages_delivered_total{{{label},transport=\"poll\"}}"
        )),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved(&format!(
            "screening_messages_confirmed_total{{{label},transport=\"poll\"}}"
        )),
        1.0
    );
    assert_eq!(
        moved("screening_commit_to_confirmed_seconds_count{transport=\"poll\"}"),
        1.0
    );
    assert_eq!(
        moved(&format!(
            "screening_messages{{{label},status=\"{}\"}}",
            MessageStatus::Confirmed.code()
        )),
        1.0
    );
    assert!(
        sample(
            &after,
            &format!("screening_gateway_last_seen_age_seconds{{{label}}}")
        ) < 60.0
    );
    assert!(
        after.contains("screening_http_request_duration_seconds_count{route=\"/clinics/{clinic_id}/appointments/{appointment_id}\",method=\"POST\",status=\"303\"}"),
        "requests are timed by route template, never by concrete path:\n{after}"
    );
    assert!(
        !after.contains(&appointment.id.to_string()),
        "no ids of patients' appointments in labels"
    );
    assert!(sample(&after, "screening_database_connections{state=\"open\"}") >= 1.0);
    promtool_checks(&after);

    // A long poll is counted while it waits (other tests' polls may be counted beside it).
    let poll = as_gateway.long_poll(5);
    let poll = tokio::spawn(async move { poll.send().await.unwrap().status() });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(4);
    loop {
        let (_, waiting) = scrape(&app, Some(TOKEN)).await;
        if sample(&waiting, "screening_long_polls_waiting") >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a waiting long poll is not counted:\n{waiting}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(poll.await.unwrap(), StatusCode::OK);

    // The agent reports its relay listener down, and an echo comes back through the poll.
    let heartbeat = serde_json::json!({
        "agent_version": "1.0.0", "uptime_seconds": 1, "inbox_depth": 0,
        "relay_listener_connected": false
    });
    assert_eq!(
        as_gateway.post("heartbeat", &heartbeat).await,
        StatusCode::OK
    );
    app.store
        .request_echo(
            gateway,
            screening_core::ids::MessageId::generate(),
            screening_store::now_utc(),
            "test",
        )
        .await
        .unwrap();
    let echo = as_gateway.take().await;
    assert_eq!(echo["messages"][0]["type"], "ECHO");
    let echo_id = echo["messages"][0]["message_id"].as_str().unwrap();
    assert_eq!(as_gateway.confirm(echo_id).await, StatusCode::OK);
    let (_, last) = scrape(&app, Some(TOKEN)).await;
    assert_eq!(
        last.lines()
            .find(|line| line.starts_with(&format!(
                "screening_gateway_relay_listener_connected{{{label}}} "
            )))
            .map(|line| line.rsplit(' ').next().unwrap().to_string()),
        Some("0".to_string()),
        "{last}"
    );
    assert_eq!(
        sample(
            &last,
            &format!("screening_echoes_total{{{label},transport=\"poll\",outcome=\"ok\"}}")
        ) - sample(
            &before,
            &format!("screening_echoes_total{{{label},transport=\"poll\",outcome=\"ok\"}}")
        ),
        1.0,
        "{last}"
    );
    promtool_checks(&last);
    app.stop().await;
}
