//! The hub's HTTP API over real loopback HTTP: the proof-of-concept routes, v1 long-polling,
//! confirmations, failures, heartbeats, authentication and bad input.

mod common;

use std::time::{Duration, Instant};

use common::Harness;
use screening_core::prelude::*;
use screening_store::now_utc;
use serde_json::json;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proof_of_concept_routes_deliver_and_confirm() {
    let h = Harness::start().await;
    let sent = h.send(0).await;
    let url = format!("{}/gateway-messages/{}/", h.hub_url, h.demo.gateway.id);
    let response = client()
        .get(&url)
        .bearer_auth(&h.credential)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let messages = body.as_array().unwrap();
    assert_eq!(messages.len(), 1);
    let mut keys: Vec<_> = messages[0].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    // The proof of concept's four fields, and the hub's signature (an added field its clients ignore).
    assert_eq!(
        keys,
        ["destination", "message_id", "payload", "signature", "type"]
    );
    assert_eq!(messages[0]["type"], "FHIR");
    assert_eq!(messages[0]["payload"]["resourceType"], "ServiceRequest");
    assert_eq!(
        h.store.message(sent.id).await.unwrap().status(),
        MessageStatus::Delivered
    );

    let confirm = client()
        .post(format!(
            "{}/gateway-messages/{}/confirmations",
            h.hub_url, h.demo.gateway.id
        ))
        .bearer_auth(&h.credential)
        .json(&json!({ "message_id": sent.id }))
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), 200);
    assert_eq!(
        confirm.json::<serde_json::Value>().await.unwrap(),
        json!({ "message_id": sent.id })
    );
    assert_eq!(
        h.store.message(sent.id).await.unwrap().status(),
        MessageStatus::Confirmed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_or_with_a_wrong_credential_nothing_is_delivered() {
    let h = Harness::start().await;
    let sent = h.send(0).await;
    let url = format!("{}/gateway-messages/{}/", h.hub_url, h.demo.gateway.id);
    let missing = client().get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let wrong = client()
        .get(&url)
        .bearer_auth("sgw_not-the-credential")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().starts_with("authenticate:"),
        "{body}"
    );
    let v1 = client()
        .get(format!(
            "{}/api/v1/gateways/{}/messages",
            h.hub_url, h.demo.gateway.id
        ))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(v1.status(), 401);
    assert_eq!(
        h.store.message(sent.id).await.unwrap().status(),
        MessageStatus::Pending
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_credential_is_refused_at_once_though_hashes_are_kept_in_memory() {
    let h = Harness::start().await;
    let url = format!(
        "{}/api/v1/gateways/{}/messages",
        h.hub_url, h.demo.gateway.id
    );
    let poll = |credential: String| {
        let url = url.clone();
        async move {
            client()
                .get(url)
                .bearer_auth(credential)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // The old credential works, so its hash is now held in memory.
    assert_eq!(poll(h.credential.clone()).await, 200);
    let replacement = screening_gateway::auth::generate_credential();
    h.store
        .set_gateway_credential_hash(
            h.demo.gateway.id,
            &screening_gateway::auth::hash_credential(&replacement),
        )
        .await
        .unwrap();
    assert_eq!(poll(h.credential.clone()).await, 401, "the old credential");
    assert_eq!(poll(replacement).await, 200, "the new credential");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_gateways_message_is_forbidden() {
    let h = Harness::start().await;
    let sent = h.send(0).await;
    let other = Gateway {
        id: GatewayId::from_uuid(uuid::Uuid::new_v4()),
        name: "Other".into(),
        ..h.demo.gateway.clone()
    };
    h.store
        .save_gateway(&other, screening_store::now_utc())
        .await
        .unwrap();
    let other_credential = screening_gateway::auth::generate_credential();
    h.store
        .set_gateway_credential_hash(
            other.id,
            &screening_gateway::auth::hash_credential(&other_credential),
        )
        .await
        .unwrap();
    let response = client()
        .post(format!(
            "{}/api/v1/gateways/{}/messages/{}/confirmation",
            h.hub_url, other.id, sent.id
        ))
        .bearer_auth(&other_credential)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Using our credential on the other gateway's path is a 401, not a way in.
    let borrowed = client()
        .get(format!(
            "{}/api/v1/gateways/{}/messages",
            h.hub_url, other.id
        ))
        .bearer_auth(&h.credential)
        .send()
        .await
        .unwrap();
    assert_eq!(borrowed.status(), 401);
    assert_eq!(
        h.store.message(sent.id).await.unwrap().status(),
        MessageStatus::Pending
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_a_400_and_oversized_bodies_a_413() {
    let h = Harness::start().await;
    let gateway = h.demo.gateway.id;
    let bad_gateway = client()
        .get(format!("{}/gateway-messages/not-a-uuid/", h.hub_url))
        .bearer_auth(&h.credential)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_gateway.status(), 400);
    let text = bad_gateway.text().await.unwrap();
    assert!(text.contains("gateway id must be a UUID"), "{text}");

    let bad_json = client()
        .post(format!(
            "{}/gateway-messages/{gateway}/confirmations",
            h.hub_url
        ))
        .bearer_auth(&h.credential)
        .header("content-type", "application/json")
        .body("{\"message_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);

    let bad_id = client()
        .post(format!(
            "{}/api/v1/gateways/{gateway}/messages/42/confirmation",
            h.hub_url
        ))
        .bearer_auth(&h.credential)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_id.status(), 400);

    let bad_wait = client()
        .get(format!(
            "{}/api/v1/gateways/{gateway}/messages?wait=soon",
            h.hub_url
        ))
        .bearer_auth(&h.credential)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_wait.status(), 400);

    let huge = "x".repeat(200 * 1024);
    let oversized = client()
        .post(format!(
            "{}/api/v1/gateways/{gateway}/messages/{}/failure",
            h.hub_url,
            uuid::Uuid::new_v4()
        ))
        .bearer_auth(&h.credential)
        .json(&json!({ "reason": huge }))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);

    let unknown = client()
        .post(format!(
            "{}/api/v1/gateways/{gateway}/messages/{}/confirmation",
            h.hub_url,
            uuid::Uuid::new_v4()
        ))
        .bearer_auth(&h.credential)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_returns_as_soon_as_a_message_is_created() {
    let h = Harness::start().await;
    let url = format!(
        "{}/api/v1/gateways/{}/messages?wait=30",
        h.hub_url, h.demo.gateway.id
    );
    let credential = h.credential.clone();
    let started = Instant::now();
    let poll = tokio::spawn(async move {
        let response = client()
            .get(url)
            .bearer_auth(credential)
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json::<serde_json::Value>().await.unwrap(),
            Instant::now(),
        )
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = h.send(0).await;
    let committed = Instant::now();
    let (status, body, answered) = poll.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["messages"][0]["message_id"], sent.id.to_string());
    // It answered because of the commit, long before its 30 s wait ran out.
    assert!(
        answered - committed < Duration::from_secs(5),
        "{:?}",
        answered - committed
    );
    assert!(answered - started >= Duration::from_millis(500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_counts_as_waiting_until_it_is_answered() {
    let h = Harness::start().await;
    assert_eq!(h.hub.long_polls_waiting(), 0);
    let url = format!(
        "{}/api/v1/gateways/{}/messages",
        h.hub_url, h.demo.gateway.id
    );
    // A poll that does not wait is never counted.
    let now = client()
        .get(&url)
        .bearer_auth(&h.credential)
        .send()
        .await
        .unwrap();
    assert_eq!(now.status(), 200);
    assert_eq!(h.hub.long_polls_waiting(), 0);
    let credential = h.credential.clone();
    let poll = tokio::spawn(async move {
        client()
            .get(format!("{url}?wait=30"))
            .bearer_auth(credential)
            .send()
            .await
            .unwrap()
            .status()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.hub.long_polls_waiting() != 1 {
        assert!(Instant::now() < deadline, "the long poll was never counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.send(0).await;
    assert_eq!(poll.await.unwrap(), 200);
    assert_eq!(h.hub.long_polls_waiting(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_long_poll_answers_empty_after_its_wait() {
    let h = Harness::start().await;
    let started = Instant::now();
    let response = client()
        .get(format!(
            "{}/api/v1/gateways/{}/messages?wait=1",
            h.hub_url, h.demo.gateway.id
        ))
        .bearer_auth(&h.credential)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        json!({ "messages": [] })
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_that_finds_nothing_does_not_wait_for_the_databases_writer() {
    let h = Harness::start().await;
    let url = format!(
        "{}/api/v1/gateways/{}/messages",
        h.hub_url, h.demo.gateway.id
    );
    let poll = |wait: u64| {
        client()
            .get(format!("{url}?wait={wait}"))
            .bearer_auth(&h.credential)
            .send()
    };
    // Once, so the gateway's "last seen" is written before the writer is held.
    assert_eq!(poll(0).await.unwrap().status(), 200);
    // Another process holds SQLite's write lock (a long write, a backup, another tool).
    let other = screening_store::SqliteStore::connect(&h.test.url)
        .await
        .unwrap();
    let holding = other.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
    let started = Instant::now();
    let response = poll(1).await.unwrap();
    let answered = started.elapsed();
    let (status, body) = (response.status(), response.text().await.unwrap());
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({ "messages": [] })
    );
    // It looked with reads, and answered at the end of its wait, not after the 10 s busy
    // timeout a take queued behind the lock would have waited.
    assert!(answered < Duration::from_secs(5), "{answered:?}");
    drop(holding);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_report_is_kept_with_its_reason_and_a_heartbeat_is_recorded() {
    let h = Harness::start().await;
    let sent = h.send(0).await;
    let base = format!("{}/api/v1/gateways/{}", h.hub_url, h.demo.gateway.id);
    client()
        .get(format!("{base}/messages"))
        .bearer_auth(&h.credential)
        .send()
        .await
        .unwrap();
    let failed = client()
        .post(format!("{base}/messages/{}/failure", sent.id))
        .bearer_auth(&h.credential)
        .json(&json!({ "reason": "forward to destination: HTTP 500 Internal Server Error: boom" }))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 200);
    let message = h.store.message(sent.id).await.unwrap();
    assert_eq!(message.status(), MessageStatus::Failed);
    assert!(message.last_error.unwrap().contains("HTTP 500"));

    let heartbeat = client()
        .post(format!("{base}/heartbeat"))
        .bearer_auth(&h.credential)
        .json(&json!({ "agent_version": "9.9.9", "uptime_seconds": 42, "inbox_depth": 3 }))
        .send()
        .await
        .unwrap();
    assert_eq!(heartbeat.status(), 200);
    let (seen, beat) = h.store.gateway_last_seen(h.demo.gateway.id).await.unwrap();
    assert!(seen.is_some());
    assert_eq!(
        beat.unwrap(),
        Heartbeat {
            agent_version: "9.9.9".into(),
            uptime_seconds: 42,
            inbox_depth: 3,
            relay_listener_connected: None,
            worklist: None,
        },
        "an older agent's heartbeat says nothing of a listener or a worklist"
    );
    let newer = Heartbeat {
        agent_version: "9.9.10".into(),
        uptime_seconds: 43,
        inbox_depth: 0,
        relay_listener_connected: Some(false),
        worklist: Some(screening_core::wire::WorklistHealth {
            last_query_at: Some(now_utc()),
        }),
    };
    let posted = client()
        .post(format!("{base}/heartbeat"))
        .bearer_auth(&h.credential)
        .json(&newer)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let (_, beat) = h.store.gateway_last_seen(h.demo.gateway.id).await.unwrap();
    assert_eq!(beat.unwrap(), newer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_procedure_report_moves_the_appointment_and_bad_ones_are_refused_with_the_reason() {
    let h = Harness::start().await;
    let sent = h.send(0).await;
    let url = |message: &str| {
        format!(
            "{}/api/v1/gateways/{}/messages/{message}/procedure",
            h.hub_url, h.demo.gateway.id
        )
    };
    let report = json!({
        "message_id": sent.id,
        "status": "in_progress",
        "at": "2026-07-14T08:35:00Z",
        "station_ae_title": "MAMMO1",
    });
    let post = |url: String, body: serde_json::Value, credential: &str| {
        client()
            .post(url)
            .bearer_auth(credential)
            .json(&body)
            .send()
    };

    let response = post(url(&sent.id.to_string()), report.clone(), "wrong")
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let other = MessageId::generate();
    let response = post(url(&other.to_string()), report.clone(), &h.credential)
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "the body names another message");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("was sent for"));

    let mut unknown = report.clone();
    unknown["message_id"] = json!(other);
    let response = post(url(&other.to_string()), unknown, &h.credential)
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let mut bad = report.clone();
    bad["status"] = json!("paused");
    let response = post(url(&sent.id.to_string()), bad, &h.credential)
        .await
        .unwrap();
    assert!(response.status().is_client_error());

    let response = post(url(&sent.id.to_string()), report, &h.credential)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["appointment_state"], "in_progress");
    assert_eq!(
        h.store
            .send_context(sent.appointment_id)
            .await
            .unwrap()
            .appointment
            .state,
        AppointmentState::InProgress
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_confirmations_in_one_request_each_get_their_own_outcome() {
    let h = Harness::start().await;
    let first = h.send(0).await;
    let second = h.send(1).await;
    let base = format!("{}/api/v1/gateways/{}", h.hub_url, h.demo.gateway.id);
    let taken = client()
        .get(format!("{base}/messages"))
        .bearer_auth(&h.credential)
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 200);
    let unknown = MessageId::generate();
    let confirm = |ids: serde_json::Value, credential: &str| {
        client()
            .post(format!("{base}/confirmations"))
            .bearer_auth(credential)
            .json(&json!({ "message_ids": ids }))
            .send()
    };

    let response = confirm(
        json!([first.id, second.id, unknown, first.id]),
        &h.credential,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let body: screening_core::wire::ConfirmationBatchResponse = response.json().await.unwrap();
    let outcomes: Vec<_> = body
        .outcomes
        .iter()
        .map(|o| (o.message_id, o.status, o.already, o.error.is_some()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (first.id, 200, false, false),
            (second.id, 200, false, false),
            (unknown, 404, false, true),
            (first.id, 200, true, false),
        ],
        "each id in order; a repeat is already confirmed; an unknown id is refused alone"
    );
    for sent in [&first, &second] {
        assert_eq!(
            h.store.message(sent.id).await.unwrap().status(),
            MessageStatus::Confirmed
        );
    }

    let too_many = json!(vec![
        first.id;
        screening_core::wire::ConfirmationBatch::MAX + 1
    ]);
    let refused = confirm(too_many, &h.credential).await.unwrap();
    assert_eq!(refused.status(), 413);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("at most 1000"),
        "{body}"
    );
    let malformed = client()
        .post(format!("{base}/confirmations"))
        .bearer_auth(&h.credential)
        .json(&json!({ "message_ids": ["not-an-id"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 422);
    let unauthenticated = confirm(json!([second.id]), "wrong").await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
}
