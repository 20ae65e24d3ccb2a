//! Health proven by traffic, on a schedule: every `every`, each gateway whose last echo is older
//! than that gets a new one through the path its orders take. Several instances on one database
//! skip a gateway another instance has just echoed, so they do not replace each other's echoes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use screening_core::echo::EchoRecord;
use screening_core::prelude::*;
use screening_store::{now_utc, ScreeningStore};

/// Who asked, as the store records it.
pub const SCHEDULE: &str = "schedule";

/// True when a gateway with this record is due an echo at `now`: nothing in flight or answered
/// within `every`.
pub fn due(record: &EchoRecord, every: TimeDelta, now: DateTime<Utc>) -> bool {
    let latest = [record.requested_at, record.answered_at]
        .into_iter()
        .flatten()
        .max();
    latest.is_none_or(|at| now - at >= every)
}

/// Sends every gateway that is due an echo; returns how many were sent.
pub async fn send_due(
    store: &dyn ScreeningStore,
    every: TimeDelta,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut sent = 0;
    for (gateway_id, record) in store.echo_records().await? {
        if !due(&record, every, now) {
            continue;
        }
        store
            .request_echo(gateway_id, MessageId::generate(), now, SCHEDULE)
            .await?;
        sent += 1;
    }
    Ok(sent)
}

/// Starts the schedule; it ends when `stop` completes.
pub fn spawn(
    store: Arc<dyn ScreeningStore>,
    every: Duration,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let every_delta = TimeDelta::from_std(every).unwrap_or(TimeDelta::minutes(5));
    tokio::spawn(async move {
        let run = async {
            // A little after start, so the first echo proves a gateway soon after a deploy.
            let mut ticks = tokio::time::interval(every.min(Duration::from_secs(10)));
            loop {
                ticks.tick().await;
                if let Err(error) = send_due(store.as_ref(), every_delta, now_utc()).await {
                    tracing::error!(%error, "echo schedule: read or write the database");
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

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_400_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_gateway_is_due_when_nothing_was_asked_or_answered_within_the_period() {
        let every = TimeDelta::seconds(300);
        assert!(due(&EchoRecord::default(), every, t(0)));
        let asked = EchoRecord {
            requested_at: Some(t(0)),
            ..EchoRecord::default()
        };
        assert!(!due(&asked, every, t(299)));
        assert!(due(&asked, every, t(300)), "an unanswered echo is replaced");
        let answered = EchoRecord {
            answered_at: Some(t(100)),
            ..EchoRecord::default()
        };
        assert!(!due(&answered, every, t(399)));
        assert!(due(&answered, every, t(400)));
    }
}
