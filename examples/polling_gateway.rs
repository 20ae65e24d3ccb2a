//! A polling gateway end to end, in one process, on loopback:
//! the hub (SQLite) → the gateway agent (long-polling) → a recording order endpoint.
//!
//! ```text
//! cargo run --example polling_gateway
//! ```
//!
//! It sends one participant to the modality and prints the timeline: created → delivered →
//! forwarded → confirmed, with the latency of each step.

use std::time::Duration;

use screening::core::prelude::*;
use screening::gateway::testing::{start_agent, timeline, LocalHub, OrderEndpoint};

#[tokio::main]
async fn main() {
    // 1. The hub: a fresh SQLite database with the demo clinic, and the demo gateway's credential.
    let hub = LocalHub::start().await;
    println!("hub            {}", hub.hub_url);

    // 2. A hospital order endpoint that records what it receives; the gateway's FHIR route points at it.
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    hub.route_to(&url).await;
    println!("order endpoint {url}");

    // 3. The gateway agent, long-polling the hub, with its durable inbox in a temporary folder.
    let folder = tempfile::tempdir().expect("a temporary folder");
    let agent = start_agent(hub.agent_config(&folder.path().join("inbox.db"))).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // let it start its long-poll

    // 4. A clinician presses "Send to modality".
    let sent = hub.send(0).await;
    println!(
        "\nSent {} ({}) to the modality as message {}",
        sent.message_type, sent.destination, sent.id
    );
    let confirmed = hub.until_status(sent.id, MessageStatus::Confirmed).await;
    let forwarded = endpoint.received.lock().unwrap()[0].clone();

    // 5. The timeline, from the hub's own timestamps and the endpoint's arrival time.
    print!("\nTimeline\n{}", timeline(&confirmed, forwarded.at));
    println!(
        "\nThe endpoint received {} request(s), Content-Type {}, a {} resource.",
        endpoint.count(),
        forwarded.content_type,
        forwarded.body["resourceType"].as_str().unwrap_or("?")
    );

    let _ = agent.stop.send(true);
    let _ = agent.task.await;
}
