//! A hub on loopback over a fresh SQLite store, a recording order endpoint, and agents to run
//! against them.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use screening_core::prelude::*;
use screening_gateway::agent::{Agent, AgentConfig, FetchMode};
use screening_gateway::auth::{generate_credential, hash_credential};
use screening_gateway::backoff::Backoff;
use screening_gateway::hub::{Hub, HubConfig};
use screening_store::testing::TestStore;
use screening_store::{now_utc, DemoData, ScreeningStore};
use tokio::sync::watch;

/// Serves a router on a random loopback port; returns its base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

/// The hub under test.
pub struct Harness {
    pub test: TestStore,
    pub store: Arc<dyn ScreeningStore>,
    pub demo: DemoData,
    pub hub_url: String,
    pub credential: String,
    /// While true, confirmations to the hub fail with 503 (a hub that cannot be reached to confirm).
    pub refuse_confirmations: Arc<AtomicBool>,
}

impl Harness {
    /// A hub with short leases so redelivery happens within a test.
    pub async fn start() -> Harness {
        Self::with_config(HubConfig {
            lease: Duration::from_secs(1),
            sweep_interval: Duration::from_millis(200),
            ..HubConfig::default()
        })
        .await
    }

    pub async fn with_config(config: HubConfig) -> Harness {
        let test = TestStore::sqlite().await;
        let store = test.store.clone();
        let now = now_utc();
        let demo = store.seed_demo(now.date_naive(), now).await.unwrap();
        let credential = generate_credential();
        store
            .set_gateway_credential_hash(demo.gateway.id, &hash_credential(&credential))
            .await
            .unwrap();
        let hub = Hub::new(store.clone(), config);
        hub.spawn_lease_sweeper();
        let refuse_confirmations = Arc::new(AtomicBool::new(false));
        let router = hub.router().layer(middleware::from_fn_with_state(
            refuse_confirmations.clone(),
            confirmation_gate,
        ));
        let hub_url = serve(router).await;
        Harness {
            test,
            store,
            demo,
            hub_url,
            credential,
            refuse_confirmations,
        }
    }

    /// Points the demo gateway's FHIR route at `destination`.
    pub async fn route_to(&self, destination: &str) {
        let mut gateway = self.demo.gateway.clone();
        gateway.routes = vec![Route {
            message_type: MessageType::fhir(),
            destination: Destination::parse(destination).unwrap(),
        }];
        self.store.save_gateway(&gateway, now_utc()).await.unwrap();
    }

    /// Presses "Send to modality" for the `n`th sendable demo appointment.
    pub async fn send(&self, n: usize) -> Message {
        let appointment = self
            .demo
            .appointments
            .iter()
            .filter(|a| a.state.after(AppointmentAction::SendToModality).is_some())
            .nth(n)
            .unwrap()
            .id;
        let request = ActionRequest::new(
            AppointmentAction::SendToModality,
            now_utc(),
            MessageId::from_uuid(uuid::Uuid::new_v4()),
            Actor("test".into()),
        );
        act_on_appointment(self.store.as_ref(), appointment, &request)
            .await
            .unwrap()
            .message
            .unwrap()
    }

    /// Waits (up to 20 s) until the message reaches `status`.
    pub async fn until_status(&self, id: MessageId, status: MessageStatus) -> Message {
        for _ in 0..400 {
            let message = self.store.message(id).await.unwrap();
            if message.status() == status {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "message {id} never became {status}: {:?}",
            self.store.message(id).await.unwrap()
        );
    }

    /// Agent settings for this hub: long-poll, fast retries.
    pub fn agent_config(&self, inbox: &std::path::Path) -> AgentConfig {
        AgentConfig {
            hub_url: self.hub_url.clone(),
            gateway_id: self.demo.gateway.id,
            credential: self.credential.clone(),
            fetch: FetchMode::LongPoll {
                wait: Duration::from_secs(2),
            },
            max_attempts: 3,
            retry: Backoff {
                base: Duration::from_millis(50),
                max: Duration::from_millis(200),
            },
            hub_backoff: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_millis(500),
            },
            inbox_path: inbox.to_path_buf(),
            heartbeat_interval: Duration::from_secs(60),
        }
    }
}

async fn confirmation_gate(
    State(refuse): State<Arc<AtomicBool>>,
    request: Request,
    next: Next,
) -> Response {
    if refuse.load(Ordering::SeqCst) && request.uri().path().ends_with("/confirmation") {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "confirmations are switched off",
        )
            .into_response();
    }
    next.run(request).await
}

/// A running agent: stop it cleanly, or abort it like a killed process.
pub struct RunningAgent {
    pub stop: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
}

pub async fn start_agent(config: AgentConfig) -> RunningAgent {
    let agent = Agent::new(config).await.unwrap();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move { agent.run(stopped).await.unwrap() });
    RunningAgent { stop, task }
}

/// What the order endpoint received.
#[derive(Debug, Clone)]
pub struct Received {
    pub content_type: String,
    pub message_id: String,
    pub body: serde_json::Value,
}

/// An order endpoint that records every request and answers with the scripted statuses, then 200.
#[derive(Clone, Default)]
pub struct OrderEndpoint {
    pub received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<u16>>>,
}

impl OrderEndpoint {
    /// Starts one answering `statuses` in turn (then 200 for ever, or the last status if `repeat_last`).
    pub async fn start(statuses: Vec<u16>) -> (OrderEndpoint, String) {
        let endpoint = OrderEndpoint {
            received: Arc::default(),
            script: Arc::new(Mutex::new(statuses)),
        };
        let router = Router::new()
            .route("/fhir/ServiceRequest", post(record))
            .with_state(endpoint.clone());
        let url = serve(router).await;
        (endpoint, format!("{url}/fhir/ServiceRequest"))
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

async fn record(
    State(endpoint): State<OrderEndpoint>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    endpoint.received.lock().unwrap().push(Received {
        content_type: header("content-type"),
        message_id: header("x-message-id"),
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    });
    let status = {
        let mut script = endpoint.script.lock().unwrap();
        match script.len() {
            0 => 200,
            1 if script[0] >= 1000 => script[0] - 1000, // 1000 + status: repeat for ever
            _ => script.remove(0),
        }
    };
    (
        StatusCode::from_u16(status).unwrap(),
        "order endpoint says so",
    )
        .into_response()
}
