//! Support for tests, examples and benches: serving a router on loopback, and an order endpoint
//! that records what it receives (a stand-in for a RIS or modality order interface).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use screening_core::prelude::*;
use screening_store::testing::TestStore;
use screening_store::{now_utc, DemoData, ScreeningStore};
use tokio::sync::watch;

use crate::agent::{Agent, AgentConfig, AllowList, FetchMode};
use crate::auth::{generate_credential, hash_credential};
use crate::backoff::Backoff;
use crate::hub::{Hub, HubConfig};
use crate::relay::client::RelayEndpoint;
use crate::relay::dispatcher::{spawn_dispatchers, DispatcherConfig};
use crate::relay::local::{LocalRelay, LocalRelayConfig};
use crate::relay::sas::{Right, SasRule};
use screening_core::signing::{HubSigningKey, TrustedHubKeys};

pub mod peers;

/// Serves a router on a random loopback port, as the hub binary serves (`hub::serve`); returns its
/// base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(crate::hub::serve(listener, router, std::future::pending()));
    format!("http://{address}")
}

/// What the order endpoint received.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The Content-Type header.
    pub content_type: String,
    /// The X-Message-Id header.
    pub message_id: String,
    /// The Authorization header ("" when there was none).
    pub authorization: String,
    /// The body, parsed as JSON (null if it was not JSON).
    pub body: serde_json::Value,
}

/// An order endpoint that records every request and answers with the scripted statuses, then 200.
#[derive(Clone, Default)]
pub struct OrderEndpoint {
    /// Every request, in arrival order.
    pub received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<u16>>>,
}

impl OrderEndpoint {
    /// Starts one answering `statuses` in turn, then 200; a status given as `1000 + s` is answered
    /// for ever. Returns the endpoint and its URL.
    pub async fn start(statuses: Vec<u16>) -> (OrderEndpoint, String) {
        let endpoint = OrderEndpoint::new(statuses);
        let url = serve(endpoint.router()).await;
        (endpoint, format!("{url}/fhir/ServiceRequest"))
    }

    /// One not yet served: serve [`OrderEndpoint::router`] where the test needs it (over TLS, say).
    pub fn new(statuses: Vec<u16>) -> OrderEndpoint {
        OrderEndpoint {
            received: Arc::default(),
            script: Arc::new(Mutex::new(statuses)),
        }
    }

    /// Its routes: `POST /fhir/ServiceRequest`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/fhir/ServiceRequest", post(record))
            .with_state(self.clone())
    }

    /// How many requests arrived.
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
        at: Utc::now(),
        content_type: header("content-type"),
        message_id: header("x-message-id"),
        authorization: header("authorization"),
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

/// A hub on loopback over a fresh SQLite store with the demo data seeded, the demo gateway's
/// credential issued, and a count of the requests it received.
pub struct LocalHub {
    /// The temporary database (removed when the hub is dropped).
    pub test: TestStore,
    /// The store behind the hub.
    pub store: Arc<dyn ScreeningStore>,
    /// The demo data.
    pub demo: DemoData,
    /// The hub's base URL.
    pub hub_url: String,
    /// The hub serving it.
    pub hub: Hub,
    /// The demo gateway's credential.
    pub credential: String,
    /// Requests the hub has received.
    pub requests: Arc<AtomicU64>,
    /// While true, confirmations fail with 503 (a hub the agent cannot confirm to).
    pub refuse_confirmations: Arc<AtomicBool>,
    /// Batches of confirmations (`POST .../confirmations`) let through to the hub.
    pub confirmation_batches: Arc<AtomicU64>,
    /// Fetches (`GET .../messages`, v1) the hub has received.
    pub fetches: Arc<AtomicU64>,
    /// The http(s) and file destinations routed so far, which its agents are allowed to use.
    routed: Arc<Mutex<Vec<String>>>,
    /// The hub's secrets directory, where relay send keys are kept.
    secrets: Arc<tempfile::TempDir>,
    /// The key the hub signs orders with; [`LocalHub::agent_config`] trusts it and requires it.
    pub signing_key: HubSigningKey,
    /// While true, every message the polling API hands out has its payload altered on the way
    /// out, after signing: a man in the middle rewriting the NHS number.
    pub tamper_payloads: Arc<AtomicBool>,
}

impl LocalHub {
    /// A hub with 1 s leases swept every 200 ms, so redelivery happens within a test.
    pub async fn start() -> LocalHub {
        Self::with_config(HubConfig {
            lease: Duration::from_secs(1),
            sweep_interval: Duration::from_millis(200),
            ..HubConfig::default()
        })
        .await
    }

    /// A hub with the given configuration, signing with a new key unless it names one.
    pub async fn with_config(mut config: HubConfig) -> LocalHub {
        let signing_key = config
            .signing_key
            .get_or_insert_with(crate::signing::generate_signing_key)
            .clone();
        let test = TestStore::sqlite().await;
        let store = test.store.clone();
        let now = now_utc();
        let demo = store
            .seed_demo(screening_core::london::today(now), now)
            .await
            .expect("seed");
        let credential = generate_credential();
        store
            .set_gateway_credential_hash(demo.gateway.id, &hash_credential(&credential))
            .await
            .expect("credential stored");
        let hub = Hub::new(store.clone(), config);
        hub.spawn_lease_sweeper();
        let gate = Gate::default();
        let tamper_payloads = Arc::new(AtomicBool::new(false));
        let router = hub
            .router()
            .layer(middleware::from_fn_with_state(
                tamper_payloads.clone(),
                tamper_with_payloads,
            ))
            .layer(middleware::from_fn_with_state(gate.clone(), count_and_gate));
        let hub_url = serve(router).await;
        LocalHub {
            test,
            store,
            demo,
            hub_url,
            hub,
            credential,
            requests: gate.requests,
            refuse_confirmations: gate.refuse_confirmations,
            confirmation_batches: gate.confirmation_batches,
            fetches: gate.fetches,
            routed: Arc::default(),
            secrets: Arc::new(tempfile::tempdir().expect("a secrets directory")),
            signing_key,
            tamper_payloads,
        }
    }

    /// Points the demo gateway's FHIR route at `destination`.
    pub async fn route_to(&self, destination: &str) {
        self.save_demo_gateway(self.demo.gateway.transport.clone(), destination)
            .await;
    }

    /// Saves the demo gateway with `transport` and its FHIR route to `destination`.
    async fn save_demo_gateway(&self, transport: Transport, destination: &str) {
        if !matches!(destination.split(':').next(), Some("log" | "mwl")) {
            self.routed.lock().unwrap().push(destination.to_string());
        }
        let gateway = Gateway {
            transport,
            routes: vec![Route {
                message_type: MessageType::fhir(),
                destination: Destination::parse(destination).expect("a valid destination"),
            }],
            ..self.demo.gateway.clone()
        };
        self.store
            .save_gateway(&gateway, now_utc())
            .await
            .expect("gateway saved");
    }

    /// Presses "Send to modality" for the `n`th sendable demo appointment.
    pub async fn send(&self, n: usize) -> Message {
        self.act(n, AppointmentAction::SendToModality).await
    }

    /// Presses "Resend" for the `n`th sendable demo appointment (after a send).
    pub async fn resend(&self, n: usize) -> Message {
        self.act(n, AppointmentAction::Resend).await
    }

    async fn act(&self, n: usize, action: AppointmentAction) -> Message {
        let appointment = self
            .demo
            .appointments
            .iter()
            .filter(|a| a.state.after(AppointmentAction::SendToModality).is_some())
            .nth(n)
            .expect("enough sendable demo appointments")
            .id;
        let request = ActionRequest::new(
            action,
            now_utc(),
            MessageId::generate(),
            Actor("demo".into()),
        );
        act_on_appointment(self.store.as_ref(), appointment, &request)
            .await
            .expect("the action is allowed")
            .message
            .expect("sending writes a message")
    }

    /// Asks for an echo to the demo gateway now.
    pub async fn request_echo(&self) {
        self.store
            .request_echo(
                self.demo.gateway.id,
                MessageId::generate(),
                now_utc(),
                "test",
            )
            .await
            .expect("the echo is asked for");
    }

    /// The demo gateway's echo record now.
    pub async fn echo_record(&self) -> screening_core::echo::EchoRecord {
        self.store
            .echo_records()
            .await
            .expect("echo records")
            .into_iter()
            .find(|(id, _)| *id == self.demo.gateway.id)
            .expect("the demo gateway's record")
            .1
    }

    /// Sends the demo gateway an echo and waits (up to 20 s) for its answer; the record after it.
    pub async fn echo(&self) -> screening_core::echo::EchoRecord {
        self.request_echo().await;
        for _ in 0..2_000 {
            let record = self.echo_record().await;
            if record.requested_at.is_none() {
                return record;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the echo was never answered");
    }

    /// Makes the demo gateway a relay gateway pushed to through a [`FlakyProxy`] in front of a
    /// local relay (so the link can be cut, or left open carrying nothing), its FHIR route to a
    /// new order endpoint, and starts its agent (polling once an hour, so what arrives came by
    /// push); returns once the agent listens.
    pub async fn relay_agent_through_proxy(&self) -> RelayThroughProxy {
        let (relay, relay_url) = start_local_relay().await;
        let target = relay_url
            .trim_start_matches("ws://")
            .parse()
            .expect("a loopback address");
        let proxy = FlakyProxy::start(target).await;
        let via_proxy = format!("ws://{}", proxy.address);
        let (endpoint, url) = OrderEndpoint::start(vec![]).await;
        self.push_through_relay(&via_proxy, RELAY_SEND_KEY, &url)
            .await;
        let folder = tempfile::tempdir().expect("a folder for the inbox");
        let agent =
            start_agent(self.relay_agent_config(&folder.path().join("inbox.db"), &via_proxy)).await;
        until_listening(&relay).await;
        RelayThroughProxy {
            relay,
            proxy,
            endpoint,
            agent,
            _folder: folder,
        }
    }

    /// Waits (up to 20 s) until the message reaches `status`.
    pub async fn until_status(&self, id: MessageId, status: MessageStatus) -> Message {
        for _ in 0..20_000 {
            let message = self.store.message(id).await.expect("the message exists");
            if message.status() == status {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("message {id} never became {status}");
    }

    /// Agent settings for this hub: long-poll, fast retries, 3 attempts, allowed to forward to
    /// the destinations routed so far (as a hospital would allow its own RIS and spool folder).
    pub fn agent_config(&self, inbox: &std::path::Path) -> AgentConfig {
        let mut config = agent_config(&self.hub_url, self.demo.gateway.id, &self.credential, inbox);
        let routed = self.routed.lock().unwrap().clone();
        let (folders, urls): (Vec<_>, Vec<_>) =
            routed.into_iter().partition(|d| d.starts_with("file:"));
        let spool = folders.last().map(|folder| {
            crate::agent::allow::folder_of(&Destination::parse(folder).expect("routed already"))
        });
        config.allow = AllowList::new(&urls, spool).expect("routed destinations are URLs");
        config.signatures = TrustedHubKeys::new([self.signing_key.public_key()], true);
        config
    }

    /// `message` signed by this hub's key, as a genuine hub would send it.
    pub fn sign(&self, message: GatewayMessage) -> GatewayMessage {
        self.signing_key.signed(message, now_utc())
    }
}

/// Gives the agent a worklist with `settings` on a free loopback port; returns the port.
pub fn serve_worklist(
    config: &mut AgentConfig,
    settings: crate::worklist::WorklistSettings,
) -> u16 {
    let port = peers::free_port();
    config.worklist = Some(crate::agent::WorklistConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        settings,
    });
    port
}

/// Agent settings for the gateway `gateway_id` of the hub at `hub_url`: long-poll, fast retries,
/// 3 attempts, the inbox at `inbox`.
pub fn agent_config(
    hub_url: &str,
    gateway_id: GatewayId,
    credential: &str,
    inbox: &std::path::Path,
) -> AgentConfig {
    AgentConfig {
        hub_url: hub_url.to_string(),
        gateway_id,
        credential: credential.to_string(),
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
        heartbeat_interval: Duration::from_secs(300),
        relay: None,
        worklist: None,
        metrics_listen: None,
        allow: AllowList::default(),
        signatures: Default::default(),
        destination_auth: Vec::new(),
    }
}

/// What the hub's test layer counts and switches (shared with [`LocalHub`]'s fields).
#[derive(Clone, Default)]
struct Gate {
    refuse_confirmations: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    confirmation_batches: Arc<AtomicU64>,
    fetches: Arc<AtomicU64>,
}

async fn count_and_gate(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    gate.requests.fetch_add(1, Ordering::SeqCst);
    let path = request.uri().path();
    // The v1 routes; the proof of concept's `/gateway-messages/…/confirmations` is one at a time.
    let v1 = path.starts_with("/api/v1/");
    let batch = v1 && path.ends_with("/confirmations");
    if gate.refuse_confirmations.load(Ordering::SeqCst)
        && (batch || path.ends_with("/confirmation"))
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "confirmations are switched off",
        )
            .into_response();
    }
    if batch {
        gate.confirmation_batches.fetch_add(1, Ordering::SeqCst);
    }
    let fetch = v1 && path.ends_with("/messages") && request.method() == axum::http::Method::GET;
    let response = next.run(request).await;
    if fetch {
        // Counted once answered: the messages it took are in the agent's hands.
        gate.fetches.fetch_add(1, Ordering::SeqCst);
    }
    response
}

/// Rewrites the NHS number in every payload of a message list the polling API answers with
/// while `tamper` is set, leaving the signatures as the hub made them.
async fn tamper_with_payloads(
    State(tamper): State<Arc<AtomicBool>>,
    request: Request,
    next: Next,
) -> Response {
    let listing = request.method() == axum::http::Method::GET;
    let response = next.run(request).await;
    if !(listing && tamper.load(Ordering::SeqCst) && response.status().is_success()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the hub's answer is readable");
    let mut value: serde_json::Value =
        serde_json::from_slice(&bytes).expect("the hub answers JSON");
    // The v1 answer wraps the list; the proof of concept's is the list.
    let messages = match value.get_mut("messages") {
        Some(list) => list.as_array_mut(),
        None => value.as_array_mut(),
    };
    for message in messages.into_iter().flatten() {
        message["payload"]["subject"]["identifier"]["value"] = "9990001243".into();
    }
    let altered = serde_json::to_vec(&value).expect("JSON");
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(altered))
}

/// A running agent: stop it cleanly, or abort it like a killed process.
pub struct RunningAgent {
    /// Send `true` to stop it cleanly.
    pub stop: watch::Sender<bool>,
    /// Its task (abort it to simulate a killed process).
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts an agent in this process.
pub async fn start_agent(config: AgentConfig) -> RunningAgent {
    let agent = Agent::new(config).await.expect("the agent starts");
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move { agent.run(stopped).await.expect("the agent runs") });
    RunningAgent { stop, task }
}

/// The test relay's configuration: hybrid connection `leeds`, rules `listen` (Listen) and `send`
/// (Send).
pub fn local_relay_config() -> LocalRelayConfig {
    LocalRelayConfig {
        hybrid_connections: vec!["leeds".into()],
        rules: vec![
            SasRule {
                key_name: "listen".into(),
                key: RELAY_LISTEN_KEY.into(),
                rights: vec![Right::Listen],
            },
            SasRule {
                key_name: "send".into(),
                key: RELAY_SEND_KEY.into(),
                rights: vec![Right::Send],
            },
        ],
    }
}

/// The `leeds` hybrid connection at `base_url`, with a rule's name and key and hour-long tokens.
pub fn relay_endpoint(base_url: &str, key_name: &str, key: &str) -> RelayEndpoint {
    RelayEndpoint {
        base_url: base_url.into(),
        hybrid_connection: "leeds".into(),
        key_name: key_name.into(),
        key: key.into(),
        token_lifetime: Duration::from_secs(3600),
    }
}

/// A small FHIR message with a fresh id, for relay round trips.
pub fn sample_message() -> GatewayMessage {
    GatewayMessage {
        message_id: MessageId::generate(),
        message_type: MessageType::fhir(),
        payload: serde_json::json!({ "resourceType": "ServiceRequest" }),
        destination: Destination::parse("log:").expect("a valid destination"),
        signature: None,
    }
}

/// The listen key of [`start_local_relay`]'s `listen` rule.
pub const RELAY_LISTEN_KEY: &str = "bGlzdGVuLWtleS1mb3ItdGVzdHM=";
/// The send key of [`start_local_relay`]'s `send` rule.
pub const RELAY_SEND_KEY: &str = "c2VuZC1rZXktZm9yLXRlc3Rz";

/// A local relay on loopback with one hybrid connection, `leeds`, and two rules: `listen` (Listen)
/// and `send` (Send). Returns the relay and its `ws://` URL.
pub async fn start_local_relay() -> (LocalRelay, String) {
    start_local_relay_with(local_relay_config()).await
}

/// A local relay on loopback with `config`; returns the relay and its `ws://` URL.
pub async fn start_local_relay_with(config: LocalRelayConfig) -> (LocalRelay, String) {
    let relay = LocalRelay::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!("ws://{}", listener.local_addr().expect("an address"));
    let app = relay
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the relay serves") });
    (relay, url)
}

impl LocalHub {
    /// Makes the demo gateway a relay gateway on `relay_url`'s `leeds` hybrid connection, with its
    /// send key in a file in the hub's secrets directory and its FHIR route to `destination`, and
    /// starts the dispatcher.
    pub async fn push_through_relay(&self, relay_url: &str, send_key: &str, destination: &str) {
        self.make_relay_gateway(relay_url, send_key, destination)
            .await;
        self.start_dispatcher().await;
    }

    /// Makes the demo gateway a relay gateway (see [`LocalHub::push_through_relay`]).
    pub async fn make_relay_gateway(&self, relay_url: &str, send_key: &str, destination: &str) {
        let key_file = self.secrets.path().join("relay-send.key");
        std::fs::write(&key_file, send_key).expect("the key file is written");
        let transport = Transport::Relay(RelayTransport {
            namespace: relay_url.into(),
            hybrid_connection: "leeds".into(),
            key_name: "send".into(),
            key_ref: format!("file:{}", key_file.display())
                .parse()
                .expect("a file reference"),
        });
        self.save_demo_gateway(transport, destination).await;
    }

    /// Starts the relay dispatcher with [`LocalHub::dispatcher_config`]; it runs until the
    /// runtime stops.
    pub async fn start_dispatcher(&self) {
        self.start_dispatcher_with(self.dispatcher_config()).await;
    }

    /// Starts the relay dispatcher with `config`; it runs until the runtime stops.
    pub async fn start_dispatcher_with(&self, config: DispatcherConfig) {
        spawn_dispatchers(self.store.clone(), config)
            .await
            .expect("the dispatcher starts");
    }

    /// Dispatcher settings for tests: fast retries, a 200 ms rescan, this hub's secrets folder
    /// and signing key.
    pub fn dispatcher_config(&self) -> DispatcherConfig {
        DispatcherConfig {
            safety_sweep: Duration::from_millis(500),
            retry: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_millis(300),
            },
            rescan: Duration::from_millis(200),
            // A rendezvous nobody answers fails within a test (30 s by default).
            reply_timeout: Duration::from_secs(5),
            secrets_dir: Some(self.secrets.path().to_path_buf()),
            signing_key: Some(self.signing_key.clone()),
            ..DispatcherConfig::default()
        }
    }

    /// Agent settings that listen on the local relay and poll only once an hour, so anything
    /// delivered quickly came by push.
    pub fn relay_agent_config(&self, inbox: &std::path::Path, relay_url: &str) -> AgentConfig {
        AgentConfig {
            fetch: FetchMode::Poll {
                interval: Duration::from_secs(3600),
            },
            relay: Some(relay_endpoint(relay_url, "listen", RELAY_LISTEN_KEY)),
            worklist: None,
            ..self.agent_config(inbox)
        }
    }
}

/// A relay agent behind a proxy: see [`LocalHub::relay_agent_through_proxy`].
pub struct RelayThroughProxy {
    /// The local relay.
    pub relay: LocalRelay,
    /// The proxy both the dispatcher and the agent reach the relay through.
    pub proxy: FlakyProxy,
    /// Where the demo gateway's FHIR route points.
    pub endpoint: OrderEndpoint,
    /// The agent.
    pub agent: RunningAgent,
    _folder: tempfile::TempDir,
}

/// Waits (up to 3 s) until `relay` has a listener on `leeds`.
pub async fn until_listening(relay: &LocalRelay) {
    for _ in 0..300 {
        if relay.listener_count("leeds") > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no listener connected to the relay");
}

/// A TCP proxy on loopback for fault tests: it forwards, can silently swallow everything on the
/// connections it has (a "zombie" link: open, but nothing arrives), and can drop every connection
/// and refuse new ones for a while (a relay restart).
#[derive(Clone)]
pub struct FlakyProxy {
    /// The address to connect to instead of the target.
    pub address: std::net::SocketAddr,
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<ProxiedConnection>>>,
}

/// A proxied connection: its "swallow everything" switch and its task.
type ProxiedConnection = (Arc<AtomicBool>, tokio::task::AbortHandle);

impl FlakyProxy {
    /// Starts a proxy in front of `target`.
    pub async fn start(target: std::net::SocketAddr) -> FlakyProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let proxy = FlakyProxy {
            address: listener.local_addr().expect("an address"),
            down: Arc::default(),
            connections: Arc::default(),
        };
        let accepting = proxy.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if accepting.down.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let swallow = Arc::new(AtomicBool::new(false));
                let task = tokio::spawn(pump(inbound, outbound, swallow.clone()));
                accepting
                    .connections
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((swallow, task.abort_handle()));
            }
        });
        proxy
    }

    /// From now on, the existing connections stay open but carry nothing; new ones work.
    pub fn swallow_existing(&self) {
        for (swallow, _) in self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            swallow.store(true, Ordering::SeqCst);
        }
    }

    /// Drops every connection and refuses new ones until [`FlakyProxy::restore`].
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for (_, task) in self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

async fn pump(
    inbound: tokio::net::TcpStream,
    outbound: tokio::net::TcpStream,
    swallow: Arc<AtomicBool>,
) {
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    tokio::join!(
        forward_bytes(in_read, out_write, swallow.clone()),
        forward_bytes(out_read, in_write, swallow),
    );
}

async fn forward_bytes(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    swallow: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if !swallow.load(Ordering::SeqCst) && to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The timeline of a confirmed message (created → delivered → forwarded → confirmed) with the
/// latency of each step, as the examples print it.
pub fn timeline(confirmed: &Message, forwarded_at: DateTime<Utc>) -> String {
    let created = confirmed.created_at;
    let delivered = confirmed.delivered_at.unwrap_or(created);
    let confirmed_at = confirmed.confirmed_at.unwrap_or(forwarded_at);
    let milliseconds =
        |d: chrono::TimeDelta| d.num_microseconds().unwrap_or_default() as f64 / 1000.0;
    [
        ("created", created, created),
        ("delivered", delivered, created),
        ("forwarded", forwarded_at, delivered),
        ("confirmed", confirmed_at, forwarded_at),
    ]
    .iter()
    .map(|(name, at, previous)| {
        format!(
            "  {name:<10} {}  +{:>6.1} ms  (total {:>6.1} ms)\n",
            at.format("%H:%M:%S%.6f"),
            milliseconds(*at - *previous),
            milliseconds(*at - created),
        )
    })
    .collect()
}

/// An order for `first last` at `starts_at` (RFC 3339), as the hub renders it, for `station`.
pub fn worklist_order(
    first: &str,
    last: &str,
    starts_at: &str,
    station: &str,
) -> screening_core::worklist::WorklistOrder {
    let participant = screening_core::people::Participant {
        id: screening_core::ids::ParticipantId::from_uuid(uuid::Uuid::new_v4()),
        first_name: first.into(),
        last_name: last.into(),
        date_of_birth: chrono::NaiveDate::from_ymd_opt(1961, 7, 30).unwrap(),
        nhs_number: screening_core::nhs_number::NhsNumber::parse("9434765919").unwrap(),
        sex: screening_core::people::Sex::Female,
    };
    let slot = screening_core::people::ClinicSlot {
        id: screening_core::ids::ClinicSlotId::from_uuid(uuid::Uuid::new_v4()),
        clinic_id: screening_core::ids::ClinicId::from_uuid(uuid::Uuid::new_v4()),
        starts_at: chrono::DateTime::parse_from_rfc3339(starts_at)
            .unwrap()
            .with_timezone(&chrono::Utc),
        duration_minutes: 10,
    };
    let provider = screening_core::people::Provider {
        id: screening_core::ids::ProviderId::from_uuid(uuid::Uuid::new_v4()),
        name: "West Yorkshire".into(),
        ods_code: "RR8".into(),
    };
    let setting = screening_core::people::Setting {
        id: screening_core::ids::SettingId::from_uuid(uuid::Uuid::new_v4()),
        provider_id: provider.id,
        name: "Leeds".into(),
    };
    let message_id = screening_core::ids::MessageId::generate();
    let json =
        screening_core::fhir::render_service_request(&screening_core::fhir::ServiceRequestInput {
            message_id,
            appointment_id: screening_core::ids::AppointmentId::from_uuid(uuid::Uuid::new_v4()),
            participant: &participant,
            slot: &slot,
            provider: &provider,
            setting: &setting,
            authored_on: slot.starts_at,
            revoked: false,
        })
        .unwrap();
    screening_core::worklist::WorklistOrder::from_service_request(message_id, &json, station)
        .unwrap()
}

/// A worklist served on a loopback port from a temporary SQLite file.
pub struct Worklist {
    /// Its port.
    pub port: u16,
    /// Its store.
    pub store: crate::worklist::WorklistStore,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// Serves a worklist (AE title `SCREENING_MWL`) that lets in `allowed_calling` (any when empty).
pub async fn start_worklist(allowed_calling: Vec<String>) -> Worklist {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::worklist::WorklistStore::open(&dir.path().join("agent.db"))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let settings = crate::worklist::WorklistSettings {
        allowed_calling_ae_titles: allowed_calling,
        ..crate::worklist::WorklistSettings::default()
    };
    tokio::spawn(crate::worklist::serve(
        listener,
        settings,
        store.clone(),
        stopped,
    ));
    Worklist {
        port,
        store,
        _stop: stop,
        _dir: dir,
    }
}
