//! Push end to end through the local relay: hub (SQLite) → dispatcher → local relay → the agent's
//! relay listener → order endpoint. The agent polls only once an hour here, so anything delivered
//! quickly came by push.

mod common;

use std::time::Duration;

use common::{start_agent, Harness, OrderEndpoint};
use screening_core::prelude::*;
use screening_gateway::relay::local::LocalRelay;
use screening_gateway::testing::{start_local_relay, until_listening, RELAY_SEND_KEY};

struct Push {
    hub: Harness,
    relay: LocalRelay,
    relay_url: String,
    endpoint: OrderEndpoint,
    folder: tempfile::TempDir,
}

/// A hub whose demo gateway is a relay gateway, a local relay, an order endpoint, the dispatcher.
async fn start(send_key: &str) -> Push {
    let hub = Harness::start().await;
    let (relay, relay_url) = start_local_relay().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    let folder = tempfile::tempdir().unwrap();
    hub.push_through_relay(&relay_url, send_key, &url, folder.path())
        .await;
    Push {
        hub,
        relay,
        relay_url,
        endpoint,
        folder,
    }
}

impl Push {
    async fn start_agent(&self) -> common::RunningAgent {
        let agent = start_agent(
            self.hub
                .relay_agent_config(&self.folder.path().join("inbox.db"), &self.relay_url),
        )
        .await;
        until_listening(&self.relay).await;
        agent
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_pushed_through_the_relay_forwarded_once_and_confirmed() {
    let push = start(RELAY_SEND_KEY).await;
    let agent = push.start_agent().await;
    let sent = push.hub.send(0).await;
    let confirmed = push
        .hub
        .until_status(sent.id, MessageStatus::Confirmed)
        .await;
    assert_eq!(confirmed.attempts, 1);
    assert_eq!(push.endpoint.count(), 1);
    assert_eq!(
        push.endpoint.received.lock().unwrap()[0].message_id,
        sent.id.to_string()
    );
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_listener_the_message_stays_pending_and_goes_once_the_listener_returns() {
    let push = start(RELAY_SEND_KEY).await;
    let sent = push.hub.send(0).await;
    // The dispatcher tries, finds no listener, and puts the message back with the reason.
    let mut reason = None;
    for _ in 0..200 {
        let message = push.hub.store.message(sent.id).await.unwrap();
        if message.last_error.is_some() {
            assert_eq!(message.status(), MessageStatus::Pending);
            reason = message.last_error;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reason = reason.expect("a send was attempted");
    assert!(
        reason.starts_with("connect: HTTP 404") && reason.contains("no listeners"),
        "{reason}"
    );

    let agent = push.start_agent().await;
    push.hub
        .until_status(sent.id, MessageStatus::Confirmed)
        .await;
    assert_eq!(push.endpoint.count(), 1);
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_send_key_leaves_the_message_pending_with_a_clear_401() {
    let push = start("not-the-send-key").await;
    let agent = push.start_agent().await;
    let sent = push.hub.send(0).await;
    let mut last_error = None;
    for _ in 0..200 {
        last_error = push.hub.store.message(sent.id).await.unwrap().last_error;
        if last_error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last_error = last_error.expect("a send was attempted");
    assert!(
        last_error.starts_with("authenticate: HTTP 401"),
        "{last_error}"
    );
    assert_ne!(
        push.hub.store.message(sent.id).await.unwrap().status(),
        MessageStatus::Confirmed
    );
    assert_eq!(push.endpoint.count(), 0);
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}
