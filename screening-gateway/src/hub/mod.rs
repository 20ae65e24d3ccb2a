//! The hub side of the HTTP link: an axum [`Router`] that the web app, or any other axum service,
//! mounts. Gateways poll it from inside hospital networks (outbound HTTPS only).
//!
//! - The proof of concept's API, wire-compatible:
//!   `GET /gateway-messages/{gateway_id}/` and `POST /gateway-messages/{gateway_id}/confirmations`.
//! - Ours, under `/api/v1/gateways/{gateway_id}/`: `messages?wait=<seconds>` (long-polling),
//!   `messages/{message_id}/confirmation`, `confirmations` (many at once),
//!   `messages/{message_id}/failure`, `heartbeat`.
//!
//! Every request carries `Authorization: Bearer <gateway credential>`. Taken messages are leased;
//! [`Hub::spawn_lease_sweeper`] makes unconfirmed ones pending again when the lease runs out.

mod error;
pub mod metrics;
mod serve;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::TimeDelta;
use screening_core::echo::echo_message;
use screening_core::prelude::*;
use screening_core::procedure::ProcedureReport;
use screening_core::signing::HubSigningKey;
use screening_core::wire::{
    BatchOutcome, ConfirmationBatch, ConfirmationBatchResponse, MessagesResponse, OutcomeResponse,
    ProcedureResponse,
};
use screening_store::{now_utc, ScreeningStore};
use serde::Deserialize;

pub use error::ApiError;
pub use serve::serve;

use crate::auth::verify_credential;

/// `screening-gateway hub`: the hub API served alone, for development.
#[derive(Debug, Clone, clap::Args)]
pub struct HubArgs {
    /// The database: sqlite://path.db or postgres://user@host/db.
    #[arg(long, env = "DATABASE_URL")]
    pub database: String,
    /// Address to listen on.
    #[arg(long, env = "SCREENING_HUB_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: std::net::SocketAddr,
    /// Print a new credential for this gateway id and exit (it is stored only hashed).
    #[arg(long, value_name = "GATEWAY_ID")]
    pub issue_credential: Option<String>,
    /// The key that signs orders.
    #[command(flatten)]
    pub signing_key: crate::signing::SigningKeyFile,
}

/// The standalone hub could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum HubRunError {
    /// The database could not be opened.
    #[error("database: {0}")]
    Connect(#[from] screening_store::ConnectError),
    /// The database could not be written.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// A bad gateway id.
    #[error("--issue-credential: {0}")]
    GatewayId(#[from] screening_core::ids::IdParseError),
    /// The address could not be bound.
    #[error("listening on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    /// The signing key file named could not be used.
    #[error("--signing-key: {0}")]
    SigningKey(String),
}

/// Says at start-up, once, what an unsigned hub means for its gateways.
pub fn warn_if_unsigned(signing_key: Option<&HubSigningKey>) {
    match signing_key {
        Some(key) => tracing::info!(key_id = %key.id(), "orders are signed"),
        None => tracing::warn!(
            "orders are not signed (no --signing-key): gateways cannot tell the hub's orders from forged ones"
        ),
    }
}

impl HubArgs {
    /// Issues the credential asked for (printing it), or serves the hub until `shutdown` completes.
    pub async fn run(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), HubRunError> {
        let store = screening_store::connect(&self.database).await?;
        if let Some(gateway) = &self.issue_credential {
            let gateway_id = GatewayId::parse(gateway)?;
            let credential = crate::auth::generate_credential();
            store
                .set_gateway_credential_hash(gateway_id, &crate::auth::hash_credential(&credential))
                .await?;
            println!("{credential}");
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|e| HubRunError::Listen(self.listen, e))?;
        let address = listener
            .local_addr()
            .map_err(|e| HubRunError::Listen(self.listen, e))?;
        let signing_key = self.signing_key.load().map_err(HubRunError::SigningKey)?;
        warn_if_unsigned(signing_key.as_ref());
        let hub = Hub::new(
            store,
            HubConfig {
                signing_key,
                ..HubConfig::default()
            },
        );
        hub.spawn_lease_sweeper();
        tracing::info!(%address, "hub listening on http://{address}");
        serve(listener, hub.router(), shutdown).await;
        Ok(())
    }
}

/// How the hub hands out messages.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How long a gateway holds a taken message before it may be redelivered.
    pub lease: Duration,
    /// The longest long-poll a gateway may ask for.
    pub max_wait: Duration,
    /// The most messages one response carries.
    pub batch_limit: u32,
    /// Deliveries before an unconfirmed message is parked as failed.
    pub max_attempts: u32,
    /// How often the sweeper looks for expired leases.
    pub sweep_interval: Duration,
    /// The largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Signs every message handed out, so gateways can refuse forged or altered orders.
    pub signing_key: Option<HubSigningKey>,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(120),
            max_wait: Duration::from_secs(60),
            batch_limit: 100,
            max_attempts: 10,
            sweep_interval: Duration::from_secs(5),
            max_body_bytes: 64 * 1024,
            signing_key: None,
        }
    }
}

/// The hub: the store plus its configuration.
#[derive(Clone)]
pub struct Hub {
    store: Arc<dyn ScreeningStore>,
    config: Arc<HubConfig>,
    /// When this instance last wrote each gateway's "last seen": the store keeps it to
    /// [`SEEN_RESOLUTION_SECONDS`](screening_store::SEEN_RESOLUTION_SECONDS), so the requests in
    /// between skip the write (and its wait for the single SQLite writer) altogether.
    seen_written: Arc<std::sync::Mutex<std::collections::HashMap<GatewayId, Instant>>>,
    /// Long polls waiting in this instance now.
    waiting: Arc<AtomicUsize>,
}

impl Hub {
    /// A hub over a store.
    pub fn new(store: Arc<dyn ScreeningStore>, config: HubConfig) -> Self {
        Self {
            store,
            config: Arc::new(config),
            seen_written: Arc::default(),
            waiting: Arc::default(),
        }
    }

    /// How many long polls are waiting in this instance now (also the
    /// `screening_long_polls_waiting` gauge): the gateways connected by polling.
    pub fn long_polls_waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The routes, ready to `merge` into an application's router or to serve alone.
    pub fn router(&self) -> Router {
        // Only the routes that read a body carry the body limit: `Router::layer` wraps each route
        // it covers, a boxed future per request, which a waiting long poll would hold.
        let with_bodies = Router::new()
            .route(
                "/gateway-messages/{gateway_id}/confirmations",
                post(poc_confirmation),
            )
            .route(
                "/api/v1/gateways/{gateway_id}/messages/{message_id}/confirmation",
                post(v1_confirmation),
            )
            .route(
                "/api/v1/gateways/{gateway_id}/confirmations",
                post(v1_confirmations),
            )
            .route(
                "/api/v1/gateways/{gateway_id}/messages/{message_id}/failure",
                post(v1_failure),
            )
            .route(
                "/api/v1/gateways/{gateway_id}/messages/{message_id}/procedure",
                post(v1_procedure),
            )
            .route(
                "/api/v1/gateways/{gateway_id}/heartbeat",
                post(v1_heartbeat),
            )
            .layer(DefaultBodyLimit::max(self.config.max_body_bytes));
        Router::new()
            .route("/gateway-messages/{gateway_id}/", get(poc_messages))
            .route("/api/v1/gateways/{gateway_id}/messages", get(v1_messages))
            .merge(with_bodies)
            .with_state(self.clone())
    }

    /// Starts the task that makes messages whose lease expired pending again (or parks them as
    /// failed after `max_attempts`). It runs until the runtime stops; abort the handle to stop it.
    pub fn spawn_lease_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(hub.config.sweep_interval);
            loop {
                interval.tick().await;
                match hub
                    .store
                    .redeliver_expired(now_utc(), hub.config.max_attempts)
                    .await
                {
                    Ok(count) => metrics::redelivered(count),
                    Err(error) => tracing::error!(%error, "hub: lease sweep failed (store)"),
                }
            }
        })
    }

    /// Checks the bearer credential for the gateway named in the path.
    async fn authenticate(&self, bearer: &Bearer, gateway: &str) -> Result<GatewayId, ApiError> {
        let gateway_id =
            GatewayId::parse(gateway).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let presented = bearer.0.as_deref().ok_or_else(|| {
            ApiError::unauthorized(
                "authenticate: send the gateway credential as Authorization: Bearer <credential>",
            )
        })?;
        let refused =
            || ApiError::unauthorized("authenticate: the credential is not valid for this gateway");
        // An unknown gateway and a wrong credential look the same from outside.
        let stored = match self.store.gateway_credential_hash(gateway_id).await {
            Ok(Some(hash)) => hash,
            Ok(None) | Err(StoreError::NotFound { .. }) => return Err(refused()),
            Err(other) => return Err(other.into()),
        };
        if verify_credential(presented, &stored) {
            // Every authenticated request shows the gateway is alive, heartbeats or not (the proof
            // of concept's pollers send none). A failure here must not refuse the request.
            self.record_seen(gateway_id).await;
            Ok(gateway_id)
        } else {
            Err(refused())
        }
    }

    /// Records the gateway as seen, unless this instance did so within the store's resolution.
    async fn record_seen(&self, gateway_id: GatewayId) {
        let resolution = Duration::from_secs(screening_store::SEEN_RESOLUTION_SECONDS as u64);
        let now = Instant::now();
        {
            let mut written = self.seen_written.lock().expect("not poisoned");
            if written
                .get(&gateway_id)
                .is_some_and(|at| now.duration_since(*at) < resolution)
            {
                return;
            }
            written.insert(gateway_id, now);
        }
        if let Err(error) = self.store.record_seen(gateway_id, now_utc()).await {
            // Written again at the next request.
            self.seen_written
                .lock()
                .expect("not poisoned")
                .remove(&gateway_id);
            tracing::warn!(%error, gateway_id = %gateway_id, "hub: recording last seen failed (store)");
        }
    }

    /// Confirms a message for its gateway, counting a first confirmation with its latency.
    async fn confirm(
        &self,
        gateway_id: GatewayId,
        message_id: MessageId,
    ) -> Result<Confirmed, ApiError> {
        let mut outcomes = self.confirm_all(gateway_id, &[message_id]).await?;
        outcomes.pop().expect("one outcome per message id")
    }

    /// Confirms the gateway's messages in one store call: each one's outcome, in order. First
    /// confirmations are counted with their latency; an id that is no order may be the echo.
    async fn confirm_all(
        &self,
        gateway_id: GatewayId,
        message_ids: &[MessageId],
    ) -> Result<Vec<Result<Confirmed, ApiError>>, ApiError> {
        let now = now_utc();
        let outcomes = self
            .store
            .confirm_many(gateway_id, message_ids, now)
            .await?;
        let mut results = Vec::with_capacity(outcomes.len());
        for (&message_id, outcome) in message_ids.iter().zip(outcomes) {
            results.push(match outcome {
                Ok(outcome) => {
                    if outcome.confirmed == Confirmed::Now {
                        metrics::confirmed(
                            gateway_id,
                            metrics::Path::Poll,
                            outcome.created_at,
                            now,
                        );
                    }
                    Ok(outcome.confirmed)
                }
                Err(StoreError::NotFound { .. }) => self
                    .answer_echo(gateway_id, message_id, Ok(()))
                    .await
                    .map(|()| Confirmed::Now),
                Err(other) => Err(other.into()),
            });
        }
        Ok(results)
    }

    /// Records the gateway's answer to its echo; `NotFound` when `echo_id` is not its echo.
    async fn answer_echo(
        &self,
        gateway_id: GatewayId,
        echo_id: MessageId,
        outcome: Result<(), &str>,
    ) -> Result<(), ApiError> {
        let round_trip = self
            .store
            .answer_echo(gateway_id, echo_id, now_utc(), outcome)
            .await?;
        metrics::echo_answered(
            gateway_id,
            metrics::Path::Poll,
            outcome.is_ok().then_some(round_trip),
        );
        tracing::info!(%gateway_id, %echo_id, round_trip_ms = round_trip, error = outcome.err(), "echo answered");
        Ok(())
    }

    async fn take(&self, gateway_id: GatewayId) -> Result<Vec<GatewayMessage>, ApiError> {
        let now = now_utc();
        let lease = TimeDelta::from_std(self.config.lease).unwrap_or(TimeDelta::seconds(120));
        // The echo's look (a read) and the claim (a write) side by side: every woken long poll
        // waits for both. The echo goes first in the answer: it proves the path the orders behind
        // it take.
        let (echo, taken) = tokio::join!(
            self.store.take_echo(gateway_id, now, now + lease),
            self.store
                .take_pending(gateway_id, now, now + lease, self.config.batch_limit)
        );
        let taken = taken?;
        let echo = match echo {
            Ok(echo) => echo,
            // Orders already claimed go out without it; an echo not taken waits for the next take.
            Err(error) if !taken.is_empty() => {
                tracing::warn!(%gateway_id, %error, "take: the echo could not be read; the orders go without it");
                None
            }
            Err(error) => return Err(error.into()),
        };
        metrics::delivered(gateway_id, metrics::Path::Poll, taken.len());
        let echo = echo.map(|(id, requested_at)| {
            sign(
                echo_message(id, requested_at),
                self.config.signing_key.as_ref(),
                now,
            )
        });
        Ok(echo
            .into_iter()
            .chain(
                taken
                    .iter()
                    .map(|message| wire_message(message, self.config.signing_key.as_ref(), now)),
            )
            .collect())
    }
}

/// A message in its wire form, signed when the hub has a key (relay and polling alike).
pub fn wire_message(
    message: &Message,
    signing_key: Option<&HubSigningKey>,
    now: chrono::DateTime<chrono::Utc>,
) -> GatewayMessage {
    sign(GatewayMessage::from_message(message), signing_key, now)
}

/// `wire` signed when the hub has a key.
pub fn sign(
    wire: GatewayMessage,
    signing_key: Option<&HubSigningKey>,
    now: chrono::DateTime<chrono::Utc>,
) -> GatewayMessage {
    match signing_key {
        Some(key) => key.signed(wire, now),
        None => wire,
    }
}

/// The credential a request presents (`Authorization: Bearer <credential>`), copied out of the
/// request. Handlers take this rather than the `HeaderMap`: hyper's header values share the
/// connection's read buffer, so a long poll holding the headers while it waits would keep that
/// buffer alive beside the one hyper reads the next request into.
struct Bearer(Option<String>);

impl<S: Sync> axum::extract::FromRequestParts<S> for Bearer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Bearer(
            parts
                .headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_owned),
        ))
    }
}

async fn poc_messages(
    State(hub): State<Hub>,
    Path(gateway): Path<String>,
    bearer: Bearer,
) -> Result<Json<Vec<GatewayMessage>>, ApiError> {
    let gateway_id = hub.authenticate(&bearer, &gateway).await?;
    Ok(Json(hub.take(gateway_id).await?))
}

async fn poc_confirmation(
    State(hub): State<Hub>,
    Path(gateway): Path<String>,
    bearer: Bearer,
    body: Result<Json<Confirmation>, JsonRejection>,
) -> Result<Json<Confirmation>, ApiError> {
    let gateway_id = hub.authenticate(&bearer, &gateway).await?;
    let Json(confirmation) = body?;
    hub.confirm(gateway_id, confirmation.message_id).await?;
    Ok(Json(confirmation))
}

/// `?wait=<seconds>` of a long-poll.
#[derive(Deserialize)]
struct WaitQuery {
    wait: Option<u64>,
}

async fn v1_messages(
    State(hub): State<Hub>,
    Path(gateway): Path<String>,
    bearer: Bearer,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Json<MessagesResponse>, ApiError> {
    let gateway_id = hub.authenticate(&bearer, &gateway).await?;
    let Query(WaitQuery { wait }) = query?;
    let wait = Duration::from_secs(wait.unwrap_or(0)).min(hub.config.max_wait);
    let deadline = tokio::time::Instant::now() + wait;
    let _waiting = (!wait.is_zero()).then(|| WaitingPoll::start(&hub.waiting));
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        // A long poll looks before it takes: one that finds nothing (a gateway polling again
        // after its last answer) costs a read, not a write queued on SQLite's single writer.
        // Woken by the store's notifier as soon as a message is committed.
        if !remaining.is_zero() && !hub.store.wait_for_pending(gateway_id, remaining).await? {
            return Ok(Json(MessagesResponse {
                messages: Vec::new(),
            }));
        }
        let messages = hub.take(gateway_id).await?;
        // Another gateway instance may have taken it first: wait again until the deadline.
        if !messages.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(MessagesResponse { messages }));
        }
    }
}

/// A long poll counted as waiting for as long as it is held.
struct WaitingPoll<'a>(&'a AtomicUsize);

impl<'a> WaitingPoll<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        metrics::long_poll_started();
        Self(count)
    }
}

impl Drop for WaitingPoll<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        metrics::long_poll_ended();
    }
}

fn message_id(text: &str) -> Result<MessageId, ApiError> {
    MessageId::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn v1_confirmation(
    State(hub): State<Hub>,
    Path((gateway, message)): Path<(String, String)>,
    bearer: Bearer,
) -> Result<Json<OutcomeResponse>, ApiError> {
    let gateway_id = hub.authenticate(&bearer, &gateway).await?;
    let message_id = message_id(&message)?;
    let outcome = hub.confirm(gateway_id, message_id).await?;
    Ok(Json(OutcomeResponse {
        message_id,
        status: MessageStatus::Confirmed,
        already: outcome == Confirmed::Already,
    }))
}

async fn v1_confirmations(
    State(hub): State<Hub>,
    Path(gateway): Path<String>,
    bearer: Bearer,
    body: Result<Json<ConfirmationBatch>, JsonRejection>,
) -> Result<Json<ConfirmationBatchResponse>, ApiError> {
    let gateway_id = hub.authenticate(&bearer, &gateway).await?;
    let Json(batch) = body?;
    if batch.message_ids.len() > ConfirmationBatch::MAX {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a batch carries at most {} confirmations; this one has {}",
                ConfirmationBatch::MAX,
                batch.message_ids.len()
            ),
        ));
    }
    let results = hub.confirm_all(gateway_id, &batch.message_ids).await?;
    let outcomes = batch
        .message_ids
        .iter()
        .zip(results)
        .map(|(&message_id, result)| match result {
            Ok(confirmed) => BatchOutcome {
                message_id,
                status: 200,
                already: confirmed == Confirmed::Already,
                error: None,
            },
            Err(error) => BatchOutcome {
                message_id,
                status: error.status.as_u16(),
                already: false,
                error: Some(error.message),
            },
        })
        .collect();
    Ok(Json(ConfirmationBatchResponse { outcomes }))
}

/// Failure reasons are kept, cut to this many characters.
const MAX_REASON_CHARS: usize = 2000;

async fn v1_failure(
    State(hub): State<Hub>,
    Path((gateway, message)): Path<(String, String)>,
    bearer: Bearer,
    body: Result<Json<FailureReport>, JsonRejection>,
) -> Result<Json<OutcomeResponse>, ApiError> {
    let gateway_id = hub.authenticate(&bearer, &gateway).await?;
    let message_id = message_id(&message)?;
    let Json(report) = body?;
    let reason: String = report.reason.chars().take(MAX_REASON_CHARS).collect();
    if reason.trim().is_empty() {
        return Err(ApiError::bad_request("a failure needs a reason"));
    }
    match hub
        .store
        .fail(gateway_id, message_id, now_utc(), &reason)
        .await
    {
        Ok(_) => {}
        // Not an order: perhaps the gateway's echo, answered with what went wrong.
        Err(StoreError::NotFound { .. })
            if hub
                .answer_echo(gateway_id, message_id, Err(&reason))
                .await
                .is_ok() =>
        {
            return Ok(Json(OutcomeResponse {
                message_id,
                status: MessageStatus::Failed,
                already: false,
            }));
        }
        // A gateway refusing an order the hub never sent it: someone else spoke to the gateway.
        Err(error @ StoreError::NotFound { .. }) => {
            tracing::warn!(%gateway_id, %message_id, %reason, "hub: a gateway reported a message this hub never sent it (forged on the way?)");
            return Err(error.into());
        }
        Err(error) => return Err(error.into()),
    }
    metrics::failed(gateway_id, metrics::Path::Poll);
    Ok(Json(OutcomeResponse {
        message_id,
        status: MessageStatus::Failed,
        already: false,
    }))
}

/// What the modality did with an order, reported by the gateway that serves its worklist.
async fn v1_procedure(
    State(hub): State<Hub>,
    Path((gateway, message)): Path<(String, String)>,
    bearer: Bearer,
    body: Result<Json<ProcedureReport>, JsonRejection>,
) -> Result<Json<ProcedureResponse>, ApiError> {
    let gateway_id = hub.authenticate(&bearer, &gateway).await?;
    let message_id = message_id(&message)?;
    let Json(mut report) = body?;
    if report.message_id != message_id {
        return Err(ApiError::bad_request(format!(
            "the report is about message {}, but was sent for {message_id}",
            report.message_id
        )));
    }
    report.station_ae_title = report.station_ae_title.chars().take(16).collect();
    report.reason = report
        .reason
        .map(|reason| reason.chars().take(MAX_REASON_CHARS).collect());
    let appointment_state = hub.store.record_procedure(gateway_id, &report).await?;
    tracing::info!(%message_id, status = report.status.code(), appointment_state = appointment_state.code(), "procedure reported");
    Ok(Json(ProcedureResponse {
        message_id,
        appointment_state,
    }))
}

async fn v1_heartbeat(
    State(hub): State<Hub>,
    Path(gateway): Path<String>,
    bearer: Bearer,
    body: Result<Json<Heartbeat>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let gateway_id = hub.authenticate(&bearer, &gateway).await?;
    let Json(heartbeat) = body?;
    let now = now_utc();
    hub.store
        .record_heartbeat(gateway_id, now, &heartbeat)
        .await?;
    Ok(Json(serde_json::json!({ "server_time": now })))
}
