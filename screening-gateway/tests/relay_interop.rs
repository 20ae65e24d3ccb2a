//! Interoperability with Microsoft's own Node client for Hybrid Connections (npm `hyco-ws`), through
//! our local relay: a hyco-ws listener answers our Rust sender, and our Rust listener answers a
//! hyco-ws sender. `scripts/test` installs the peer (`npm ci --prefix tools/relay-interop`); under
//! CI=true a missing peer fails these tests.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use screening_core::prelude::*;
use screening_gateway::relay::client::{listen, send_message, ListenerTiming, RelaySender};
use screening_gateway::testing::{
    relay_endpoint, sample_message, start_local_relay, RELAY_LISTEN_KEY, RELAY_SEND_KEY,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

fn peer_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/relay-interop");
    if dir.join("node_modules/hyco-ws").exists() {
        return Some(dir);
    }
    let help = format!(
        "hyco-ws is not installed: run npm ci --prefix {}",
        dir.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{help}");
    eprintln!("NOTICE: skipping, {help}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hyco_ws_listener_answers_our_rust_sender_through_our_relay() {
    let Some(dir) = peer_dir() else { return };
    let (relay, url) = start_local_relay().await;
    let mut node = tokio::process::Command::new("node")
        .arg(dir.join("listener.js"))
        .arg(format!("{url}/$hc/leeds?sb-hc-action=listen"))
        .arg(relay_endpoint(&url, "listen", RELAY_LISTEN_KEY).token())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.as_deref(), Some("listening"));
    assert_eq!(relay.listener_count("leeds"), 1);

    let sent = sample_message();
    let reply = send_message(
        &relay_endpoint(&url, "send", RELAY_SEND_KEY),
        &sent,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, RelayStatus::Processed);
    assert_eq!(reply.message_id, sent.message_id);
    assert_eq!(reply.reason.as_deref(), Some("answered by hyco-ws"));

    // Microsoft's listener serves many messages on one rendezvous, as the hub's sender uses it.
    let before = relay.rendezvous_accepted();
    let mut sender = RelaySender::new(
        relay_endpoint(&url, "send", RELAY_SEND_KEY),
        Duration::from_secs(60),
    );
    for n in 1..=3u128 {
        let sent = GatewayMessage {
            message_id: MessageId::from_uuid(uuid::Uuid::from_u128(n)),
            ..sample_message()
        };
        let reply = sender.send(&sent, Duration::from_secs(10)).await.unwrap();
        assert_eq!(reply.message_id, sent.message_id);
        assert_eq!(reply.reason.as_deref(), Some("answered by hyco-ws"));
    }
    assert_eq!(relay.rendezvous_accepted(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_rust_listener_answers_a_hyco_ws_sender_through_our_relay() {
    let Some(dir) = peer_dir() else { return };
    let (relay, url) = start_local_relay().await;
    let (_stop, stopped) = watch::channel(false);
    let handler = |m: GatewayMessage| async move {
        RelayReply {
            status: RelayStatus::Processed,
            message_id: m.message_id,
            reason: Some("answered by Rust".into()),
        }
    };
    tokio::spawn(listen(
        relay_endpoint(&url, "listen", RELAY_LISTEN_KEY),
        ListenerTiming::default(),
        handler,
        stopped,
    ));
    for _ in 0..200 {
        if relay.listener_count("leeds") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let sent = sample_message();
    let output = tokio::process::Command::new("node")
        .arg(dir.join("sender.js"))
        .arg(format!("{url}/$hc/leeds?sb-hc-action=connect"))
        .arg(relay_endpoint(&url, "send", RELAY_SEND_KEY).token())
        .arg(serde_json::to_string(&sent).unwrap())
        .output()
        .await
        .expect("node runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reply: RelayReply = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reply.message_id, sent.message_id);
    assert_eq!(reply.reason.as_deref(), Some("answered by Rust"));
}
