//! Push end to end through the local relay: hub (SQLite) → dispatcher → local relay → the agent's
//! relay listener → order endpoint. The agent polls only once an hour here, so anything delivered
//! quickly came by push.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{start_agent, Harness, OrderEndpoint};
use screening_core::prelude::*;
use screening_gateway::agent::{AgentConfig, FetchMode};
use screening_gateway::relay::client::{listen, ListenerTiming, RelayEndpoint};
use screening_gateway::relay::local::LocalRelay;
use screening_gateway::testing::{
    serve, start_local_relay, until_listening, FlakyProxy, RELAY_LISTEN_KEY, RELAY_SEND_KEY,
};
use tokio::sync::watch;

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
    hub.push_through_relay(&relay_url, send_key, &url).await;
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
        // The agent's first poll (the next is an hour away) has passed: anything sent from now
        // on that reaches the endpoint came by push.
        for _ in 0..500 {
            if self.hub.fetches.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                return agent;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the agent never made its first poll");
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
    // Stopped at once: the forward, recorded while the reply went back, is in the inbox by the
    // time the agent has stopped.
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
    let inbox = screening_gateway::agent::inbox::Inbox::open(&push.folder.path().join("inbox.db"))
        .await
        .unwrap();
    let entry = inbox.entry(sent.id).await.unwrap().expect("in the inbox");
    assert!(entry.forwarded_at.is_some(), "recorded as forwarded");
    assert_eq!(inbox.depth().await.unwrap(), 0, "and as reported");
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

fn relay_address(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("ws://").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_link_silently_stops_answering_is_detected_and_replaced() {
    let (relay, relay_url) = start_local_relay().await;
    let proxy = FlakyProxy::start(relay_address(&relay_url)).await;
    let (_stop, stopped) = watch::channel(false);
    let endpoint = RelayEndpoint {
        base_url: format!("ws://{}", proxy.address),
        hybrid_connection: "leeds".into(),
        key_name: "listen".into(),
        key: RELAY_LISTEN_KEY.into(),
        token_lifetime: Duration::from_secs(3600),
    };
    // Pings every 500 ms here (30 s by default, so a dead link is replaced within a minute).
    let timing = ListenerTiming {
        ping_interval: Duration::from_millis(500),
        renew_before: Duration::from_secs(300),
    };
    let handler = |m: GatewayMessage| async move {
        RelayReply {
            status: RelayStatus::Processed,
            message_id: m.message_id,
            reason: None,
        }
    };
    tokio::spawn(listen(endpoint, timing, handler, stopped));
    until_listening(&relay).await;
    assert_eq!(relay.control_channels_accepted(), 1);

    // The link stays open but nothing gets through, pongs included: a zombie.
    proxy.swallow_existing();
    for _ in 0..100 {
        if relay.control_channels_accepted() >= 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the dead control channel was not replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_relay_outage_the_listener_reconnects_and_nothing_is_lost_or_doubled() {
    let hub = Harness::start().await;
    let (relay, relay_url) = start_local_relay().await;
    let proxy = FlakyProxy::start(relay_address(&relay_url)).await;
    let via_proxy = format!("ws://{}", proxy.address);
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    let folder = tempfile::tempdir().unwrap();
    hub.push_through_relay(&via_proxy, RELAY_SEND_KEY, &url)
        .await;
    let agent =
        start_agent(hub.relay_agent_config(&folder.path().join("inbox.db"), &via_proxy)).await;
    until_listening(&relay).await;
    let before = hub.send(0).await;
    hub.until_status(before.id, MessageStatus::Confirmed).await;

    // The relay goes away mid-flow: every connection dropped, new ones refused.
    proxy.cut();
    let during = hub.send(1).await;
    // Longer than the dispatcher needs to use up max_attempts (10) at its test backoff (≤ 300 ms):
    // an outage must never park a message as failed.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    assert_ne!(
        hub.store.message(during.id).await.unwrap().status(),
        MessageStatus::Confirmed
    );

    proxy.restore();
    let confirmed = hub.until_status(during.id, MessageStatus::Confirmed).await;
    assert!(
        confirmed.last_error.is_some(),
        "the failed attempts left their reason"
    );
    let received: Vec<String> = endpoint
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.message_id.clone())
        .collect();
    assert_eq!(
        received,
        [before.id.to_string(), during.id.to_string()],
        "each once, in order"
    );
    assert!(
        relay.control_channels_accepted() >= 2,
        "the listener reconnected"
    );
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hub_instances_dispatching_one_outbox_send_each_message_once() {
    let push = start(RELAY_SEND_KEY).await;
    // A second hub instance's dispatcher on the same store.
    screening_gateway::relay::dispatcher::spawn_dispatchers(
        push.hub.store.clone(),
        Default::default(),
    )
    .await
    .unwrap();
    let agent = push.start_agent().await;
    let mut sent = vec![push.hub.send(0).await];
    for _ in 0..24 {
        sent.push(push.hub.resend(0).await);
    }
    for message in &sent {
        push.hub
            .until_status(message.id, MessageStatus::Confirmed)
            .await;
    }
    let received: Vec<String> = push
        .endpoint
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.message_id.clone())
        .collect();
    let mut unique = received.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        received.len(),
        sent.len(),
        "no message forwarded twice: {received:?}"
    );
    assert_eq!(unique.len(), sent.len());
    for message in &sent {
        assert_eq!(
            push.hub.store.message(message.id).await.unwrap().attempts,
            1,
            "each sent once"
        );
    }
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_gateway_configured_after_the_dispatcher_started_is_picked_up() {
    let hub = Harness::start().await;
    hub.start_dispatcher().await;
    let (relay, relay_url) = start_local_relay().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    let folder = tempfile::tempdir().unwrap();
    hub.make_relay_gateway(&relay_url, RELAY_SEND_KEY, &url)
        .await;
    let agent =
        start_agent(hub.relay_agent_config(&folder.path().join("inbox.db"), &relay_url)).await;
    until_listening(&relay).await;
    let sent = hub.send(0).await;
    hub.until_status(sent.id, MessageStatus::Confirmed).await;
    assert_eq!(endpoint.count(), 1);
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_message_is_forwarded_once_while_the_polling_loop_looks_for_work() {
    // An order endpoint that takes 300 ms to answer, so a pushed message's forwarding is still
    // in flight when the agent's polling loop (every 20 ms here) looks for messages due.
    let arrivals: Arc<Mutex<Vec<String>>> = Arc::default();
    let slow = {
        let arrivals = arrivals.clone();
        axum::Router::new().route(
            "/fhir/ServiceRequest",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let arrivals = arrivals.clone();
                async move {
                    let id = headers["x-message-id"].to_str().unwrap().to_string();
                    arrivals.lock().unwrap().push(id);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "taken"
                }
            }),
        )
    };
    let url = format!("{}/fhir/ServiceRequest", serve(slow).await);
    let hub = Harness::start().await;
    let (relay, relay_url) = start_local_relay().await;
    hub.push_through_relay(&relay_url, RELAY_SEND_KEY, &url)
        .await;
    let folder = tempfile::tempdir().unwrap();
    let agent = start_agent(AgentConfig {
        fetch: FetchMode::Poll {
            interval: Duration::from_millis(20),
        },
        ..hub.relay_agent_config(&folder.path().join("inbox.db"), &relay_url)
    })
    .await;
    until_listening(&relay).await;

    // One at a time, so each is pushed while the polling loop has nothing of its own to forward.
    let mut sent = Vec::new();
    for n in 0..3 {
        let id = hub.send(n).await.id;
        hub.until_status(id, MessageStatus::Confirmed).await;
        sent.push(id);
    }
    // Long enough for a second forwarding of any of them to arrive.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut received = arrivals.lock().unwrap().clone();
    received.sort();
    let mut expected: Vec<String> = sent.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(received, expected, "each forwarded once");
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}
