//! Real-time push through an Azure Relay Hybrid Connection, end to end on loopback, with the
//! project's local relay standing in for Azure:
//! hub (SQLite) → dispatcher → local relay → gateway agent listening on the relay → order endpoint.
//!
//! ```text
//! cargo run --example relay_gateway
//! ```
//!
//! The agent polls only once an hour here: the message arrives by push. The timeline shows
//! created → delivered → forwarded → confirmed with the latency of each step.

use screening::core::prelude::*;
use screening::gateway::testing::{
    start_agent, start_local_relay, timeline, until_listening, LocalHub, OrderEndpoint,
    RELAY_SEND_KEY,
};

#[tokio::main]
async fn main() {
    let (relay, relay_url) = start_local_relay().await;
    println!("local relay    {relay_url}  (hybrid connection \"leeds\")");
    let hub = LocalHub::start().await;
    println!("hub            {}", hub.hub_url);
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    println!("order endpoint {url}");
    let folder = tempfile::tempdir().expect("a temporary folder");

    // The demo gateway becomes a relay gateway; the hub's dispatcher pushes its messages.
    hub.push_through_relay(&relay_url, RELAY_SEND_KEY, &url)
        .await;
    // The gateway agent listens on the relay (its control channel is outbound, like polling).
    let agent =
        start_agent(hub.relay_agent_config(&folder.path().join("inbox.db"), &relay_url)).await;
    until_listening(&relay).await;

    let sent = hub.send(0).await;
    println!("\nSent message {} by push", sent.id);
    let confirmed = hub.until_status(sent.id, MessageStatus::Confirmed).await;
    let forwarded = endpoint.received.lock().unwrap()[0].clone();

    print!("\nTimeline\n{}", timeline(&confirmed, forwarded.at));
    println!(
        "\nThe endpoint received {} request(s); the hub received {} HTTP request(s) from the agent.",
        endpoint.count(),
        hub.requests.load(std::sync::atomic::Ordering::SeqCst)
    );
    let _ = agent.stop.send(true);
    let _ = agent.task.await;
}
