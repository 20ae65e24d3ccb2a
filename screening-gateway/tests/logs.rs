//! Logs of a whole send-and-confirm run (long-poll to an order endpoint, to the `log:` destination,
//! and pushed through the relay), captured at debug level: they show the flow, and never a full NHS
//! number or a participant's name.

mod common;

use common::{start_agent, Harness, OrderEndpoint};
use screening_core::prelude::*;
use screening_gateway::testing::{start_local_relay, until_listening, RELAY_SEND_KEY};
use screening_store::testing::{CapturedLogs, Scope};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_logs_ids_and_masked_numbers_only() {
    let (captured, _) = CapturedLogs::start(Scope::Process);

    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();

    // Long-poll, to an order endpoint, then to the log destination.
    let (_endpoint, url) = OrderEndpoint::start(vec![500]).await;
    h.route_to(&url).await;
    let agent = start_agent(h.agent_config(&dir.path().join("inbox.db"))).await;
    let first = h.send(0).await;
    h.until_status(first.id, MessageStatus::Confirmed).await;
    h.route_to("log:").await;
    let second = h.send(1).await;
    h.until_status(second.id, MessageStatus::Confirmed).await;
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();

    // Pushed through the local relay.
    let (relay, relay_url) = start_local_relay().await;
    h.push_through_relay(&relay_url, RELAY_SEND_KEY, "log:")
        .await;
    let pushing =
        start_agent(h.relay_agent_config(&dir.path().join("relay-inbox.db"), &relay_url)).await;
    until_listening(&relay).await;
    let pushed = h.send(3).await;
    h.until_status(pushed.id, MessageStatus::Confirmed).await;
    pushing.stop.send(true).unwrap();
    pushing.task.await.unwrap();

    let text = captured.text();
    for id in [first.id, second.id, pushed.id] {
        assert!(
            text.contains(&id.to_string()),
            "message {id} is not in the logs"
        );
    }
    assert!(text.contains("message forwarded"), "{text}");
    assert!(text.contains("message written to the log destination"));
    assert!(text.contains("forwarding failed"), "the 500 is logged");
    for participant in &h.demo.participants {
        let digits = participant.nhs_number.to_string().replace(' ', "");
        for full in [digits.clone(), participant.nhs_number.to_string()] {
            assert!(
                !text.contains(&full),
                "a full NHS number {full} is in the logs"
            );
        }
        for name in [&participant.first_name, &participant.last_name] {
            assert!(
                !text.contains(name.as_str()),
                "the name {name} is in the logs"
            );
        }
    }
    let second_number = &h.demo.participants[1].nhs_number;
    assert!(
        text.contains(&second_number.masked()),
        "the log destination shows the masked number"
    );
}
