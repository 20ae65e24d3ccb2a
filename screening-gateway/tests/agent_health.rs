//! What the agent's heartbeat tells the hub about the parts that carry orders on from it: the
//! relay listener (connected or not, reported at once when it changes) and the worklist (when a
//! modality last queried it), and the alerts those open and resolve.

mod common;

use std::time::Duration;

use common::{start_agent, Harness, OrderEndpoint};
use screening_core::alert::{conditions, AlertRule, AlertThresholds, GatewayObservation};
use screening_gateway::testing::serve_worklist;
use screening_gateway::worklist::modality::{todays_query, Modality};
use screening_store::now_utc;

/// The demo gateway as the alert rules see it.
async fn observed(hub: &Harness) -> GatewayObservation {
    let today = screening_core::london::today(now_utc());
    hub.store
        .gateway_observations(today)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.gateway_id == hub.demo.gateway.id)
        .unwrap()
}

/// Waits (up to 20 s) until the demo gateway's observation satisfies `test`.
async fn until_observed(
    hub: &Harness,
    test: impl Fn(&GatewayObservation) -> bool,
) -> GatewayObservation {
    for _ in 0..400 {
        let observation = observed(hub).await;
        if test(&observation) {
            return observation;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never observed: {:?}", observed(hub).await);
}

fn rules_holding(observation: &GatewayObservation, thresholds: &AlertThresholds) -> Vec<AlertRule> {
    conditions(std::slice::from_ref(observation), thresholds, now_utc())
        .into_iter()
        .map(|c| c.rule)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_listener_that_drops_is_reported_at_once_and_opens_the_alert_until_it_is_back() {
    let hub = Harness::start().await;
    // Heartbeats every 5 minutes and polls once an hour: anything the hub hears sooner came
    // from the listener's change.
    let pushed = hub.relay_agent_through_proxy().await;
    let up = until_observed(&hub, |o| matches!(o.relay_listener, Some((true, _)))).await;
    assert!(up.pushes_by_relay);
    let immediate = AlertThresholds {
        listener_absent: chrono::TimeDelta::zero(),
        ..AlertThresholds::default()
    };
    assert!(!rules_holding(&up, &immediate).contains(&AlertRule::RelayListenerAbsent));

    // The relay goes away: the listener loses its control channel and the agent says so.
    pushed.proxy.cut();
    let down = until_observed(&hub, |o| matches!(o.relay_listener, Some((false, _)))).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(rules_holding(&down, &immediate).contains(&AlertRule::RelayListenerAbsent));

    pushed.proxy.restore();
    let back = until_observed(&hub, |o| matches!(o.relay_listener, Some((true, _)))).await;
    assert!(!rules_holding(&back, &immediate).contains(&AlertRule::RelayListenerAbsent));
    pushed.agent.stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), pushed.agent.task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worklist_query_is_reported_in_the_heartbeat_and_resolves_the_not_queried_alert() {
    let hub = Harness::start().await;
    hub.route_to("mwl:").await;
    let folder = tempfile::tempdir().unwrap();
    let mut config = hub.agent_config(&folder.path().join("inbox.db"));
    config.heartbeat_interval = Duration::from_millis(200);
    let port = serve_worklist(&mut config, Default::default());
    let agent = start_agent(config).await;

    let unqueried = until_observed(&hub, |o| o.serves_worklist).await;
    assert_eq!(unqueried.worklist_queried_at, None);
    assert!(
        unqueried.first_slot_today.is_some(),
        "the demo clinic is today"
    );
    // As if the first slot had passed.
    let after_first_slot = GatewayObservation {
        first_slot_today: Some(now_utc() - chrono::TimeDelta::minutes(1)),
        ..unqueried
    };
    let thresholds = AlertThresholds::default();
    assert!(rules_holding(&after_first_slot, &thresholds).contains(&AlertRule::WorklistNotQueried));

    let mut modality = Modality::connect(&format!("127.0.0.1:{port}"), "MAMMO1", "SCREENING_MWL")
        .await
        .unwrap();
    let today = screening_core::london::today(now_utc())
        .format("%Y%m%d")
        .to_string();
    modality.find(&todays_query(&today, "")).await.unwrap();
    modality.release().await.unwrap();
    let queried = until_observed(&hub, |o| o.worklist_queried_at.is_some()).await;
    let after_first_slot = GatewayObservation {
        first_slot_today: Some(now_utc() - chrono::TimeDelta::minutes(1)),
        ..queried
    };
    assert!(!rules_holding(&after_first_slot, &thresholds).contains(&AlertRule::WorklistNotQueried));
    agent.stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), agent.task).await;
}

/// GET `path` on the agent's metrics address: status and body.
async fn get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{address}{path}"))
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_serves_its_own_health_and_metrics_when_asked_to() {
    let hub = Harness::start().await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    hub.route_to(&url).await;
    let folder = tempfile::tempdir().unwrap();
    let mut config = hub.agent_config(&folder.path().join("inbox.db"));
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let agent = screening_gateway::agent::Agent::new(config).await.unwrap();
    let address = agent.metrics_address().expect("a metrics address");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent.run(stopped));

    assert_eq!(get(address, "/healthz").await, (200, "ok\n".into()));
    for _ in 0..200 {
        if get(address, "/readyz").await.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(get(address, "/readyz").await, (200, "ready\n".into()));
    // The test's hub shares this process, and so the agent's recorder: its metrics need their
    // descriptions too (in production the agent is a process of its own).
    screening_gateway::hub::metrics::describe();
    let sent = hub.send(0).await;
    hub.until_status(sent.id, screening_core::prelude::MessageStatus::Confirmed)
        .await;
    assert_eq!(endpoint.count(), 1);
    let value_in = |text: &str, name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map(|value| value.trim().parse::<f64>().unwrap())
    };
    // The hub has the confirmation a moment before the agent marks it reported in its inbox.
    let mut text = String::new();
    for _ in 0..200 {
        let (status, body) = get(address, "/metrics").await;
        assert_eq!(status, 200);
        text = body;
        if value_in(&text, "screening_agent_inbox_depth") == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let value = |name: &str| value_in(&text, name);
    assert!(
        value("screening_agent_forwards_total{outcome=\"ok\"}") >= Some(1.0),
        "{text}"
    );
    assert_eq!(value("screening_agent_inbox_depth"), Some(0.0), "{text}");
    assert_eq!(value("screening_agent_hub_reachable"), Some(1.0), "{text}");
    assert!(
        !text.contains(&sent.id.to_string()),
        "no message ids in labels"
    );
    screening_gateway::testing::peers::promtool_check(&text);
    assert_eq!(get(address, "/nope").await.0, 404);

    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_cannot_reach_its_hub_is_alive_but_not_ready() {
    let hub = Harness::start().await;
    let folder = tempfile::tempdir().unwrap();
    let mut config = hub.agent_config(&folder.path().join("inbox.db"));
    let nowhere = screening_gateway::testing::peers::free_port();
    config.hub_url = format!("http://127.0.0.1:{nowhere}");
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let agent = screening_gateway::agent::Agent::new(config).await.unwrap();
    let address = agent.metrics_address().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent.run(stopped));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(address, "/healthz").await.0, 200);
    let (status, why) = get(address, "/readyz").await;
    assert_eq!(status, 503);
    assert!(why.starts_with("not ready: connect:"), "{why}");
    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}
