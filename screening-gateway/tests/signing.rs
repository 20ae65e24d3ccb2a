//! Orders signed by the hub, checked by the agent before anything is forwarded: over real HTTP
//! with a man in the middle rewriting payloads, and over the local relay with a sender that has
//! the SAS key but not the hub's signing key.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{start_agent, Harness, OrderEndpoint};
use screening_core::prelude::*;
use screening_gateway::agent::Inbox;
use screening_gateway::relay::client::send_message;
use screening_gateway::testing::{
    relay_endpoint, sample_message, start_local_relay, until_listening, RELAY_SEND_KEY,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_altered_on_the_way_is_never_forwarded_and_the_hub_hears_why() {
    let h = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    h.route_to(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let inbox_path = dir.path().join("inbox.db");
    let agent = start_agent(h.agent_config(&inbox_path)).await;

    h.tamper_payloads.store(true, Ordering::SeqCst);
    let altered = h.send(0).await;
    let failed = h.until_status(altered.id, MessageStatus::Failed).await;
    let reason = failed.last_error.unwrap();
    assert!(
        reason.starts_with("verify signature: the signature does not match"),
        "{reason}"
    );
    assert_eq!(
        endpoint.count(),
        0,
        "nothing altered reaches the destination"
    );
    let entry = Inbox::open(&inbox_path)
        .await
        .unwrap()
        .entry(altered.id)
        .await
        .unwrap()
        .unwrap();
    assert!(entry.forwarded_at.is_none() && entry.failed_at.is_some());

    // Without the man in the middle, a resend goes through, with the NHS number the hub wrote.
    h.tamper_payloads.store(false, Ordering::SeqCst);
    let resent = h.resend(0).await;
    h.until_status(resent.id, MessageStatus::Confirmed).await;
    let received = endpoint.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message_id, resent.id.to_string());
    assert_eq!(
        received[0].body,
        serde_json::from_str::<serde_json::Value>(&resent.payload).unwrap()
    );
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_trusts_no_key_still_takes_unsigned_orders_from_an_older_hub() {
    let h = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    h.route_to(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = h.agent_config(&dir.path().join("inbox.db"));
    config.signatures = Default::default();
    let agent = start_agent(config).await;
    let sent = h.send(0).await;
    h.until_status(sent.id, MessageStatus::Confirmed).await;
    assert_eq!(endpoint.count(), 1);
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_sender_with_the_sas_key_but_not_the_hubs_key_cannot_make_the_gateway_forward() {
    let h = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    h.route_to(&url).await;
    let (relay, relay_url) = start_local_relay().await;
    let dir = tempfile::tempdir().unwrap();
    let inbox_path = dir.path().join("inbox.db");
    let agent = start_agent(h.relay_agent_config(&inbox_path, &relay_url)).await;
    until_listening(&relay).await;
    let sender = relay_endpoint(&relay_url, "send", RELAY_SEND_KEY);
    let order = |n: u8| {
        let mut message = sample_message();
        message.destination = Destination::parse(&url).unwrap();
        message.payload["identifier"] = format!("attempt {n}").into();
        message
    };

    // Unsigned, signed by a key the gateway does not trust, and a genuine signature moved onto
    // another order: each refused with its reason, none forwarded.
    let unsigned = order(1);
    let stranger = screening_gateway::signing::generate_signing_key();
    let foreign = stranger.signed(order(2), chrono::Utc::now());
    let mut moved = order(3);
    moved.signature = h.sign(order(4)).signature;
    for (forged, expected) in [
        (unsigned, "verify signature: the message is not signed"),
        (foreign, "which this gateway does not trust"),
        (moved, "verify signature: the signature does not match"),
    ] {
        let reply = send_message(&sender, &forged, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(reply.status, RelayStatus::Error);
        let reason = reply.reason.unwrap();
        assert!(reason.contains(expected), "{reason}");
    }
    assert_eq!(endpoint.count(), 0);

    // The same sender with an order the hub signed is obeyed.
    let genuine = h.sign(order(5));
    let reply = send_message(&sender, &genuine, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(reply.status, RelayStatus::Processed, "{:?}", reply.reason);
    assert_eq!(endpoint.count(), 1);
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_pushed_by_the_hubs_dispatcher_are_signed_and_obeyed() {
    let h = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    let (relay, relay_url) = start_local_relay().await;
    h.push_through_relay(&relay_url, RELAY_SEND_KEY, &url).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(h.relay_agent_config(&dir.path().join("inbox.db"), &relay_url)).await;
    until_listening(&relay).await;
    let sent = h.send(0).await;
    h.until_status(sent.id, MessageStatus::Confirmed).await;
    assert_eq!(endpoint.count(), 1);
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}
