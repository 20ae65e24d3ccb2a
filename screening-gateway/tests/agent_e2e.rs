//! The gateway agent end to end over real HTTP on loopback: hub (SQLite) → agent → order endpoint.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{start_agent, Harness, OrderEndpoint};
use screening_core::prelude::*;
use screening_gateway::agent::Inbox;

/// Waits (10 s at most) until `count` outcomes in the agent's inbox wait to be reported to the hub.
async fn until_unreported(inbox: &Inbox, count: usize) {
    for _ in 0..500 {
        if inbox.unreported().await.unwrap().len() == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the agent never had {count} outcomes to report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_message_reaches_the_endpoint_exactly_once_and_is_confirmed() {
    let h = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    h.route_to(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(h.agent_config(&dir.path().join("inbox.db"))).await;

    let sent = h.send(0).await;
    let confirmed = h.until_status(sent.id, MessageStatus::Confirmed).await;
    assert!(confirmed.delivered_at.unwrap() <= confirmed.confirmed_at.unwrap());
    let received = endpoint.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].content_type, "application/fhir+json");
    assert_eq!(received[0].message_id, sent.id.to_string());
    assert_eq!(
        received[0].body,
        serde_json::from_str::<serde_json::Value>(&sent.payload).unwrap()
    );

    agent.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), agent.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_before_confirming_is_redelivered_on_restart_and_does_not_forward_twice() {
    let h = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    h.route_to(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let inbox_path = dir.path().join("inbox.db");

    // The first agent forwards, but cannot confirm; then it is killed.
    h.refuse_confirmations.store(true, Ordering::SeqCst);
    let first = start_agent(h.agent_config(&inbox_path)).await;
    let sent = h.send(0).await;
    let inbox = Inbox::open(&inbox_path).await.unwrap();
    until_unreported(&inbox, 1).await;
    assert!(inbox
        .entry(sent.id)
        .await
        .unwrap()
        .unwrap()
        .forwarded_at
        .is_some());
    assert_eq!(endpoint.count(), 1);
    first.task.abort();
    let _ = first.task.await;

    // The lease runs out and the hub makes the message pending again.
    h.until_status(sent.id, MessageStatus::Pending).await;

    // A restarted agent on the same inbox takes the redelivered message, sees it was forwarded,
    // and only confirms.
    h.refuse_confirmations.store(false, Ordering::SeqCst);
    let second = start_agent(h.agent_config(&inbox_path)).await;
    let confirmed = h.until_status(sent.id, MessageStatus::Confirmed).await;
    assert_eq!(confirmed.attempts, 2, "delivered twice");
    assert_eq!(endpoint.count(), 1, "forwarded once");
    second.stop.send(true).unwrap();
    second.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_fails_once_is_retried_and_the_message_confirmed() {
    let h = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![500]).await;
    h.route_to(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(h.agent_config(&dir.path().join("inbox.db"))).await;
    let sent = h.send(0).await;
    h.until_status(sent.id, MessageStatus::Confirmed).await;
    assert_eq!(endpoint.count(), 2, "one refusal, one success");
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_always_fails_leaves_the_message_failed_with_its_reason() {
    let h = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![1500]).await;
    h.route_to(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(h.agent_config(&dir.path().join("inbox.db"))).await;
    let sent = h.send(0).await;
    let failed = h.until_status(sent.id, MessageStatus::Failed).await;
    let reason = failed.last_error.unwrap();
    assert!(
        reason.starts_with("forward to destination: HTTP 500"),
        "{reason}"
    );
    // The destination's words are not kept (a RIS may echo the patient); their size is.
    assert!(!reason.contains("order endpoint says so"), "{reason}");
    assert!(reason.contains("a body of 22 bytes, not kept"), "{reason}");
    assert_eq!(endpoint.count(), 3, "max_attempts = 3");
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_a_wrong_credential_takes_nothing() {
    let h = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    h.route_to(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = h.agent_config(&dir.path().join("inbox.db"));
    config.credential = "sgw_wrong".into();
    let sent = h.send(0).await;
    let agent = start_agent(config).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        h.store.message(sent.id).await.unwrap().status(),
        MessageStatus::Pending
    );
    assert_eq!(endpoint.count(), 0);
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_destination_gets_the_order_and_the_message_is_confirmed() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let drop_folder = dir.path().join("worklist");
    h.route_to(&format!("file://{}", drop_folder.display()))
        .await;
    let agent = start_agent(h.agent_config(&dir.path().join("inbox.db"))).await;
    let sent = h.send(1).await;
    h.until_status(sent.id, MessageStatus::Confirmed).await;
    let written = std::fs::read_to_string(drop_folder.join(format!("{}.json", sent.id))).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&written).unwrap(),
        serde_json::from_str::<serde_json::Value>(&sent.payload).unwrap()
    );
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_the_hospital_has_not_allowed_is_refused_at_once_and_reported() {
    let h = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    h.route_to(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = h.agent_config(&dir.path().join("inbox.db"));
    // The hub routes to the endpoint, but this agent's configuration allows only another one.
    config.allow =
        screening_gateway::agent::AllowList::new(&["https://ris.example.nhs.uk/fhir".into()], None)
            .unwrap();
    let agent = start_agent(config).await;

    let sent = h.send(0).await;
    let failed = h.until_status(sent.id, MessageStatus::Failed).await;
    let reason = failed.last_error.unwrap();
    assert!(
        reason.starts_with("forward to destination: not allowed by this gateway's configuration"),
        "{reason}"
    );
    assert!(
        !reason.contains("/fhir/ServiceRequest"),
        "no path in the reason: {reason}"
    );
    assert_eq!(failed.attempts, 1, "refused for good, not retried");
    assert_eq!(endpoint.count(), 0, "nothing reached the endpoint");
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_held_up_by_the_hub_go_together_in_one_request() {
    let h = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    h.route_to(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let inbox_path = dir.path().join("inbox.db");
    h.refuse_confirmations.store(true, Ordering::SeqCst);
    let agent = start_agent(h.agent_config(&inbox_path)).await;
    let sent = [h.send(0).await, h.send(1).await, h.send(2).await];
    let inbox = Inbox::open(&inbox_path).await.unwrap();
    until_unreported(&inbox, sent.len()).await;
    assert_eq!(
        endpoint.count(),
        sent.len(),
        "all forwarded, none confirmed"
    );
    assert_eq!(h.confirmation_batches.load(Ordering::SeqCst), 0);

    h.refuse_confirmations.store(false, Ordering::SeqCst);
    for message in &sent {
        h.until_status(message.id, MessageStatus::Confirmed).await;
    }
    assert_eq!(
        h.confirmation_batches.load(Ordering::SeqCst),
        1,
        "the three confirmations went in one request"
    );
    // The agent records the hub's answers once they arrive.
    until_unreported(&inbox, 0).await;
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}
