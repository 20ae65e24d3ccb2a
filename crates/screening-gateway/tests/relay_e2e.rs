//! Push end to end through the local relay: hub (SQLite) → dispatcher → local relay → the agent's
//! relay listener → order endpoint. The agent polls only once an hour here, so anything delivered
//! quickly came by push.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{start_agent, Harness, OrderEndpoint};
use screening_core::prelude::*;
use screening_gateway::agent::FetchMode;
use screening_gateway::backoff::Backoff;
use screening_gateway::relay::client::RelayEndpoint;
use screening_gateway::relay::dispatcher::{spawn_dispatchers, DispatcherConfig};
use screening_gateway::relay::local::{LocalRelay, LocalRelayConfig};
use screening_gateway::relay::sas::{Right, SasRule};

const LISTEN_KEY: &str = "bGlzdGVuLWtleS1lMmU=";
const SEND_KEY: &str = "c2VuZC1rZXktZTJl";

struct Push {
    hub: Harness,
    relay: LocalRelay,
    relay_url: String,
    endpoint: OrderEndpoint,
    folder: tempfile::TempDir,
}

/// A hub whose demo gateway is a relay gateway (its send key in a file), a local relay, an order
/// endpoint, and the dispatcher running.
async fn start(send_key: &str) -> Push {
    let hub = Harness::start().await;
    let relay = LocalRelay::new(LocalRelayConfig {
        hybrid_connections: vec!["leeds".into()],
        rules: vec![
            SasRule { key_name: "listen".into(), key: LISTEN_KEY.into(), rights: vec![Right::Listen] },
            SasRule { key_name: "send".into(), key: SEND_KEY.into(), rights: vec![Right::Send] },
        ],
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_url = format!("ws://{}", listener.local_addr().unwrap());
    let app = relay.router().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let folder = tempfile::tempdir().unwrap();
    let key_file = folder.path().join("send.key");
    std::fs::write(&key_file, send_key).unwrap();
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    let mut gateway = hub.demo.gateway.clone();
    gateway.transport = Transport::Relay(RelayTransport {
        namespace: relay_url.clone(),
        hybrid_connection: "leeds".into(),
        key_name: "send".into(),
        key_ref: format!("file:{}", key_file.display()).parse().unwrap(),
    });
    gateway.routes = vec![Route { message_type: MessageType::fhir(), destination: Destination::parse(&url).unwrap() }];
    hub.store.save_gateway(&gateway, screening_store::now_utc()).await.unwrap();
    spawn_dispatchers(
        hub.store.clone(),
        DispatcherConfig {
            safety_sweep: Duration::from_millis(500),
            retry: Backoff { base: Duration::from_millis(100), max: Duration::from_millis(300) },
            ..DispatcherConfig::default()
        },
    )
    .await
    .unwrap();
    Push { hub, relay, relay_url, endpoint, folder }
}

impl Push {
    async fn start_agent(&self) -> common::RunningAgent {
        let mut config = self.hub.agent_config(&self.folder.path().join("inbox.db"));
        config.fetch = FetchMode::Poll { interval: Duration::from_secs(3600) };
        config.relay = Some(RelayEndpoint {
            base_url: self.relay_url.clone(),
            hybrid_connection: "leeds".into(),
            key_name: "listen".into(),
            key: LISTEN_KEY.into(),
            token_lifetime: Duration::from_secs(3600),
        });
        let agent = start_agent(config).await;
        for _ in 0..300 {
            if self.relay.listener_count("leeds") > 0 {
                return agent;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the agent's relay listener never connected");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_pushed_through_the_relay_forwarded_once_and_confirmed() {
    let push = start(SEND_KEY).await;
    let agent = push.start_agent().await;
    let sent = push.hub.send(0).await;
    let confirmed = push.hub.until_status(sent.id, MessageStatus::Confirmed).await;
    assert_eq!(confirmed.attempts, 1);
    assert_eq!(push.endpoint.count(), 1);
    assert_eq!(push.endpoint.received.lock().unwrap()[0].message_id, sent.id.to_string());
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_listener_the_message_stays_pending_and_goes_once_the_listener_returns() {
    let push = start(SEND_KEY).await;
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
    assert!(reason.starts_with("connect: HTTP 404") && reason.contains("no listeners"), "{reason}");

    let agent = push.start_agent().await;
    push.hub.until_status(sent.id, MessageStatus::Confirmed).await;
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
    assert!(last_error.starts_with("authenticate: HTTP 401"), "{last_error}");
    assert_ne!(push.hub.store.message(sent.id).await.unwrap().status(), MessageStatus::Confirmed);
    assert_eq!(push.endpoint.count(), 0);
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}
