//! The Hybrid Connections client: a sender (`sb-hc-action=connect`; [`RelaySender`] keeps its
//! rendezvous open for the messages that follow) and a listener (control channel, `accept`, rendezvous, pings, token
//! renewal, reconnect with backoff). The same code talks to Azure (`wss://{namespace}`) and to the
//! local relay (`ws://127.0.0.1:PORT`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use screening_core::prelude::*;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::sas::{create_token, resource_uri};
use crate::random::fraction as random_fraction;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A hybrid connection and the SAS rule to use on it.
#[derive(Clone)]
pub struct RelayEndpoint {
    /// `wss://contoso.servicebus.windows.net` or `ws://127.0.0.1:9400`.
    pub base_url: String,
    /// The hybrid connection's name.
    pub hybrid_connection: String,
    /// The SAS rule's name.
    pub key_name: String,
    /// The SAS key.
    pub key: String,
    /// How long each token is valid.
    pub token_lifetime: Duration,
}

impl std::fmt::Debug for RelayEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayEndpoint")
            .field("base_url", &self.base_url)
            .field("hybrid_connection", &self.hybrid_connection)
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

/// A relay exchange failed; the variant says which phase.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The relay could not be reached.
    #[error("connect: {0}")]
    Connect(String),
    /// The token was refused (401) or is not valid for this path or action (403).
    #[error("authenticate: HTTP {status}: {message}")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The relay's description.
        message: String,
    },
    /// 404: no listener is connected, or the hybrid connection does not exist.
    #[error("connect: HTTP 404: {0}")]
    NotFound(String),
    /// The listener refused the connection, or another handshake failure.
    #[error("connect: HTTP {status}: {message}")]
    Rejected {
        /// The status the sender's handshake failed with.
        status: u16,
        /// Its description.
        message: String,
    },
    /// Writing the message failed.
    #[error("send: {0}")]
    Send(String),
    /// No (valid) reply came in time.
    #[error("await reply: {0}")]
    AwaitReply(String),
}

impl RelayEndpoint {
    fn host(&self) -> &str {
        let rest = self
            .base_url
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or(&self.base_url);
        rest.split('/').next().unwrap_or(rest)
    }

    /// A fresh SAS token for this hybrid connection.
    pub fn token(&self) -> String {
        let expires = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            + self.token_lifetime.as_secs();
        create_token(
            &resource_uri(self.host(), &self.hybrid_connection),
            &self.key_name,
            &self.key,
            expires,
        )
    }

    fn url(&self, action: &str) -> String {
        format!(
            "{}/$hc/{}?sb-hc-action={action}&sb-hc-id={}",
            self.base_url.trim_end_matches('/'),
            self.hybrid_connection,
            uuid::Uuid::new_v4()
        )
    }

    async fn open(&self, action: &str) -> Result<Socket, RelayError> {
        let mut request = self
            .url(action)
            .into_client_request()
            .map_err(|e| RelayError::Connect(e.to_string()))?;
        request.headers_mut().insert(
            "ServiceBusAuthorization",
            self.token()
                .parse()
                .map_err(|_| RelayError::Connect("the token is not a valid header".into()))?,
        );
        dial(request).await
    }
}

/// Each relay WebSocket's read buffer. tungstenite's default is 128 KiB, zero-filled on every
/// read, so it is resident in full: 12.5 MiB for a hub keeping 100 rendezvous open
/// (`benches/many_gateways.rs`). A signed order is a few KiB; a larger frame grows the buffer.
const READ_BUFFER_BYTES: usize = 8 * 1024;

async fn dial(request: tungstenite::handshake::client::Request) -> Result<Socket, RelayError> {
    let config =
        tungstenite::protocol::WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    match tokio_tungstenite::connect_async_with_config(request, Some(config), false).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let message = match response.body().as_ref() {
                Some(body) => String::from_utf8_lossy(body).to_string(),
                None => format!("HTTP {status} with no body"),
            };
            Err(match status {
                401 | 403 => RelayError::Unauthorized { status, message },
                404 => RelayError::NotFound(message),
                _ => RelayError::Rejected { status, message },
            })
        }
        Err(other) => Err(RelayError::Connect(other.to_string())),
    }
}

/// Sends one message over a new rendezvous, waits for the gateway's reply and closes.
pub async fn send_message(
    endpoint: &RelayEndpoint,
    message: &GatewayMessage,
    reply_timeout: Duration,
) -> Result<RelayReply, RelayError> {
    let mut socket = open_rendezvous(endpoint, reply_timeout).await?;
    let reply = exchange(&mut socket, message, reply_timeout).await;
    let _ = socket.close(None).await;
    reply.map_err(Exchange::into_error)
}

/// A hub's sender to one gateway that keeps its rendezvous open for the messages that follow:
/// a rendezvous is a plain two-way WebSocket that the listener serves until it closes, so a
/// burst pays the relay's handshake (connect, `accept`, the listener's dial) once. A connection
/// idle for longer than `idle` is closed rather than trusted, since the relay or a firewall may
/// have dropped it without a word.
pub struct RelaySender {
    endpoint: RelayEndpoint,
    idle: Duration,
    /// The open rendezvous and when its last reply came.
    open: Option<(Socket, Instant)>,
}

impl RelaySender {
    /// A sender that opens its first rendezvous when it first sends.
    pub fn new(endpoint: RelayEndpoint, idle: Duration) -> Self {
        Self {
            endpoint,
            idle,
            open: None,
        }
    }

    /// Sends one message and waits for the gateway's reply, on the open rendezvous when there is
    /// one. If the listener had closed it (a restart, or an agent that serves one message per
    /// rendezvous), the message goes again on a new one: the gateway takes each message id once,
    /// so a message that did arrive before the close is not forwarded twice.
    pub async fn send(
        &mut self,
        message: &GatewayMessage,
        reply_timeout: Duration,
    ) -> Result<RelayReply, RelayError> {
        if let Some((mut socket, last_reply)) = self.open.take() {
            if last_reply.elapsed() < self.idle {
                match exchange(&mut socket, message, reply_timeout).await {
                    Ok(reply) => {
                        self.open = Some((socket, Instant::now()));
                        return Ok(reply);
                    }
                    Err(Exchange::Closed(_)) => {}
                    Err(Exchange::Failed(error)) => return Err(error),
                }
            } else {
                let _ = socket.close(None).await;
            }
        }
        let mut socket = open_rendezvous(&self.endpoint, reply_timeout).await?;
        let reply = exchange(&mut socket, message, reply_timeout)
            .await
            .map_err(Exchange::into_error)?;
        self.open = Some((socket, Instant::now()));
        Ok(reply)
    }
}

/// Opens a sender's rendezvous.
async fn open_rendezvous(
    endpoint: &RelayEndpoint,
    reply_timeout: Duration,
) -> Result<Socket, RelayError> {
    // The relay holds the sender's handshake until the listener accepts the rendezvous: a
    // listener whose link carries nothing (a zombie) would hold it for the relay's own timeout.
    tokio::time::timeout(reply_timeout, endpoint.open("connect"))
        .await
        .map_err(|_| {
            RelayError::Connect(format!(
                "the listener did not accept the rendezvous within {reply_timeout:?}"
            ))
        })?
}

/// How one message's exchange on a rendezvous failed.
enum Exchange {
    /// The connection failed or closed before a reply: worth a new rendezvous when it was one
    /// kept open from before.
    Closed(RelayError),
    /// Anything else: the listener's reply was missing in time, not valid, or for another message.
    Failed(RelayError),
}

impl Exchange {
    fn into_error(self) -> RelayError {
        match self {
            Self::Closed(error) | Self::Failed(error) => error,
        }
    }
}

/// Writes one message on a rendezvous and reads the listener's reply to it.
async fn exchange(
    socket: &mut Socket,
    message: &GatewayMessage,
    reply_timeout: Duration,
) -> Result<RelayReply, Exchange> {
    let json = serde_json::to_string(message)
        .map_err(|e| Exchange::Failed(RelayError::Send(e.to_string())))?;
    socket
        .send(Message::Text(json.into()))
        .await
        .map_err(|e| Exchange::Closed(RelayError::Send(e.to_string())))?;
    let reply = tokio::time::timeout(reply_timeout, async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str::<RelayReply>(&text).map_err(|e| {
                        Exchange::Failed(RelayError::AwaitReply(format!(
                            "the reply is not valid: {e}"
                        )))
                    });
                }
                Ok(Message::Close(_)) => break,
                Ok(_) => continue,
                Err(e) => return Err(Exchange::Closed(RelayError::AwaitReply(e.to_string()))),
            }
        }
        Err(Exchange::Closed(RelayError::AwaitReply(
            "the listener closed without replying".into(),
        )))
    })
    .await
    .map_err(|_| {
        Exchange::Failed(RelayError::AwaitReply(format!(
            "no reply within {reply_timeout:?}"
        )))
    })??;
    if reply.message_id != message.message_id {
        return Err(Exchange::Failed(RelayError::AwaitReply(format!(
            "the reply is for message {}, not {}",
            reply.message_id, message.message_id
        ))));
    }
    Ok(reply)
}

/// Reconnect delays of the official clients: 0, 1, 2, 5, 10, 30 s (then 30 s), plus jitter.
pub fn reconnect_delay(failures: u32) -> Duration {
    const STEPS: [u64; 6] = [0, 1, 2, 5, 10, 30];
    let base = STEPS[(failures as usize).min(STEPS.len() - 1)];
    Duration::from_millis(base * 1000 + (random_fraction() * 500.0) as u64)
}

/// Listener timing.
#[derive(Debug, Clone, Copy)]
pub struct ListenerTiming {
    /// Time between pings on the control channel; a ping unanswered by the next one means the
    /// link is dead.
    pub ping_interval: Duration,
    /// Renew the token this long before it expires.
    pub renew_before: Duration,
}

impl Default for ListenerTiming {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(30),
            renew_before: Duration::from_secs(300),
        }
    }
}

/// Listens on the hybrid connection until `shutdown` is true, answering each connection with
/// `handler`. Reconnects with backoff; returns an error only for a 404 (the hybrid connection does
/// not exist: retrying cannot help) or a refused token.
pub async fn listen<H, F>(
    endpoint: RelayEndpoint,
    timing: ListenerTiming,
    handler: H,
    shutdown: watch::Receiver<bool>,
) -> Result<(), RelayError>
where
    H: Fn(GatewayMessage) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = RelayReply> + Send + 'static,
{
    let connected = Arc::new(watch::channel(false).0);
    listen_reporting(endpoint, timing, handler, shutdown, connected).await
}

/// True while it lives; false again when dropped (the control channel closed).
struct ConnectedFlag(Arc<watch::Sender<bool>>);

impl ConnectedFlag {
    fn raise(flag: &Arc<watch::Sender<bool>>) -> Self {
        flag.send_replace(true);
        Self(flag.clone())
    }
}

impl Drop for ConnectedFlag {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

/// [`listen`], keeping `connected` true while the control channel is open (as far as the
/// listener can tell: a zombie link counts until its ping goes unanswered), for the agent's
/// heartbeat.
pub async fn listen_reporting<H, F>(
    endpoint: RelayEndpoint,
    timing: ListenerTiming,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
    connected: Arc<watch::Sender<bool>>,
) -> Result<(), RelayError>
where
    H: Fn(GatewayMessage) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = RelayReply> + Send + 'static,
{
    let mut failures = 0u32;
    while !*shutdown.borrow() {
        let mut control = match endpoint.open("listen").await {
            Ok(socket) => {
                failures = 0;
                tracing::info!(
                    hybrid_connection = %endpoint.hybrid_connection,
                    "relay listener connected"
                );
                socket
            }
            Err(error @ (RelayError::NotFound(_) | RelayError::Unauthorized { .. })) => {
                return Err(error)
            }
            Err(error) => {
                let delay = reconnect_delay(failures);
                failures += 1;
                tracing::warn!(
                    %error,
                    delay_ms = delay.as_millis() as u64,
                    "relay listener: connect failed; reconnecting"
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue,
                    _ = shutdown.changed() => break,
                }
            }
        };
        let _connected = ConnectedFlag::raise(&connected);
        let mut ping = tokio::time::interval(timing.ping_interval);
        ping.tick().await;
        let renew_every = endpoint
            .token_lifetime
            .saturating_sub(timing.renew_before)
            .max(Duration::from_secs(1));
        let mut renew = tokio::time::interval(renew_every);
        renew.tick().await;
        let mut awaiting_pong = false;
        let reason = loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    let _ = control.close(None).await;
                    return Ok(());
                }
                _ = ping.tick() => {
                    if awaiting_pong {
                        break "no pong: the control channel is dead".to_string();
                    }
                    awaiting_pong = true;
                    if control.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break "ping failed".to_string();
                    }
                }
                _ = renew.tick() => {
                    let renewal = serde_json::json!({ "renewToken": { "token": endpoint.token() } });
                    if control.send(Message::Text(renewal.to_string().into())).await.is_err() {
                        break "token renewal failed".to_string();
                    }
                }
                frame = control.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(address) = accept_address(&text) {
                            if *shutdown.borrow() {
                                // Stopping: tell the sender now rather than let it time out.
                                tokio::spawn(async move { reject(&address, 503, "the gateway is shutting down").await });
                            } else {
                                tokio::spawn(serve_rendezvous(address, handler.clone()));
                            }
                        }
                    }
                    Some(Ok(Message::Pong(_))) => awaiting_pong = false,
                    Some(Ok(Message::Close(frame))) => break format!("closed by the relay: {frame:?}"),
                    Some(Ok(_)) => {}
                    Some(Err(error)) => break error.to_string(),
                    None => break "the control channel ended".to_string(),
                },
            }
        };
        tracing::warn!(%reason, "relay listener disconnected; reconnecting");
    }
    Ok(())
}

/// Refuses a connection offered in an `accept`: the relay answers the dial with 410 and the
/// sender's handshake fails with `status` and `description`.
pub async fn reject(address: &str, status: u16, description: &str) -> Result<(), RelayError> {
    let url = format!(
        "{address}&sb-hc-statusCode={status}&sb-hc-statusDescription={}",
        super::sas::url_encode(description)
    );
    match dial(
        url.as_str()
            .into_client_request()
            .map_err(|e| RelayError::Connect(e.to_string()))?,
    )
    .await
    {
        Err(RelayError::Rejected { status: 410, .. }) => Ok(()),
        Ok(_) => Err(RelayError::Connect(
            "the relay accepted a rejection as a connection".into(),
        )),
        Err(other) => Err(other),
    }
}

fn accept_address(text: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    json.pointer("/accept/address")?
        .as_str()
        .map(str::to_string)
}

/// Dials the rendezvous and answers each message on it with the handler's reply, one at a time,
/// until the sender closes it (a hub may keep one rendezvous open for many messages).
async fn serve_rendezvous<H, F>(address: String, handler: H)
where
    H: Fn(GatewayMessage) -> F,
    F: Future<Output = RelayReply>,
{
    let request = match address.as_str().into_client_request() {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(%error, "relay rendezvous: connect: the accept address is not a URL");
            return;
        }
    };
    let mut socket = match dial(request).await {
        Ok(socket) => socket,
        Err(error) => {
            tracing::warn!(%error, "relay rendezvous: connect failed; the sender will retry");
            return;
        }
    };
    while let Some(Ok(frame)) = socket.next().await {
        if let Message::Text(text) = frame {
            let reply = match serde_json::from_str::<GatewayMessage>(&text) {
                Ok(message) => handler(message).await,
                Err(error) => {
                    tracing::warn!(%error, "relay rendezvous: await reply: not a gateway message");
                    break;
                }
            };
            let json = serde_json::to_string(&reply).expect("a reply serialises");
            if let Err(error) = socket.send(Message::Text(json.into())).await {
                tracing::warn!(%error, message_id = %reply.message_id, "relay rendezvous: send reply failed");
                break;
            }
        }
    }
    let _ = socket.close(None).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use screening_store::testing::{CapturedLogs, Scope};

    async fn never(message: GatewayMessage) -> RelayReply {
        panic!("nothing can arrive, yet {} did", message.message_id)
    }

    #[tokio::test]
    async fn a_rendezvous_that_cannot_connect_is_logged_with_its_phase() {
        let (logs, _guard) = CapturedLogs::start(Scope::Thread);
        // A port nobody listens on: bind, note it, and close it again.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        serve_rendezvous(format!("ws://{closed}/$hc/orders?sb-hc-id=1"), never).await;
        let text = logs.text();
        assert!(
            text.contains("relay rendezvous: connect failed"),
            "the failure is not logged: {text}"
        );
    }

    #[tokio::test]
    async fn a_rendezvous_address_that_is_not_a_url_is_logged_with_its_phase() {
        let (logs, _guard) = CapturedLogs::start(Scope::Thread);
        serve_rendezvous("not a url".into(), never).await;
        assert!(logs
            .text()
            .contains("relay rendezvous: connect: the accept address is not a URL"));
    }
}
