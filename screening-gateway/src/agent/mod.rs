//! The gateway agent: the process inside the hospital network that takes messages from the hub,
//! stores them durably, forwards them to their destinations and reports the outcome.
//!
//! Each round: heartbeat when due → fetch (poll or long-poll) → store in the inbox → forward what is
//! due → report outcomes the hub has not acknowledged. A message that keeps failing is
//! retried with backoff while the others move on, then reported as failed. Nothing in a round blocks
//! on one message, and a crash at any point loses nothing: the inbox is the source of truth.

pub mod allow;
pub mod config;
pub mod destination;
pub mod destination_auth;
mod http_text;
pub mod hub_client;
pub mod inbox;
pub mod observe;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use screening_core::prelude::*;
use screening_core::wire::WorklistHealth;
use tokio::sync::watch;
use tracing::Instrument;

pub use allow::AllowList;
pub use config::{AgentArgs, AgentConfig, AgentSettings, ConfigError, FetchMode, WorklistConfig};
pub use destination::{ForwardError, Forwarder};
pub use destination_auth::{DestinationAuth, DestinationAuthSettings};
pub use hub_client::{AgentError, HubClient, Phase, ReportOutcome};
pub use inbox::{Inbox, InboxEntry, InboxError};

use crate::backoff::Backoff;
use crate::relay::client::{listen_reporting, ListenerTiming};
use crate::worklist::WorklistStore;

/// The agent's version, reported in heartbeats.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A running agent's parts.
pub struct Agent {
    config: AgentConfig,
    inbox: Inbox,
    hub: HubClient,
    forwarder: Forwarder,
    /// Held from reading a message's state to recording its forwarding, so a pushed message and
    /// the polling loop never forward the same message twice.
    forwarding: Arc<tokio::sync::Mutex<()>>,
    /// The worklist's listening socket and store, when the agent serves one.
    worklist: Option<(tokio::net::TcpListener, WorklistStore)>,
    /// How echoes are answered.
    echo: EchoChecks,
    /// The socket `/metrics`, `/healthz` and `/readyz` are served on, when configured.
    observe: Option<tokio::net::TcpListener>,
    started: Instant,
}

/// The agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The inbox would not open.
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// A destination's credentials could not be loaded into an HTTP client.
    #[error("destination_auth: {0}")]
    DestinationAuth(String),
    /// The worklist's store would not open or its address could not be listened on.
    #[error("worklist: {0}")]
    Worklist(String),
    /// The metrics address could not be listened on.
    #[error("[metrics] listen: {0}")]
    Metrics(String),
}

impl Agent {
    /// Opens the inbox (and the worklist, when configured: its store and its listening socket, so
    /// a port in use is an error at start, not later) and prepares the clients.
    pub async fn new(config: AgentConfig) -> Result<Self, StartError> {
        let inbox = Inbox::open(&config.inbox_path).await?;
        let hub = HubClient::new(&config.hub_url, config.gateway_id, &config.credential);
        let mut forwarder = Forwarder::new(config.allow.clone())
            .with_destination_auth(&config.destination_auth)
            .map_err(StartError::DestinationAuth)?;
        let mut worklist = None;
        if let Some(settings) = &config.worklist {
            let store = WorklistStore::open(&config.inbox_path)
                .await
                .map_err(|e| StartError::Worklist(e.to_string()))?;
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .map_err(|e| {
                    StartError::Worklist(format!("listening on {}: {e}", settings.listen))
                })?;
            forwarder =
                forwarder.with_worklist(store.clone(), settings.settings.station_ae_title.clone());
            worklist = Some((listener, store));
        }
        let probe = worklist.as_ref().zip(config.worklist.as_ref()).and_then(
            |((listener, _), settings)| {
                let mut address = listener.local_addr().ok()?;
                if address.ip().is_unspecified() {
                    address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                Some(WorklistProbe {
                    address,
                    called: settings.settings.ae_title.clone(),
                    // A worklist that admits only some modalities admits the first of them.
                    calling: settings
                        .settings
                        .allowed_calling_ae_titles
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "SCREENING_ECHO".into()),
                })
            },
        );
        let echo = EchoChecks {
            signatures: config.signatures.clone(),
            worklist: probe,
        };
        let observe = match config.metrics_listen {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .map_err(|e| StartError::Metrics(format!("listening on {address}: {e}")))?,
            ),
            None => None,
        };
        Ok(Self {
            config,
            inbox,
            hub,
            forwarder,
            worklist,
            echo,
            observe,
            forwarding: Arc::default(),
            started: Instant::now(),
        })
    }

    /// The address the worklist listens on, when it is served (the port may have been 0).
    pub fn worklist_address(&self) -> Option<std::net::SocketAddr> {
        self.worklist
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// The address `/metrics`, `/healthz` and `/readyz` are served on, when configured.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.observe
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// The inbox, for inspection.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Runs until `shutdown` becomes true. Work in hand (a forward, a report) finishes first; a
    /// fetch or a wait is abandoned (leased messages the hub sent meanwhile are redelivered).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), InboxError> {
        tracing::info!(
            gateway_id = %self.config.gateway_id,
            version = AGENT_VERSION,
            "agent started"
        );
        let signatures = &self.config.signatures;
        if signatures.checks() {
            let keys: Vec<_> = signatures.key_ids().map(|id| id.to_string()).collect();
            tracing::info!(
                ?keys,
                required = signatures.required(),
                "orders are checked against the hub's keys"
            );
        } else {
            tracing::warn!(
                "orders are not checked: list the hub's public key in [signatures] hub_key_files"
            );
        }
        tokio::spawn(prune_daily(
            self.inbox.clone(),
            self.worklist.as_ref().map(|(_, store)| store.clone()),
            shutdown.clone(),
        ));
        let worklist_store = self.worklist.as_ref().map(|(_, store)| store.clone());
        if let (Some((listener, store)), Some(settings)) =
            (self.worklist.take(), self.config.worklist.clone())
        {
            tracing::info!(listen = %settings.listen, ae_title = %settings.settings.ae_title, "worklist served");
            tokio::spawn(report_procedures(
                store.clone(),
                self.hub.clone(),
                self.config.hub_backoff,
                shutdown.clone(),
            ));
            tokio::spawn(crate::worklist::serve(
                listener,
                settings.settings,
                store,
                shutdown.clone(),
            ));
        }
        // What the relay listener says of its control channel; `None` without a relay.
        let listener_state = self
            .config
            .relay
            .as_ref()
            .map(|_| Arc::new(tokio::sync::watch::channel(false).0));
        let mut listener_changes = listener_state.as_ref().map(|state| state.subscribe());
        if let Some(endpoint) = self.config.relay.clone() {
            let pushed = PushedMessages {
                echo: self.echo.clone(),
                inbox: self.inbox.clone(),
                signatures: self.config.signatures.clone(),
                forwarder: self.forwarder.clone(),
                forwarding: self.forwarding.clone(),
                max_attempts: self.config.max_attempts,
                retry: self.config.retry,
            };
            let handler = move |message: GatewayMessage| {
                let pushed = pushed.clone();
                async move { pushed.handle(message).await }
            };
            let stopped = shutdown.clone();
            let connected = listener_state.clone().expect("made above for a relay");
            tokio::spawn(async move {
                if let Err(error) = listen_reporting(
                    endpoint,
                    ListenerTiming::default(),
                    handler,
                    stopped,
                    connected,
                )
                .await
                {
                    tracing::error!(%error, "relay listener stopped; messages still arrive by polling");
                }
            });
        }
        let mut hub_failures = 0u32;
        let hub_reachable = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(listener) = self.observe.take() {
            let observed = observe::Observed {
                inbox: self.inbox.clone(),
                hub_reachable: hub_reachable.clone(),
                listener: listener_state.as_ref().map(|state| state.subscribe()),
                worklist: worklist_store.clone(),
                handle: observe::recorder(),
            };
            tracing::info!(listen = ?listener.local_addr().ok(), "metrics and health served");
            tokio::spawn(observe::serve(listener, observed, shutdown.clone()));
        }
        let mut beats = Beats {
            last: None,
            listener_reported: None,
            worklist: worklist_store,
            hub_reachable: hub_reachable.clone(),
        };
        let mut arrived = Vec::new();
        while !*shutdown.borrow() {
            // Heartbeat first, so a starting agent shows up at once ("health proven by traffic").
            let listener_now = listener_changes.as_ref().map(|changes| *changes.borrow());
            if hub_failures == 0 {
                self.heartbeat_if_due(&mut beats, listener_now).await?;
            }

            // 1. Fetch. Long-poll only when nothing else is due sooner.
            let wait = self.fetch_wait().await?;
            let fetched = tokio::select! {
                result = self.hub.fetch(wait) => Some(result),
                _ = shutdown.changed() => None,
            };
            match fetched {
                None => break,
                Some(Ok(messages)) => {
                    hub_failures = 0;
                    hub_reachable.store(true, std::sync::atomic::Ordering::SeqCst);
                    for message in messages {
                        if message.message_type.is_echo() {
                            self.report_echo(&message).await;
                        } else {
                            arrived.push(message);
                        }
                    }
                }
                Some(Err(error)) => {
                    hub_failures += 1;
                    hub_reachable.store(false, std::sync::atomic::Ordering::SeqCst);
                    tracing::warn!(%error, failures = hub_failures, "hub unreachable");
                }
            }

            // 2. Forward what is due; 3. report outcomes. Neither is interrupted by shutdown. What
            // just arrived goes first, from memory: the inbox is only written, not read again, on
            // the way from the hub to the destination and back.
            let handed_on = self
                .take_in_and_forward(std::mem::take(&mut arrived))
                .await?;
            let mut reported = self.report(handed_on).await?;
            self.forward_due().await?;
            if reported.is_ok() {
                reported = self.report_outcomes().await?;
            }

            // 4. Pause: back off from an unreachable hub, or wait out the poll interval.
            let pause = if hub_failures > 0 || reported.is_err() {
                self.config
                    .hub_backoff
                    .delay_with_jitter(hub_failures.max(1))
            } else {
                match self.config.fetch {
                    FetchMode::Poll { interval } => interval,
                    FetchMode::LongPoll { .. } => Duration::ZERO,
                }
            };
            // The pause is kept whatever happens to the relay listener: a change is only told to
            // the hub at once, in a heartbeat (the configured poll interval still holds).
            let resume_at = tokio::time::Instant::now() + pause;
            while !pause.is_zero() && tokio::time::Instant::now() < resume_at {
                let listener_changed = async {
                    match listener_changes.as_mut() {
                        Some(changes) => changes.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep_until(resume_at) => break,
                    _ = shutdown.changed() => break,
                    changed = listener_changed => {
                        if !changed {
                            // The listener's task ended: nothing more will change.
                            listener_changes = None;
                        } else if hub_failures == 0 {
                            let listener_now =
                                listener_changes.as_ref().map(|changes| *changes.borrow());
                            self.heartbeat_if_due(&mut beats, listener_now).await?;
                        }
                    }
                }
            }
        }
        // A pushed message's forward may still be being recorded after its reply: on disk before
        // the agent says it stopped.
        drop(self.forwarding.lock().await);
        tracing::info!(gateway_id = %self.config.gateway_id, "agent stopped");
        Ok(())
    }

    /// Sends a heartbeat when one is due, or at once when the relay listener's state differs from
    /// what the hub last heard.
    async fn heartbeat_if_due(
        &self,
        beats: &mut Beats,
        listener_now: Option<bool>,
    ) -> Result<(), InboxError> {
        let due = beats
            .last
            .is_none_or(|at| at.elapsed() >= self.config.heartbeat_interval);
        if !due && listener_now == beats.listener_reported {
            return Ok(());
        }
        let heartbeat = Heartbeat {
            agent_version: AGENT_VERSION.into(),
            uptime_seconds: self.started.elapsed().as_secs(),
            inbox_depth: self.inbox.depth().await?,
            relay_listener_connected: listener_now,
            worklist: beats.worklist.as_ref().map(|store| WorklistHealth {
                last_query_at: store.last_query_at(),
            }),
        };
        match self.hub.heartbeat(&heartbeat).await {
            Ok(()) => {
                beats.last = Some(Instant::now());
                beats.listener_reported = listener_now;
                beats
                    .hub_reachable
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            Err(error) => {
                beats
                    .hub_reachable
                    .store(false, std::sync::atomic::Ordering::SeqCst);
                tracing::warn!(%error, "heartbeat failed")
            }
        }
        Ok(())
    }

    /// How long the next fetch may wait: zero in poll mode or when work is due, else up to the
    /// configured long-poll wait but not past the next forwarding retry.
    async fn fetch_wait(&self) -> Result<Duration, InboxError> {
        let FetchMode::LongPoll { wait } = self.config.fetch else {
            return Ok(Duration::ZERO);
        };
        if !self.inbox.unreported().await?.is_empty() {
            return Ok(Duration::ZERO);
        }
        Ok(match self.inbox.next_retry_at().await? {
            Some(at) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(wait),
            None => wait,
        })
    }

    /// Forwards what is due for a (re)try in the inbox. The inbox is read under the forwarding
    /// lock: read before it, a pushed message being forwarded at that moment would still look
    /// due, and be forwarded again once the push let go.
    async fn forward_due(&self) -> Result<(), InboxError> {
        let forwarding = self.forwarding.lock().await;
        let due = self.inbox.due_for_forwarding(Utc::now()).await?;
        self.forward(due, &forwarding, None, false).await.map(drop)
    }

    /// Takes fetched messages into the inbox and forwards the new ones from memory; returns
    /// those finished, for reporting, with the hub's answers already heard. Under the forwarding
    /// lock from taking in to forwarding, as the relay listener is: the same message pushed
    /// meanwhile is seen as taken, or waits.
    async fn take_in_and_forward(
        &self,
        messages: Vec<GatewayMessage>,
    ) -> Result<Forwarded, InboxError> {
        if messages.is_empty() {
            return Ok(Forwarded::default());
        }
        let forwarding = self.forwarding.lock().await;
        let now = Utc::now();
        // A new message alone (the usual case: sends come seconds apart) is stored, without
        // waiting for the disk, while it is forwarded, and confirmed while its forwarding is
        // recorded: the one sync of the hand-off (the forward's record, which writes out the
        // arrival too) then overlaps a request instead of adding to it. Nothing can be lost by
        // it: the hub keeps the message until confirmed, and hands it out again if the agent's
        // inbox loses it first. Several go one after another and in one confirmation after.
        if let [message] = messages.as_slice() {
            if new_and_signed(&self.inbox, &self.config.signatures, message, now) {
                let entry = InboxEntry::fresh(message.clone(), now);
                return self
                    .forward(vec![entry], &forwarding, Some(&self.hub), true)
                    .await;
            }
        }
        let mut fresh = Vec::with_capacity(messages.len());
        for message in messages {
            if admit(&self.inbox, &self.config.signatures, &message, now).await? == Admitted::Fresh
            {
                fresh.push(InboxEntry::fresh(message, now));
            }
        }
        self.forward(fresh, &forwarding, None, false).await
    }

    /// Forwards `entries`, the caller holding the forwarding lock; returns those finished
    /// (forwarded, or failed for good) with their outcome recorded, for reporting. With
    /// `confirm_alongside`, each one forwarded is confirmed to that hub as its forwarding is
    /// recorded; with `store_alongside`, each (claimed new) is stored as it is forwarded.
    async fn forward(
        &self,
        entries: Vec<InboxEntry>,
        _forwarding: &tokio::sync::MutexGuard<'_, ()>,
        confirm_alongside: Option<&HubClient>,
        store_alongside: bool,
    ) -> Result<Forwarded, InboxError> {
        let mut forwarded = Forwarded {
            finished: Vec::with_capacity(entries.len()),
            heard: std::collections::HashMap::new(),
        };
        for mut entry in entries {
            let id = entry.message.message_id;
            let attempt = attempt_forward(
                &self.forwarder,
                &self.inbox,
                &entry,
                (self.config.max_attempts, self.config.retry),
                store_alongside,
                Recorded::Alone(confirm_alongside),
            )
            .instrument(tracing::info_span!("message", message_id = %id))
            .await?;
            match attempt {
                Attempt::Forwarded { at, heard } => {
                    entry.forwarded_at = Some(at);
                    if let Some(Ok(outcome)) = heard {
                        forwarded.heard.insert(id, outcome);
                    }
                }
                Attempt::Failed { at, error } => {
                    entry.failed_at = Some(at);
                    entry.last_error = Some(error);
                }
                Attempt::WillRetry(_) => continue,
            }
            forwarded.finished.push(entry);
        }
        Ok(forwarded)
    }

    /// Answers a polled echo to the hub: confirmed when every check passes, else failed with
    /// the reason. Nothing is stored: a lost answer leaves the path unproven, which is the truth.
    async fn report_echo(&self, message: &GatewayMessage) {
        let id = message.message_id;
        let outcome = self.echo.answer(message).await;
        observe::echo_answered(outcome.is_ok());
        let reported = match &outcome {
            Ok(()) => self.hub.confirm(id).await,
            Err(why) => self.hub.fail(id, why).await,
        };
        match (outcome, reported) {
            (Ok(()), Ok(_)) => tracing::debug!(echo_id = %id, "echo answered"),
            (Err(why), Ok(_)) => {
                tracing::warn!(echo_id = %id, error = %why, "echo answered: a check failed")
            }
            (_, Err(error)) => tracing::warn!(echo_id = %id, %error, "answering the echo failed"),
        }
    }

    /// Reports outcomes; `Err` (after logging) when the hub could not be reached, to back off.
    async fn report_outcomes(&self) -> Result<Result<(), AgentError>, InboxError> {
        let unreported = self.inbox.unreported().await?;
        self.report(Forwarded {
            finished: unreported,
            heard: std::collections::HashMap::new(),
        })
        .await
    }

    /// Reports the outcomes of `unreported` (forwarded or failed entries) the hub has not
    /// answered yet, and records each one the hub acknowledged; `Err` (after logging) when the hub
    /// could not be reached.
    async fn report(
        &self,
        Forwarded {
            finished: unreported,
            heard: mut batched,
        }: Forwarded,
    ) -> Result<Result<(), AgentError>, InboxError> {
        // Several confirmations waiting (a backlog, or the hub was unreachable) go in one request.
        let forwarded: Vec<MessageId> = unreported
            .iter()
            .filter(|entry| {
                entry.forwarded_at.is_some() && !batched.contains_key(&entry.message.message_id)
            })
            .map(|entry| entry.message.message_id)
            .collect();
        if forwarded.len() > 1 {
            match self.hub.confirm_many(&forwarded).await {
                Ok(Some(outcomes)) => batched.extend(forwarded.into_iter().zip(outcomes)),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(messages = forwarded.len(), %error, "reporting the outcomes failed");
                    return Ok(Err(error));
                }
            }
        }
        for entry in unreported {
            let id = entry.message.message_id;
            let result = if let Some(outcome) = batched.remove(&id) {
                Ok(outcome)
            } else if entry.forwarded_at.is_some() {
                self.hub.confirm(id).await
            } else {
                let reason = entry
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "forward: failed".into());
                self.hub.fail(id, &reason).await
            };
            match result {
                Ok(ReportOutcome::Accepted) => {
                    self.inbox.mark_reported(id, Utc::now()).await?;
                    tracing::info!(
                        message_id = %id,
                        outcome = if entry.forwarded_at.is_some() { "confirmed" } else { "failed" },
                        "outcome reported to the hub"
                    );
                }
                Ok(ReportOutcome::Refused(why)) => {
                    // Retrying cannot change the hub's mind; keep the record and move on.
                    self.inbox.mark_reported(id, Utc::now()).await?;
                    tracing::warn!(message_id = %id, error = %why, "the hub refused the outcome");
                }
                Err(error) => {
                    tracing::warn!(message_id = %id, %error, "reporting the outcome failed");
                    return Ok(Err(error));
                }
            }
        }
        Ok(Ok(()))
    }
}

/// True when `message`'s signature holds (or none is checked) and the inbox did not hold it
/// ([`Inbox::claim_new`], in memory): to be stored while it is forwarded. Anything else goes
/// through [`admit`].
fn new_and_signed(
    inbox: &Inbox,
    signatures: &screening_core::signing::TrustedHubKeys,
    message: &GatewayMessage,
    now: chrono::DateTime<Utc>,
) -> bool {
    signatures.verify(message, now).is_ok() && inbox.claim_new(message.message_id)
}

/// What [`admit`] made of a message.
#[derive(Debug, PartialEq)]
enum Admitted {
    /// New to the inbox, to be forwarded.
    Fresh,
    /// Already in the inbox: its record says what is left to do.
    Redelivered,
    /// Refused on arrival (its signature), with the reason: reported, never forwarded.
    Refused(String),
}

/// Takes a fetched or pushed message into the inbox: for forwarding when its signature holds (or
/// none is checked), else as refused, to be reported to the hub with the phase `verify
/// signature` and never forwarded.
async fn admit(
    inbox: &Inbox,
    signatures: &screening_core::signing::TrustedHubKeys,
    message: &GatewayMessage,
    now: chrono::DateTime<Utc>,
) -> Result<Admitted, InboxError> {
    let id = message.message_id;
    match signatures.verify(message, now) {
        Ok(()) => {
            let new = inbox.receive(message, now).await?;
            tracing::info!(message_id = %id, redelivered = !new, "message received");
            Ok(if new {
                Admitted::Fresh
            } else {
                Admitted::Redelivered
            })
        }
        Err(refusal) => {
            let reason = refusal.to_string();
            let new = inbox.refuse(message, now, &reason).await?;
            tracing::warn!(message_id = %id, first_time = new, error = %reason, "message refused, not forwarded");
            Ok(Admitted::Refused(reason))
        }
    }
}

/// Messages just forwarded (or failed for good), for reporting, and what the hub already
/// answered for some of them.
#[derive(Default)]
struct Forwarded {
    finished: Vec<InboxEntry>,
    heard: std::collections::HashMap<MessageId, ReportOutcome>,
}

/// How a successful forward is recorded.
enum Recorded<'a> {
    /// On its own; with a hub, confirmed to it at the same time (the hub may hear before the
    /// record is on disk: should the agent stop in between, the message is forwarded again and
    /// confirmed again, which the hub takes as already confirmed).
    Alone(Option<&'a HubClient>),
    /// As reported too, in the same commit: the hub hears in the reply to its push.
    AnsweredByReply,
    /// As [`Recorded::AnsweredByReply`], but while the reply is on its way: the commit runs on
    /// after the attempt returns, holding the forwarding lock until it is on disk, so the next
    /// push (the same message again, say) sees the record. Should the agent stop in between,
    /// the message is forwarded again and the hub, already answered, hears it again.
    AnsweredByReplyMeanwhile(tokio::sync::OwnedMutexGuard<()>),
}

/// What became of one forwarding attempt, as recorded in the inbox.
enum Attempt {
    /// The destination took it; `heard`, the hub's answer to a confirmation sent alongside.
    Forwarded {
        at: chrono::DateTime<Utc>,
        heard: Option<Result<ReportOutcome, AgentError>>,
    },
    /// Failed; tried again later.
    WillRetry(String),
    /// Failed for good (attempts used up, or a destination this agent may never use).
    Failed {
        at: chrono::DateTime<Utc>,
        error: String,
    },
}

/// Forwards `entry` once and records the outcome, a success as `recorded` says. Answered by
/// reply: the hub hears the outcome in the reply to its push, so a success is recorded as
/// reported in the same commit (if that reply is lost, the hub redelivers after its lease and
/// [`Inbox::receive`] clears the mark). `store_alongside`: a new message, already verified and
/// claimed, stored in the inbox ([`Inbox::store_arrival`]) while it is forwarded.
async fn attempt_forward(
    forwarder: &Forwarder,
    inbox: &Inbox,
    entry: &InboxEntry,
    (max_attempts, retry): (u32, Backoff),
    store_alongside: bool,
    recorded: Recorded<'_>,
) -> Result<Attempt, InboxError> {
    let id = entry.message.message_id;
    let forwarded = if store_alongside {
        let (stored, forwarded) = tokio::join!(
            inbox.store_arrival(&entry.message, entry.received_at),
            forwarder.forward(&entry.message)
        );
        stored?;
        tracing::info!(message_id = %id, redelivered = false, "message received");
        forwarded
    } else {
        forwarder.forward(&entry.message).await
    };
    match forwarded {
        Ok(()) => {
            let now = Utc::now();
            let heard = match recorded {
                Recorded::AnsweredByReply => {
                    inbox.mark_forwarded(id, now, true).await?;
                    None
                }
                Recorded::AnsweredByReplyMeanwhile(forwarding) => {
                    let inbox = inbox.clone();
                    tokio::spawn(async move {
                        if let Err(error) = inbox.mark_forwarded(id, now, true).await {
                            tracing::error!(message_id = %id, %error, "recording a forward failed: it will be forwarded again");
                        }
                        drop(forwarding);
                    });
                    None
                }
                Recorded::Alone(None) => {
                    inbox.mark_forwarded(id, now, false).await?;
                    None
                }
                Recorded::Alone(Some(hub)) => {
                    let (marked, heard) =
                        tokio::join!(inbox.mark_forwarded(id, now, false), hub.confirm(id));
                    marked?;
                    Some(heard)
                }
            };
            observe::forwarded("ok");
            tracing::info!("message forwarded");
            Ok(Attempt::Forwarded { at: now, heard })
        }
        Err(error) => {
            let attempt = entry.attempts + 1;
            // A destination this agent may not use never will be: reported at once.
            let retry_in = (error.may_succeed_later() && attempt < max_attempts)
                .then(|| retry.delay_with_jitter(attempt));
            let error = error.to_string();
            let now = Utc::now();
            inbox.mark_attempt_failed(id, now, &error, retry_in).await?;
            observe::forwarded(if retry_in.is_some() {
                "retry"
            } else {
                "failed"
            });
            tracing::warn!(
                attempt,
                will_retry = retry_in.is_some(),
                %error,
                "forwarding failed"
            );
            Ok(match retry_in {
                Some(_) => Attempt::WillRetry(error),
                None => Attempt::Failed { at: now, error },
            })
        }
    }
}

/// How long the agent keeps finished messages and past worklist items.
pub const RETAIN_DAYS: i64 = 7;

/// A minute after start and then daily: forgets messages whose outcome the hub has had for
/// [`RETAIN_DAYS`], and worklist items scheduled that long ago, so the agent's file stays small.
async fn prune_daily(
    inbox: Inbox,
    worklist: Option<WorklistStore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        wait = Duration::from_secs(24 * 60 * 60);
        let cutoff = Utc::now() - chrono::TimeDelta::days(RETAIN_DAYS);
        match inbox.prune(cutoff).await {
            Ok(pruned) => tracing::info!(pruned, "inbox: forgot settled messages"),
            Err(error) => tracing::error!(%error, "inbox: pruning failed"),
        }
        if let Some(worklist) = &worklist {
            let before = screening_core::london::today(cutoff);
            match worklist.prune(before, cutoff).await {
                Ok(pruned) => tracing::info!(pruned, "worklist: forgot past items"),
                Err(error) => tracing::error!(%error, "worklist: pruning failed"),
            }
        }
    }
}

/// Sends the hub what the modalities reported (queued durably by the worklist), oldest first, until
/// each is acknowledged; retries with backoff while the hub is unreachable.
async fn report_procedures(
    store: WorklistStore,
    hub: HubClient,
    backoff: Backoff,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    while !*shutdown.borrow() {
        match store.unreported().await {
            Ok(reports) => {
                for (id, report) in reports {
                    let span = tracing::info_span!("procedure", message_id = %report.message_id);
                    let _entered = span.enter();
                    match hub.report_procedure(&report).await {
                        Ok(outcome) => {
                            failures = 0;
                            if let ReportOutcome::Refused(why) = outcome {
                                tracing::warn!(error = %why, "the hub refused a procedure report; not retried");
                            } else {
                                tracing::info!(
                                    status = report.status.code(),
                                    "procedure reported to the hub"
                                );
                            }
                            if let Err(error) = store.mark_reported(id, Utc::now()).await {
                                tracing::error!(%error, "worklist: recording a report as sent failed");
                            }
                        }
                        Err(error) => {
                            failures += 1;
                            tracing::warn!(%error, failures, "reporting a procedure failed; will retry");
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                failures += 1;
                tracing::error!(%error, "worklist: reading the reports to send failed");
            }
        }
        // Wait for a new report, a retry, a periodic look, or the end.
        let pause = if failures > 0 {
            backoff.delay_with_jitter(failures)
        } else {
            Duration::from_secs(30)
        };
        tokio::select! {
            _ = store.report_queued(), if failures == 0 => {}
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// What the heartbeat needs between rounds.
struct Beats {
    /// When the hub last took a heartbeat.
    last: Option<Instant>,
    /// What the hub last heard of the relay listener.
    listener_reported: Option<bool>,
    /// The worklist, whose last query the heartbeat reports.
    worklist: Option<WorklistStore>,
    /// Set by each call to the hub, for `/readyz`.
    hub_reachable: Arc<std::sync::atomic::AtomicBool>,
}

/// What the agent checks before answering an echo: the hub's signature, as for an order, and
/// its worklist's DICOM listener when it serves one.
#[derive(Clone)]
struct EchoChecks {
    signatures: screening_core::signing::TrustedHubKeys,
    worklist: Option<WorklistProbe>,
}

/// How the agent reaches its own worklist listener, as a modality would.
#[derive(Clone)]
struct WorklistProbe {
    address: std::net::SocketAddr,
    called: String,
    calling: String,
}

impl EchoChecks {
    /// Answers an echo without forwarding it; `Err` names the check that failed.
    async fn answer(&self, message: &GatewayMessage) -> Result<(), String> {
        self.signatures
            .verify(message, Utc::now())
            .map_err(|refusal| refusal.to_string())?;
        match &self.worklist {
            Some(probe) => {
                crate::worklist::check_listener(probe.address, &probe.calling, &probe.called).await
            }
            None => Ok(()),
        }
    }
}

/// What the relay listener needs to take a pushed message into the inbox and forward it.
#[derive(Clone)]
struct PushedMessages {
    echo: EchoChecks,
    inbox: Inbox,
    signatures: screening_core::signing::TrustedHubKeys,
    forwarder: Forwarder,
    forwarding: Arc<tokio::sync::Mutex<()>>,
    max_attempts: u32,
    retry: Backoff,
}

impl PushedMessages {
    /// Stores the message, forwards it unless it was forwarded before, and answers the hub. The
    /// reply is the confirmation, so the outcome counts as reported.
    async fn handle(&self, message: GatewayMessage) -> RelayReply {
        let id = message.message_id;
        let reply = |status, reason: Option<String>| RelayReply {
            status,
            message_id: id,
            reason,
        };
        if message.message_type.is_echo() {
            let outcome = self.echo.answer(&message).await;
            observe::echo_answered(outcome.is_ok());
            return match outcome {
                Ok(()) => reply(RelayStatus::Processed, None),
                Err(why) => reply(RelayStatus::Error, Some(why)),
            };
        }
        let forwarding = self.forwarding.clone().lock_owned().await;
        let result: Result<RelayReply, InboxError> = async {
            let now = Utc::now();
            let policy = (self.max_attempts, self.retry);
            // A new message, its signature good, is stored (not waiting for the disk) while it
            // is forwarded, as a polled one is (see `take_in_and_forward`), and its forward is
            // recorded (synced, which writes the arrival out too) while the reply goes back, as
            // a polled one is confirmed while it is recorded.
            if new_and_signed(&self.inbox, &self.signatures, &message, now) {
                let entry = InboxEntry::fresh(message, now);
                let attempt = attempt_forward(
                    &self.forwarder,
                    &self.inbox,
                    &entry,
                    policy,
                    true,
                    Recorded::AnsweredByReplyMeanwhile(forwarding),
                )
                .await?;
                return Ok(relay_reply(id, attempt));
            }
            // A refusal is also reported over HTTP by the polling loop, so the hub hears of it
            // even when the sender on the relay was not the hub.
            let entry = match admit(&self.inbox, &self.signatures, &message, now).await? {
                Admitted::Refused(reason) => return Ok(reply(RelayStatus::Error, Some(reason))),
                Admitted::Fresh => InboxEntry::fresh(message, now),
                Admitted::Redelivered => match self.inbox.entry(id).await? {
                    Some(entry) if entry.forwarded_at.is_some() => {
                        self.inbox.mark_reported(id, Utc::now()).await?;
                        return Ok(reply(RelayStatus::Processed, None));
                    }
                    Some(entry) if entry.failed_at.is_some() => {
                        return Ok(reply(RelayStatus::Error, entry.last_error));
                    }
                    Some(entry) => entry,
                    None => InboxEntry::fresh(message, now),
                },
            };
            let attempt = attempt_forward(
                &self.forwarder,
                &self.inbox,
                &entry,
                policy,
                false,
                Recorded::AnsweredByReply,
            )
            .await?;
            Ok(relay_reply(id, attempt))
        }
        .instrument(tracing::info_span!("message", message_id = %id))
        .await;
        result.unwrap_or_else(|error| {
            tracing::error!(message_id = %id, %error, "inbox: storing a pushed message failed");
            reply(RelayStatus::Error, Some(format!("gateway inbox: {error}")))
        })
    }
}

/// The reply to a pushed message: processed once forwarded, else why not.
fn relay_reply(message_id: MessageId, attempt: Attempt) -> RelayReply {
    let (status, reason) = match attempt {
        Attempt::Forwarded { .. } => (RelayStatus::Processed, None),
        Attempt::WillRetry(error) | Attempt::Failed { error, .. } => {
            (RelayStatus::Error, Some(error))
        }
    };
    RelayReply {
        status,
        message_id,
        reason,
    }
}
