//! The project's local relay: the Hybrid Connections WebSocket protocol on loopback, so development
//! and tests need no Azure namespace (the Azure Relay Hybrid Connections protocol).
//!
//! - `…/$hc/{path}?sb-hc-action=listen`: a listener's control channel (SAS with Listen).
//! - `…/$hc/{path}?sb-hc-action=connect`: a sender (SAS with Send). The relay picks one of the
//!   path's listeners at random, sends it an `accept` with a single-use rendezvous address, and
//!   completes the sender's handshake only once the listener has dialled that address.
//! - `…/$hc/{path}?sb-hc-action=accept&sb-hc-id=…`: the listener's rendezvous dial; with
//!   `sb-hc-statusCode` (and `sb-hc-statusDescription`) it rejects instead, answered with 410, and
//!   the sender's handshake fails with that status.
//!
//! Statuses: 401 missing or invalid token, 403 token not valid for the path or action, 404 unknown
//! hybrid connection or no listener connected, 403 for an unknown or expired rendezvous address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::ExtensionRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::sas::{parse_token, validate_token, Right, SasRule};
use crate::random::fraction as random_fraction;

/// How long a rendezvous address lives, and how long a sender waits for the listener.
pub const RENDEZVOUS_TIMEOUT: Duration = Duration::from_secs(30);

/// What the local relay serves.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalRelayConfig {
    /// The hybrid connections (paths) that exist.
    pub hybrid_connections: Vec<String>,
    /// The namespace's SAS rules.
    pub rules: Vec<SasRule>,
}

/// A rule given on the command line is not `NAME:RIGHTS:KEY`.
#[derive(Debug, thiserror::Error)]
#[error("a rule is NAME:RIGHTS:KEY with RIGHTS from listen, send, manage joined by '+', e.g. gw:listen:S3cret; got {0:?}")]
pub struct RuleError(pub String);

/// Parses `NAME:RIGHTS:KEY`, e.g. `gateway:listen:S3cret` or `hub:send+listen:K3y`.
pub fn parse_rule(text: &str) -> Result<SasRule, RuleError> {
    let error = || RuleError(text.split(':').take(2).collect::<Vec<_>>().join(":") + ":…");
    let mut parts = text.splitn(3, ':');
    let (Some(name), Some(rights), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(error());
    };
    let rights = rights
        .split('+')
        .map(|right| match right {
            "listen" => Ok(Right::Listen),
            "send" => Ok(Right::Send),
            "manage" => Ok(Right::Manage),
            _ => Err(error()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if name.is_empty() || key.is_empty() || name.len() > 256 || key.len() > 256 {
        return Err(error());
    }
    Ok(SasRule {
        key_name: name.into(),
        key: key.into(),
        rights,
    })
}

struct Listener {
    id: u64,
    control: mpsc::UnboundedSender<Message>,
}

struct Rendezvous {
    created: Instant,
    /// Told once the listener accepts (Ok) or rejects (status, description).
    decision: oneshot::Sender<Result<oneshot::Receiver<WebSocket>, (u16, String)>>,
}

#[derive(Default)]
struct Registry {
    listeners: HashMap<String, Vec<Listener>>,
    rendezvous: HashMap<String, Rendezvous>,
    next_id: u64,
}

/// The relay's shared state.
#[derive(Clone)]
pub struct LocalRelay {
    config: Arc<LocalRelayConfig>,
    registry: Arc<Mutex<Registry>>,
    /// Control channels accepted since start (a reconnecting listener counts again).
    control_channels: Arc<std::sync::atomic::AtomicU64>,
    /// Rendezvous a listener accepted since start: one per sender connection, however many
    /// messages it then carries.
    rendezvous_accepted: Arc<std::sync::atomic::AtomicU64>,
    /// `ws` or `wss`: the scheme of the rendezvous addresses it hands out.
    scheme: &'static str,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn refuse(status: StatusCode, description: &str) -> Response {
    // Real descriptions end with a tracking id; clients show the text.
    (
        status,
        format!("{description}. TrackingId:{}", uuid::Uuid::new_v4()),
    )
        .into_response()
}

impl LocalRelay {
    /// A relay with the given hybrid connections and rules.
    pub fn new(config: LocalRelayConfig) -> Self {
        Self {
            config: Arc::new(config),
            registry: Arc::default(),
            control_channels: Arc::default(),
            rendezvous_accepted: Arc::default(),
            scheme: "ws",
        }
    }

    /// Hands out `wss://` rendezvous addresses, for serving behind a [`TlsListener`].
    pub fn serving_wss(mut self) -> Self {
        self.scheme = "wss";
        self
    }

    /// The routes. Serve with `into_make_service_with_connect_info::<SocketAddr>()` so `accept`
    /// messages can carry the sender's `remoteEndpoint`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/$hc/{*path}", get(handle))
            .with_state(self.clone())
    }

    /// How many listeners are connected on `path`.
    pub fn listener_count(&self, path: &str) -> usize {
        self.lock().listeners.get(path).map_or(0, Vec::len)
    }

    /// Control channels accepted since the relay started.
    pub fn control_channels_accepted(&self) -> u64 {
        self.control_channels
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sender connections a listener accepted since the relay started.
    pub fn rendezvous_accepted(&self) -> u64 {
        self.rendezvous_accepted
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks the token (header first, as official clients send it, then `sb-hc-token`); returns
    /// when it expires (unix seconds).
    fn authorise(
        &self,
        headers: &HeaderMap,
        query: &HashMap<String, String>,
        path: &str,
        needed: Right,
    ) -> Result<u64, (StatusCode, String)> {
        let token = headers
            .get("ServiceBusAuthorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| query.get("sb-hc-token").cloned());
        let Some(token) = token else {
            return Err((
                StatusCode::UNAUTHORIZED,
                "MissingToken: the request has no token".into(),
            ));
        };
        let host = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        validate_token(&token, &self.config.rules, host, path, needed, now_unix())
            .and_then(|()| parse_token(&token).map(|t| t.expires_at))
            .map_err(|error| {
                let status =
                    StatusCode::from_u16(error.status()).unwrap_or(StatusCode::UNAUTHORIZED);
                (status, error.to_string())
            })
    }
}

async fn handle(
    State(relay): State<LocalRelay>,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    connect_info: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = upgrade.ok();
    let action = query
        .get("sb-hc-action")
        .map(String::as_str)
        .unwrap_or_default();
    if action == "accept" {
        return accept(relay, query, upgrade).await;
    }
    // A sender's path may carry a suffix below the hybrid connection (`hyco/suffix`).
    let Some(hybrid_connection) = relay
        .config
        .hybrid_connections
        .iter()
        .find(|name| path == **name || path.starts_with(&format!("{name}/")))
        .cloned()
    else {
        return refuse(StatusCode::NOT_FOUND, "Endpoint does not exist");
    };
    let Some(upgrade) = upgrade else {
        return refuse(StatusCode::BAD_REQUEST, "a WebSocket upgrade is required");
    };
    match action {
        "listen" => {
            let expires_at =
                match relay.authorise(&headers, &query, &hybrid_connection, Right::Listen) {
                    Ok(expires_at) => expires_at,
                    Err((status, text)) => return refuse(status, &text),
                };
            let host = headers
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost")
                .to_string();
            upgrade.on_upgrade(move |socket| {
                control_channel(relay, hybrid_connection, host, expires_at, socket)
            })
        }
        "connect" => {
            if let Err((status, text)) =
                relay.authorise(&headers, &query, &hybrid_connection, Right::Send)
            {
                return refuse(status, &text);
            }
            let remote = connect_info.ok().map(|ConnectInfo(address)| address);
            connect(
                relay,
                hybrid_connection,
                path,
                query,
                headers,
                remote,
                upgrade,
            )
            .await
        }
        _ => refuse(
            StatusCode::BAD_REQUEST,
            "sb-hc-action must be listen, connect or accept",
        ),
    }
}

/// A listener's control channel: relays `accept` messages to it, reads `renewToken` from it.
/// When a token expiring at `unix_seconds` runs out, as a tokio instant.
fn expiry_instant(unix_seconds: u64) -> tokio::time::Instant {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    tokio::time::Instant::now() + Duration::from_secs(unix_seconds).saturating_sub(now)
}

async fn control_channel(
    relay: LocalRelay,
    path: String,
    host: String,
    expires_at: u64,
    socket: WebSocket,
) {
    relay
        .control_channels
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let (mut sink, mut stream) = socket.split();
    // As the service does: a listener whose token runs out without renewal is closed with 1008.
    let expiry = tokio::time::sleep_until(expiry_instant(expires_at));
    tokio::pin!(expiry);
    let (control, mut outbox) = mpsc::unbounded_channel();
    let id = {
        let mut registry = relay.lock();
        registry.next_id += 1;
        let id = registry.next_id;
        registry
            .listeners
            .entry(path.clone())
            .or_default()
            .push(Listener { id, control });
        id
    };
    loop {
        tokio::select! {
            _ = &mut expiry => {
                let reason = "the token expired";
                let _ = sink.send(Message::Close(Some(CloseFrame { code: 1008, reason: reason.into() }))).await;
                break;
            }
            outgoing = outbox.recv() => match outgoing {
                Some(message) => if sink.send(message).await.is_err() { break },
                None => break,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Some(token) = renew_token(&text) {
                        let checked = validate_token(&token, &relay.config.rules, &host, &path, Right::Listen, now_unix())
                            .and_then(|()| parse_token(&token));
                        if let Ok(renewed) = &checked {
                            expiry.as_mut().reset(expiry_instant(renewed.expires_at));
                        } else {
                            let reason = "the renewed token is not valid";
                            let _ = sink
                                .send(Message::Close(Some(CloseFrame { code: 1008, reason: reason.into() })))
                                .await;
                            break;
                        }
                    }
                }
                // Pings are answered by the WebSocket layer; unsolicited pongs are tolerated.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let mut registry = relay.lock();
    if let Some(listeners) = registry.listeners.get_mut(&path) {
        listeners.retain(|listener| listener.id != id);
    }
}

fn renew_token(text: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    json.pointer("/renewToken/token")?
        .as_str()
        .map(str::to_string)
}

#[allow(clippy::too_many_arguments)]
async fn connect(
    relay: LocalRelay,
    hybrid_connection: String,
    path: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let rendezvous_id = uuid::Uuid::new_v4().to_string();
    let (decision_tx, decision_rx) = oneshot::channel();
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let listener = {
        let mut registry = relay.lock();
        let listeners = registry
            .listeners
            .get(&hybrid_connection)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if listeners.is_empty() {
            return refuse(
                StatusCode::NOT_FOUND,
                "There are no listeners connected for the endpoint",
            );
        }
        let chosen = listeners
            [(random_fraction() * listeners.len() as f64) as usize % listeners.len()]
        .control
        .clone();
        registry.rendezvous.insert(
            rendezvous_id.clone(),
            Rendezvous {
                created: Instant::now(),
                decision: decision_tx,
            },
        );
        chosen
    };
    // The sender's query (minus sb-hc-* parameters) and path suffix reach the listener in the address.
    let extra: String = query
        .iter()
        .filter(|(name, _)| !name.starts_with("sb-hc-"))
        .map(|(name, value)| {
            format!(
                "&{}={}",
                super::sas::url_encode(name),
                super::sas::url_encode(value)
            )
        })
        .collect();
    let connect_headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .filter(|(name, _)| name.as_str() != "servicebusauthorization")
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.into())))
        .collect();
    let accept = serde_json::json!({
        "accept": {
            "address": format!("{}://{host}/$hc/{path}?sb-hc-action=accept&sb-hc-id={rendezvous_id}{extra}", relay.scheme),
            "id": rendezvous_id,
            "connectHeaders": connect_headers,
            "remoteEndpoint": {
                "address": remote.map(|a| a.ip().to_string()).unwrap_or_default(),
                "port": remote.map(|a| a.port()).unwrap_or_default(),
            },
        }
    });
    if listener
        .send(Message::Text(accept.to_string().into()))
        .is_err()
    {
        relay.lock().rendezvous.remove(&rendezvous_id);
        return refuse(
            StatusCode::NOT_FOUND,
            "There are no listeners connected for the endpoint",
        );
    }
    let decision = tokio::time::timeout(RENDEZVOUS_TIMEOUT, decision_rx).await;
    relay.lock().rendezvous.remove(&rendezvous_id);
    match decision {
        Ok(Ok(Ok(listener_socket))) => upgrade.on_upgrade(move |sender_socket| async move {
            relay
                .rendezvous_accepted
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Ok(listener_socket) = listener_socket.await {
                pipe(sender_socket, listener_socket).await;
            }
        }),
        Ok(Ok(Err((status, description)))) => refuse(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            &description,
        ),
        _ => refuse(
            StatusCode::GATEWAY_TIMEOUT,
            "The listener did not accept the connection in time",
        ),
    }
}

/// The listener's rendezvous dial: accept (upgrade) or reject (410).
async fn accept(
    relay: LocalRelay,
    query: HashMap<String, String>,
    upgrade: Option<WebSocketUpgrade>,
) -> Response {
    let id = query.get("sb-hc-id").cloned().unwrap_or_default();
    let pending = relay.lock().rendezvous.remove(&id);
    let Some(pending) = pending.filter(|p| p.created.elapsed() < RENDEZVOUS_TIMEOUT) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "The rendezvous address is invalid or has expired",
        );
    };
    if let Some(status) = query.get("sb-hc-statusCode") {
        let status = status.parse().unwrap_or(400);
        let description = query
            .get("sb-hc-statusDescription")
            .cloned()
            .unwrap_or_default();
        let _ = pending.decision.send(Err((status, description)));
        return (StatusCode::GONE, "rejected").into_response();
    }
    let Some(upgrade) = upgrade else {
        let _ = pending
            .decision
            .send(Err((500, "the listener did not upgrade".into())));
        return refuse(StatusCode::BAD_REQUEST, "a WebSocket upgrade is required");
    };
    let (socket_tx, socket_rx) = oneshot::channel();
    if pending.decision.send(Ok(socket_rx)).is_err() {
        return refuse(StatusCode::FORBIDDEN, "The sender has gone");
    }
    upgrade.on_upgrade(move |socket| async move {
        let _ = socket_tx.send(socket);
    })
}

/// Copies frames both ways until either side closes.
async fn pipe(a: WebSocket, b: WebSocket) {
    let (mut a_sink, mut a_stream) = a.split();
    let (mut b_sink, mut b_stream) = b.split();
    let a_to_b = async {
        while let Some(Ok(message)) = a_stream.next().await {
            let close = matches!(message, Message::Close(_));
            if b_sink.send(message).await.is_err() || close {
                break;
            }
        }
        let _ = b_sink.close().await;
    };
    let b_to_a = async {
        while let Some(Ok(message)) = b_stream.next().await {
            let close = matches!(message, Message::Close(_));
            if a_sink.send(message).await.is_err() || close {
                break;
            }
        }
        let _ = a_sink.close().await;
    };
    tokio::join!(a_to_b, b_to_a);
}

/// A TLS listener for serving the local relay as `wss://`, from a PEM certificate chain and key.
/// Handshakes run in their own tasks, so a client that stalls its handshake delays nobody else.
pub struct TlsListener {
    address: SocketAddr,
    handshaken: mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    accept_loop: tokio::task::JoinHandle<()>,
}

/// The certificate or key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsListener {
    /// Wraps `tcp` with the certificate chain and private key in the PEM files given.
    pub fn new(
        tcp: tokio::net::TcpListener,
        certificate: &std::path::Path,
        key: &std::path::Path,
    ) -> Result<Self, TlsError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(certificate)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                TlsError(format!(
                    "reading the certificate {}: {e}",
                    certificate.display()
                ))
            })?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| TlsError(format!("reading the key {}: {e}", key.display())))?;
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError(e.to_string()))?;
        Self::with_config(tcp, Arc::new(config))
    }

    /// Wraps `tcp` with a TLS configuration of the caller's (one that asks for client
    /// certificates, say).
    pub fn with_config(
        tcp: tokio::net::TcpListener,
        config: Arc<tokio_rustls::rustls::ServerConfig>,
    ) -> Result<Self, TlsError> {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let address = tcp
            .local_addr()
            .map_err(|e| TlsError(format!("the listening address: {e}")))?;
        let (ready, handshaken) = mpsc::channel(64);
        let accept_loop = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "local relay: accepting a TCP connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let ready = ready.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            let _ = ready.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "local relay: TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "local relay: TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            address,
            handshaken,
            accept_loop,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.address)
    }
}

/// Where and how `screening-gateway relay` serves.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalRelayArgs {
    /// Address to listen on.
    #[arg(long, env = "SCREENING_RELAY_LISTEN", default_value = "127.0.0.1:9400")]
    pub listen: SocketAddr,
    /// A TOML file with hybrid_connections = [..] and [[rules]] key_name, key, rights = ["listen"].
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// A hybrid connection to serve (repeatable).
    #[arg(long = "hybrid-connection", value_name = "NAME")]
    pub hybrid_connections: Vec<String>,
    /// A SAS rule NAME:RIGHTS:KEY, RIGHTS from listen, send, manage joined by '+' (repeatable).
    /// Parsed after the command line so an error never echoes the key.
    #[arg(long = "rule", value_name = "NAME:RIGHTS:KEY")]
    pub rules: Vec<String>,
    /// PEM certificate chain: with --tls-key, serve wss://.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// The local relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalRelayError {
    /// The settings are incomplete or unreadable.
    #[error("configuration: {0}")]
    Config(String),
    /// The address could not be bound, or serving failed.
    #[error("listening on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// The certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl LocalRelayArgs {
    /// The relay's configuration: the file's, plus the hybrid connections and rules given as flags.
    pub fn relay_config(&self) -> Result<LocalRelayConfig, LocalRelayError> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    LocalRelayError::Config(format!("reading {}: {e}", path.display()))
                })?;
                toml::from_str::<LocalRelayConfig>(&text)
                    .map_err(|e| LocalRelayError::Config(format!("{}: {e}", path.display())))?
            }
            None => LocalRelayConfig {
                hybrid_connections: Vec::new(),
                rules: Vec::new(),
            },
        };
        config
            .hybrid_connections
            .extend(self.hybrid_connections.iter().cloned());
        for rule in &self.rules {
            config
                .rules
                .push(parse_rule(rule).map_err(|e| LocalRelayError::Config(e.to_string()))?);
        }
        if config.hybrid_connections.is_empty() || config.rules.is_empty() {
            return Err(LocalRelayError::Config(
                "the relay needs at least one --hybrid-connection and one --rule (or a --config file)"
                    .into(),
            ));
        }
        Ok(config)
    }

    /// Serves the relay (`ws://`, or `wss://` with a certificate) until `shutdown` completes.
    pub async fn serve(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), LocalRelayError> {
        let config = self.relay_config()?;
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|e| LocalRelayError::Listen(self.listen, e))?;
        let address = listener
            .local_addr()
            .map_err(|e| LocalRelayError::Listen(self.listen, e))?;
        let names = config.hybrid_connections.clone();
        let served = match (&self.tls_cert, &self.tls_key) {
            (Some(certificate), Some(key)) => {
                let tls = TlsListener::new(listener, certificate, key)?;
                tracing::info!(%address, hybrid_connections = ?names, "local relay serving wss://{address}/$hc/{{name}}");
                let relay = LocalRelay::new(config).serving_wss();
                axum::serve(tls, relay.router())
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            _ => {
                tracing::info!(%address, hybrid_connections = ?names, "local relay serving ws://{address}/$hc/{{name}}");
                let relay = LocalRelay::new(config);
                axum::serve(
                    listener,
                    relay
                        .router()
                        .into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown)
                .await
            }
        };
        served.map_err(|e| LocalRelayError::Listen(address, e))
    }
}
