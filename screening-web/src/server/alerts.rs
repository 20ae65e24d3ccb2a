//! The alert watcher: on a schedule it looks at every gateway, opens and resolves alerts by the
//! core's rules (`screening_core::alert`), and sends each opening and resolution to a webhook as
//! JSON signed with HMAC-SHA256, retried with backoff until the receiver takes it. Every instance
//! may run it: the store opens an alert once and hands each notification to one sender at a time.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use screening_core::alert::{AlertThresholds, AlertTransition};
use screening_core::prelude::StoreError;
use screening_gateway::backoff::Backoff;
use screening_store::{alert_changes, now_utc, AlertEventRecord, ScreeningStore};
use sha2::Sha256;

/// The header carrying the body's HMAC-SHA256 (`sha256=<hex>`), keyed with the webhook secret.
pub const SIGNATURE_HEADER: &str = "x-screening-signature";

/// How long a claimed notification is held by its sender before another instance may try.
const SEND_LEASE: TimeDelta = TimeDelta::seconds(30);

/// Where alert notifications go.
#[derive(Clone)]
pub struct Webhook {
    /// The receiver's URL (http or https).
    pub url: reqwest::Url,
    /// The HMAC key receivers check the signature with.
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url.as_str())
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// How the watcher behaves.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// When each rule fires.
    pub thresholds: AlertThresholds,
    /// How often the gateways are looked at (and due notifications sent).
    pub check_every: Duration,
    /// Where openings and resolutions are sent; without one they are only stored and shown.
    pub webhook: Option<Webhook>,
    /// Retry timing for a receiver that fails.
    pub retry: Backoff,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            thresholds: AlertThresholds::default(),
            check_every: Duration::from_secs(30),
            webhook: None,
            retry: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(300),
            },
        }
    }
}

/// Looks at every gateway once at `now`: opens the alerts whose conditions became true and
/// resolves those whose conditions ended. Returns the events written.
pub async fn check_once(
    store: &dyn ScreeningStore,
    settings: &AlertSettings,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, AlertTransition)>, StoreError> {
    let changes = alert_changes(store, &settings.thresholds, now).await?;
    let written = store
        .apply_alert_changes(&changes, now, settings.webhook.is_some())
        .await?;
    for (event_id, transition) in &written {
        tracing::warn!(event_id, transition = transition.code(), "alert");
    }
    Ok(written)
}

/// The JSON a receiver gets for one alert event. It names gateways and rules, never a participant.
pub fn notification_body(event: &AlertEventRecord) -> Vec<u8> {
    let alert = &event.alert;
    serde_json::to_vec(&serde_json::json!({
        "event_id": event.id,
        "event": event.transition.code(),
        "occurred_at": event.occurred_at,
        "alert": {
            "id": alert.id,
            "rule": alert.rule.code(),
            "gateway_id": alert.gateway_id,
            "gateway": alert.gateway_name,
            "setting_id": alert.setting_id,
            "summary": alert.summary,
            "since": alert.since,
            "opened_at": alert.opened_at,
            "resolved_at": alert.resolved_at,
        },
    }))
    .expect("JSON values serialise")
}

/// `sha256=<hex HMAC-SHA256 of body keyed with secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends the notifications that are due, oldest first, until one fails or none is left. Returns
/// how many the receiver took.
pub async fn send_due(
    store: &dyn ScreeningStore,
    webhook: &Webhook,
    retry: &Backoff,
    client: &reqwest::Client,
) -> Result<usize, StoreError> {
    let mut sent = 0;
    while let Some(event) = store
        .claim_alert_notification(now_utc(), SEND_LEASE)
        .await?
    {
        match deliver(client, webhook, &event).await {
            Ok(()) => {
                store.alert_notification_sent(event.id, now_utc()).await?;
                sent += 1;
            }
            Err(error) => {
                let delay = retry.delay_with_jitter(event.webhook_attempts);
                tracing::warn!(event_id = event.id, attempt = event.webhook_attempts, %error, "alert webhook");
                let retry_at = now_utc() + TimeDelta::from_std(delay).unwrap_or(SEND_LEASE);
                store
                    .alert_notification_failed(event.id, &error, retry_at)
                    .await?;
                break;
            }
        }
    }
    Ok(sent)
}

/// One POST; the error names the phase that failed.
async fn deliver(
    client: &reqwest::Client,
    webhook: &Webhook,
    event: &AlertEventRecord,
) -> Result<(), String> {
    let body = notification_body(event);
    let response = client
        .post(webhook.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature(&webhook.secret, &body))
        .body(body)
        .send()
        .await
        .map_err(|error| {
            let phase = if error.is_connect() {
                "connect"
            } else {
                "send"
            };
            format!("{phase}: {error}")
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("await reply: the receiver answered HTTP {status}"))
    }
}

/// Runs the watcher until `stop` completes: a check, then the due notifications, every
/// `check_every`. A failing database is logged and tried again at the next tick.
pub fn spawn(
    store: Arc<dyn ScreeningStore>,
    settings: AlertSettings,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("the HTTP client builds");
    tokio::spawn(async move {
        let run = async {
            let mut ticks = tokio::time::interval(settings.check_every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(error) = check_once(store.as_ref(), &settings, now_utc()).await {
                    tracing::error!(%error, "alert check: read or write the database");
                }
                if let Some(webhook) = &settings.webhook {
                    if let Err(error) =
                        send_due(store.as_ref(), webhook, &settings.retry, &client).await
                    {
                        tracing::error!(%error, "alert webhook: read or write the database");
                    }
                }
            }
        };
        tokio::select! {
            () = run => {}
            () = stop => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_webhook_secret_is_not_in_its_debug() {
        let webhook = Webhook {
            url: "https://hooks.example/alerts".parse().unwrap(),
            secret: "a-very-secret-key".into(),
        };
        assert!(!format!("{webhook:?}").contains("a-very-secret-key"));
    }
}
