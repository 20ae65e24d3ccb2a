//! Retention on a schedule: once soon after start, then every day, each instance prunes what the
//! policy no longer keeps (`screening_store::RetentionStore`). Pruning is idempotent and chunked,
//! so two instances doing it at once only share the work.

use std::sync::Arc;
use std::time::Duration;

use screening_store::{now_utc, RetentionPolicy, ScreeningStore};

/// Rows removed per transaction.
const CHUNK: u32 = 500;

/// Prunes by `policy` after `first`, then every `every`, until `stop` completes.
pub fn spawn(
    store: Arc<dyn ScreeningStore>,
    policy: RetentionPolicy,
    first: Duration,
    every: Duration,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let run = async {
            tokio::time::sleep(first).await;
            loop {
                match store.prune(&policy, now_utc(), CHUNK).await {
                    Ok(pruned) => tracing::info!(
                        payloads = pruned.payloads,
                        messages = pruned.messages,
                        appointment_events = pruned.appointment_events,
                        admin_events = pruned.admin_events,
                        alerts = pruned.alerts,
                        sessions = pruned.sessions,
                        echo_events = pruned.echo_events,
                        "retention: pruned"
                    ),
                    Err(error) => tracing::error!(%error, "retention: read or write the database"),
                }
                tokio::time::sleep(every).await;
            }
        };
        tokio::select! {
            () = run => {}
            () = stop => {}
        }
    })
}
