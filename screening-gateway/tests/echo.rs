//! Health proven by traffic: echoes through the path orders take, answered by the real agent
//! without forwarding, over long-poll and over the relay (a zombie link included), and a
//! worklist gateway's DICOM listener checked on the way.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{start_agent, Harness, OrderEndpoint};
use screening_core::echo::Proof;
use screening_gateway::testing::serve_worklist;
use screening_store::now_utc;

fn proven_round_trip(proof: Proof) -> i64 {
    match proof {
        Proof::Proven { round_trip_ms, .. } => round_trip_ms,
        other => panic!("the path should be proven: {other:?}"),
    }
}

fn not_proven_because(proof: Proof) -> String {
    match proof {
        Proof::NotProven { why, .. } => why,
        other => panic!("the path should not be proven: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_over_long_poll_is_answered_by_the_agent_and_never_forwarded() {
    let hub = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    hub.route_to(&url).await;
    let folder = tempfile::tempdir().unwrap();
    let agent = start_agent(hub.agent_config(&folder.path().join("inbox.db"))).await;

    let record = hub.echo().await;
    let round_trip = proven_round_trip(record.proof(now_utc()));
    assert!(round_trip < 5_000, "answered at once: {round_trip} ms");
    assert_eq!(endpoint.count(), 0, "an echo is never forwarded");

    // Altered on the way: the agent's signature check fails it, and the hub hears why.
    hub.tamper_payloads.store(true, Ordering::SeqCst);
    let why = not_proven_because(hub.echo().await.proof(now_utc()));
    assert!(why.contains("signature"), "{why}");
    hub.tamper_payloads.store(false, Ordering::SeqCst);

    // The agent stops: the next echo goes unanswered and the path is no longer proven.
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
    hub.request_echo().await;
    let record = hub.echo_record().await;
    let later = now_utc() + screening_core::echo::ECHO_ANSWER_WITHIN;
    let why = not_proven_because(record.proof(later));
    assert!(why.starts_with("await reply"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worklist_gateway_answers_an_echo_only_after_its_dicom_listener_answers_a_c_echo() {
    let hub = Harness::start().await;
    hub.route_to("mwl:").await;
    let folder = tempfile::tempdir().unwrap();
    let mut config = hub.agent_config(&folder.path().join("inbox.db"));
    let port = serve_worklist(&mut config, Default::default());
    let agent = start_agent(config).await;
    proven_round_trip(hub.echo().await.proof(now_utc()));

    // The same check against a port where nothing listens names the phase.
    let nothing = std::net::SocketAddr::from((
        [127, 0, 0, 1],
        screening_gateway::testing::peers::free_port(),
    ));
    let error =
        screening_gateway::worklist::check_listener(nothing, "SCREENING_ECHO", "SCREENING_MWL")
            .await
            .unwrap_err();
    assert!(
        error.starts_with("worklist: the DICOM listener at"),
        "{error}"
    );
    assert!(error.contains("associate"), "{error}");
    screening_gateway::worklist::check_listener(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        "SCREENING_ECHO",
        "SCREENING_MWL",
    )
    .await
    .expect("the agent's own worklist answers");
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_through_the_relay_proves_the_link_and_a_zombie_link_is_reported() {
    let hub = Harness::start().await;
    let pushed = hub.relay_agent_through_proxy().await;
    proven_round_trip(hub.echo().await.proof(now_utc()));
    assert_eq!(pushed.endpoint.count(), 0);

    // The listener's link stays open but carries nothing: the relay still counts a listener,
    // and only the echo tells.
    pushed.proxy.swallow_existing();
    let why = not_proven_because(hub.echo().await.proof(now_utc()));
    assert_eq!(
        pushed.relay.listener_count("leeds"),
        1,
        "the control channel looks open"
    );
    assert!(!why.is_empty());
    tokio::time::timeout(Duration::from_secs(1), async {
        pushed.agent.stop.send(true).unwrap();
        let _ = pushed.agent.task.await;
    })
    .await
    .ok();
}
