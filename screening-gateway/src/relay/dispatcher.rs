//! The hub's relay dispatcher: for each gateway whose transport is relay, takes its pending messages
//! as soon as they are committed (woken by the store's notifier; a slow safety sweep otherwise),
//! sends each on the gateway's rendezvous (kept open while messages follow each other), awaits the
//! gateway's reply, and records the outcome. The web request that created the message never waits for any of this.
//!
//! Messages are taken with a lease, so several hub instances on one PostgreSQL never send the same
//! message at the same time; a send that fails returns the message to pending with the reason
//! (naming the phase), retried with backoff; a message the gateway keeps refusing is parked as
//! failed after `max_attempts`.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use screening_core::prelude::*;
use screening_store::{now_utc, ScreeningStore};
use tracing::Instrument;

use super::client::{RelayEndpoint, RelaySender};
use crate::backoff::Backoff;
use crate::hub::metrics;

/// How the dispatcher sends.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// How long a taken message is held before another instance may send it.
    pub lease: Duration,
    /// How long to wait for the gateway's reply on a rendezvous.
    pub reply_timeout: Duration,
    /// How long a rendezvous is kept open with nothing to send; the next message after that
    /// opens a new one.
    pub keep_open: Duration,
    /// Deliveries after which a message the gateway refuses is parked as failed.
    pub max_attempts: u32,
    /// The longest pause between looks at the outbox when no wake-up comes.
    pub safety_sweep: Duration,
    /// Pauses after a failed send.
    pub retry: Backoff,
    /// Lifetime of the SAS tokens it signs.
    pub token_lifetime: Duration,
    /// How often to look for relay gateways created or changed since the start.
    pub rescan: Duration,
    /// The only folder `file:` key references may name (none: only `env:SCREENING_SECRET_…`).
    pub secrets_dir: Option<std::path::PathBuf>,
    /// Signs every message sent, as the polling API does.
    pub signing_key: Option<screening_core::signing::HubSigningKey>,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            reply_timeout: Duration::from_secs(30),
            keep_open: Duration::from_secs(20),
            max_attempts: 10,
            safety_sweep: Duration::from_secs(5),
            retry: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(30),
            },
            token_lifetime: Duration::from_secs(3600),
            rescan: Duration::from_secs(30),
            secrets_dir: None,
            signing_key: None,
        }
    }
}

/// The relay base URL for a gateway's namespace: a `ws://` or `wss://` URL as given (the local
/// relay), otherwise `wss://{namespace}` (Azure).
pub fn relay_base_url(namespace: &str) -> String {
    if namespace.starts_with("ws://") || namespace.starts_with("wss://") {
        namespace.trim_end_matches('/').to_string()
    } else {
        format!("wss://{namespace}")
    }
}

/// Reads a secret from where its reference points.
pub fn resolve_secret(
    secret: &SecretRef,
    secrets_dir: Option<&std::path::Path>,
) -> Result<String, String> {
    secret.check_fence(secrets_dir).map_err(|e| e.to_string())?;
    match secret {
        SecretRef::Env(name) => {
            std::env::var(name).map_err(|_| format!("the environment variable {name} is not set"))
        }
        SecretRef::File(path) => {
            // Once links are followed, the file must still be inside the secrets directory.
            let real = |p: &std::path::Path| {
                std::fs::canonicalize(p).map_err(|e| format!("reading {}: {e}", p.display()))
            };
            let dir = secrets_dir.expect("checked by the fence");
            if !real(std::path::Path::new(path))?.starts_with(real(dir)?) {
                return Err(format!(
                    "the key file {path} leads outside the secrets directory {}",
                    dir.display()
                ));
            }
            std::fs::read_to_string(path)
                .map(|text| text.trim().to_string())
                .map_err(|e| format!("reading {path}: {e}"))
        }
    }
}

/// Starts the dispatcher: one task per relay gateway, under a supervisor that looks for relay
/// gateways created or changed since (every `rescan`) and restarts their tasks. Fails at once if the
/// store cannot list gateways; later listing failures keep the tasks running as they are.
/// Aborting the returned handle stops every task.
pub async fn spawn_dispatchers(
    store: Arc<dyn ScreeningStore>,
    config: DispatcherConfig,
) -> Result<tokio::task::JoinHandle<()>, StoreError> {
    let gateways = store.gateways().await?;
    Ok(tokio::spawn(supervise(store, config, gateways)))
}

/// Aborts its task when dropped, so stopping the supervisor stops what it started.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn supervise(
    store: Arc<dyn ScreeningStore>,
    config: DispatcherConfig,
    mut gateways: Vec<Gateway>,
) {
    let mut running: std::collections::HashMap<GatewayId, (RelayTransport, AbortOnDrop)> =
        Default::default();
    loop {
        let relays: std::collections::HashMap<GatewayId, RelayTransport> = gateways
            .iter()
            .filter_map(|gateway| match &gateway.transport {
                Transport::Relay(relay) => Some((gateway.id, relay.clone())),
                Transport::Polling => None,
            })
            .collect();
        // Stop tasks for gateways that are gone, no longer relay, or changed their relay settings.
        running.retain(|id, (relay, _)| relays.get(id) == Some(relay));
        for (id, relay) in relays {
            running.entry(id).or_insert_with(|| {
                let task = tokio::spawn(dispatch(store.clone(), config.clone(), id, relay.clone()));
                (relay, AbortOnDrop(task))
            });
        }
        tokio::time::sleep(config.rescan).await;
        // On a listing failure the tasks keep running as they are.
        match store.gateways().await {
            Ok(latest) => gateways = latest,
            Err(error) => {
                tracing::error!(%error, "relay dispatcher: listing gateways failed (store)")
            }
        }
    }
}

/// Dispatches one relay gateway's messages for ever.
pub async fn dispatch(
    store: Arc<dyn ScreeningStore>,
    config: DispatcherConfig,
    gateway_id: GatewayId,
    relay: RelayTransport,
) {
    let lease = TimeDelta::from_std(config.lease).unwrap_or(TimeDelta::seconds(60));
    let mut failures = 0u32;
    // The key is read once, and again only after trouble (it may have been rotated), not on
    // every message; the sender (and its open rendezvous) is dropped with it.
    let mut sender: Option<RelaySender> = None;
    loop {
        let mut current = match sender.take() {
            Some(current) => current,
            None => match resolve_secret(&relay.key_ref, config.secrets_dir.as_deref()) {
                Ok(key) => RelaySender::new(
                    RelayEndpoint {
                        base_url: relay_base_url(&relay.namespace),
                        hybrid_connection: relay.hybrid_connection.clone(),
                        key_name: relay.key_name.clone(),
                        key,
                        token_lifetime: config.token_lifetime,
                    },
                    config.keep_open,
                ),
                Err(error) => {
                    tracing::error!(%gateway_id, %error, "relay dispatcher: authenticate: no relay key");
                    failures += 1;
                    tokio::time::sleep(config.retry.delay_with_jitter(failures)).await;
                    continue;
                }
            },
        };
        let now = now_utc();
        // The echo's look and the claim side by side (each woken dispatcher waits for both).
        // The echo is sent first, on the rendezvous an order would use: a link that looks open
        // but carries nothing fails it, and the admin sees the path unproven.
        let (echo, taken) = tokio::join!(
            store.take_echo(gateway_id, now, now + lease),
            store.take_pending(gateway_id, now, now + lease, 16)
        );
        match echo {
            Ok(Some((echo_id, requested_at))) => {
                send_echo(
                    &store,
                    &config,
                    &mut current,
                    gateway_id,
                    echo_id,
                    requested_at,
                )
                .instrument(tracing::info_span!("echo", %echo_id, %gateway_id))
                .await
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%gateway_id, %error, "relay dispatcher: taking the echo failed (store)")
            }
        }
        let taken = match taken {
            Ok(taken) => taken,
            Err(error) => {
                tracing::error!(%gateway_id, %error, "relay dispatcher: taking messages failed (store)");
                sender = Some(current);
                tokio::time::sleep(config.retry.delay_with_jitter(1)).await;
                continue;
            }
        };
        metrics::delivered(gateway_id, metrics::Path::Relay, taken.len());
        if taken.is_empty() {
            if let Err(error) = store
                .wait_for_pending(gateway_id, config.safety_sweep)
                .await
            {
                tracing::error!(%gateway_id, %error, "relay dispatcher: waiting for messages failed (store)");
                tokio::time::sleep(config.retry.delay_with_jitter(1)).await;
            }
            sender = Some(current);
            continue;
        }
        let mut trouble = false;
        for message in taken {
            let span = tracing::info_span!("message", message_id = %message.id, %gateway_id);
            let sent = send_one(&store, &config, &mut current, gateway_id, &message)
                .instrument(span.clone())
                .await;
            let _entered = span.enter();
            match sent {
                Ok(()) => tracing::info!("relay: confirmed by the gateway"),
                Err(reason) => {
                    trouble = true;
                    tracing::warn!(attempt = message.attempts, error = %reason, "relay: send failed");
                }
            }
        }
        if trouble {
            failures += 1;
            tokio::time::sleep(config.retry.delay_with_jitter(failures)).await;
        } else {
            failures = 0;
            sender = Some(current);
        }
    }
}

/// Sends the gateway's echo and records its answer: processed proves the path; a refusal, or a
/// rendezvous that fails at any phase, says why not. An echo is never retried: the next one
/// asks again.
async fn send_echo(
    store: &Arc<dyn ScreeningStore>,
    config: &DispatcherConfig,
    sender: &mut RelaySender,
    gateway_id: GatewayId,
    echo_id: MessageId,
    requested_at: chrono::DateTime<chrono::Utc>,
) {
    let wire = crate::hub::sign(
        screening_core::echo::echo_message(echo_id, requested_at),
        config.signing_key.as_ref(),
        now_utc(),
    );
    let error = match sender.send(&wire, config.reply_timeout).await {
        Ok(reply) if reply.status == RelayStatus::Processed => None,
        Ok(reply) => Some(
            reply
                .reason
                .unwrap_or_else(|| "the gateway answered the echo with an error".into()),
        ),
        Err(error) => Some(error.to_string()),
    };
    match store
        .answer_echo(
            gateway_id,
            echo_id,
            now_utc(),
            error.as_deref().map_or(Ok(()), Err),
        )
        .await
    {
        Ok(round_trip) => {
            metrics::echo_answered(
                gateway_id,
                metrics::Path::Relay,
                error.is_none().then_some(round_trip),
            );
            match error {
                None => tracing::info!(round_trip_ms = round_trip, "relay: echo answered"),
                Some(error) => tracing::warn!(%error, "relay: echo failed"),
            }
        }
        // A newer echo replaced it meanwhile: that one will be sent.
        Err(StoreError::NotFound { .. }) => {}
        Err(error) => {
            tracing::error!(%error, "relay dispatcher: recording the echo failed (store)")
        }
    }
}

/// Sends one taken message and records the outcome; `Err` carries the reason it was not confirmed.
async fn send_one(
    store: &Arc<dyn ScreeningStore>,
    config: &DispatcherConfig,
    sender: &mut RelaySender,
    gateway_id: GatewayId,
    message: &Message,
) -> Result<(), String> {
    let wire = crate::hub::wire_message(message, config.signing_key.as_ref(), now_utc());
    match sender.send(&wire, config.reply_timeout).await {
        Ok(reply) if reply.status == RelayStatus::Processed => {
            let now = now_utc();
            let outcome = store
                .confirm(gateway_id, message.id, now)
                .await
                .map_err(|e| e.to_string())?;
            if outcome == Confirmed::Now {
                metrics::confirmed(gateway_id, metrics::Path::Relay, message.created_at, now);
            }
            Ok(())
        }
        // The gateway received it and refused: that counts towards parking it as failed.
        Ok(reply) => {
            let reason = reply
                .reason
                .unwrap_or_else(|| "forward to destination: the gateway reported an error".into());
            let outcome = if message.attempts >= config.max_attempts {
                metrics::failed(gateway_id, metrics::Path::Relay);
                store.fail(gateway_id, message.id, now_utc(), &reason).await
            } else {
                store.release(gateway_id, message.id, &reason).await
            };
            outcome.map_err(|e| e.to_string())?;
            Err(reason)
        }
        // The relay or the listener could not be reached: never the message's fault, so it stays
        // pending (with the reason) however long the outage lasts.
        Err(error) => {
            let reason = error.to_string();
            store
                .release(gateway_id, message.id, &reason)
                .await
                .map_err(|e| e.to_string())?;
            Err(reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_namespace_means_azure_and_a_url_is_kept() {
        assert_eq!(
            relay_base_url("contoso.servicebus.windows.net"),
            "wss://contoso.servicebus.windows.net"
        );
        assert_eq!(
            relay_base_url("ws://127.0.0.1:9400/"),
            "ws://127.0.0.1:9400"
        );
    }

    #[test]
    fn a_missing_secret_is_named() {
        let name = "SCREENING_SECRET_SURELY_UNSET_KEY";
        let error = resolve_secret(&SecretRef::Env(name.into()), None).unwrap_err();
        assert!(error.contains(name), "{error}");
    }

    #[test]
    fn the_hubs_own_variables_and_files_outside_the_secrets_directory_are_never_read() {
        // Set in every process that runs these tests; a reference must not reach it.
        let error = resolve_secret(&SecretRef::Env("PATH".into()), None).unwrap_err();
        assert!(error.contains("SCREENING_SECRET_"), "{error}");

        let secrets = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let key = secrets.path().join("leeds.key");
        std::fs::write(&key, "c2VuZC1rZXk=\n").unwrap();
        let inside = SecretRef::File(key.display().to_string());
        assert_eq!(
            resolve_secret(&inside, Some(secrets.path())).unwrap(),
            "c2VuZC1rZXk="
        );
        let outside_file = elsewhere.path().join("private");
        std::fs::write(&outside_file, "not for the relay").unwrap();
        let outside = SecretRef::File(outside_file.display().to_string());
        assert!(resolve_secret(&outside, Some(secrets.path())).is_err());
        // A link inside the folder to a file outside it.
        let link = secrets.path().join("link.key");
        std::os::unix::fs::symlink(&outside_file, &link).unwrap();
        let linked = SecretRef::File(link.display().to_string());
        let error = resolve_secret(&linked, Some(secrets.path())).unwrap_err();
        assert!(error.contains("leads outside"), "{error}");
    }
}
