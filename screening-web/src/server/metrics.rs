//! Prometheus metrics at `/metrics`, for the people who run the service: what the hub counts
//! (deliveries, confirmations, failures, redeliveries, commit → confirmed latency), what the
//! database says at each scrape (messages by gateway and status, the oldest pending message, when
//! each gateway was last seen, the database pool's connections), HTTP request durations by route,
//! and open live-status streams.
//!
//! Never public by accident: the endpoint answers only a bearer token set at start-up
//! (`SCREENING_METRICS_TOKEN`), and is not there at all without one.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use screening_core::message::MessageStatus;
use screening_store::now_utc;
use subtle::ConstantTimeEq;

use super::AppState;

/// HTTP requests, by route template (never the concrete path: ids stay out), method and status.
pub const HTTP_REQUEST_DURATION: &str = "screening_http_request_duration_seconds";
/// Live-status streams open now.
pub const LIVE_STREAMS: &str = "screening_live_status_streams";
/// The live-status streams' reads of the database (one per change to a watched clinic).
pub const LIVE_STATUS_READS: &str = "screening_live_status_reads_total";
/// Messages by gateway and status, read at each scrape.
pub const MESSAGES: &str = "screening_messages";
/// Age of each gateway's oldest pending message, read at each scrape (0 when none waits).
pub const OLDEST_PENDING: &str = "screening_oldest_pending_message_age_seconds";
/// Seconds since each gateway was last seen, read at each scrape (absent when never seen).
pub const LAST_SEEN: &str = "screening_gateway_last_seen_age_seconds";
/// Per gateway: 1 while its agent reports its relay listener connected, 0 when it reports it
/// disconnected; absent when the agent says nothing (no relay).
pub const RELAY_LISTENER: &str = "screening_gateway_relay_listener_connected";
/// Alerts open now, by rule (every rule, zeros included), read at each scrape.
pub const ALERTS_OPEN: &str = "screening_alerts_open";
/// The database's read connections, open and idle, at each scrape.
pub const DATABASE_CONNECTIONS: &str = "screening_database_connections";

/// Latency buckets in seconds, from a fast hand-off (1 ms) to a slow one (1 min).
const BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The process's Prometheus recorder, installed on first use (a process has one `metrics`
/// recorder); every app in the process renders from it.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("the buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed in this process");
            describe();
            let upkeep = handle.clone();
            // Histograms are kept in buffers until upkeep folds them in; without a scrape for a
            // while they must not grow.
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .expect("a thread for metrics upkeep");
            handle
        })
        .clone()
}

fn describe() {
    screening_gateway::hub::metrics::describe();
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "HTTP requests by route, method and status."
    );
    metrics::describe_gauge!(LIVE_STREAMS, "Live-status streams open now.");
    metrics::describe_counter!(
        LIVE_STATUS_READS,
        "Database reads by live-status streams (each on a change to its clinic)."
    );
    metrics::describe_gauge!(MESSAGES, "Messages by gateway and status.");
    metrics::describe_gauge!(
        OLDEST_PENDING,
        metrics::Unit::Seconds,
        "Age of the gateway's oldest pending message (0 when none waits)."
    );
    metrics::describe_gauge!(
        DATABASE_CONNECTIONS,
        "The database's read connections, by state (open, idle)."
    );
    metrics::describe_gauge!(ALERTS_OPEN, "Alerts open now, by rule.");
    metrics::describe_gauge!(
        LAST_SEEN,
        metrics::Unit::Seconds,
        "Seconds since the gateway was last seen."
    );
    metrics::describe_gauge!(
        RELAY_LISTENER,
        "1 while the gateway's agent reports its relay listener connected, 0 when disconnected."
    );
}

/// `GET /metrics`: 404 when no token is configured, 401 without the right bearer token, else the
/// Prometheus text format.
pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(expected) = state.config.metrics_token.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "authenticate: send the metrics token as Authorization: Bearer <token>\n",
        )
            .into_response();
    }
    if let Err(error) = record_database_figures(&state).await {
        tracing::error!(%error, "metrics: reading the database figures failed (store)");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("read the database: {error}\n"),
        )
            .into_response();
    }
    let Some(handle) = state.metrics.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Sets the gauges the database answers, as they are now.
async fn record_database_figures(
    state: &AppState,
) -> Result<(), screening_core::ports::StoreError> {
    let now = now_utc();
    let (open, idle) = state.store.connections();
    metrics::gauge!(DATABASE_CONNECTIONS, "state" => "open").set(open as f64);
    metrics::gauge!(DATABASE_CONNECTIONS, "state" => "idle").set(idle as f64);
    let alerts = state.store.open_alerts().await?;
    for rule in screening_core::alert::AlertRule::ALL {
        let count = alerts.iter().filter(|alert| alert.rule == rule).count();
        metrics::gauge!(ALERTS_OPEN, "rule" => rule.code()).set(count as f64);
    }
    for figures in state.store.gateway_figures().await? {
        let gateway = figures.gateway_id.to_string();
        for status in MessageStatus::ALL {
            let count = figures.messages(status);
            metrics::gauge!(MESSAGES, "gateway" => gateway.clone(), "status" => status.code())
                .set(count as f64);
        }
        let oldest = figures
            .oldest_pending_at
            .map(|at| (now - at).as_seconds_f64().max(0.0))
            .unwrap_or(0.0);
        metrics::gauge!(OLDEST_PENDING, "gateway" => gateway.clone()).set(oldest);
        if let Some(connected) = figures.relay_listener_connected {
            metrics::gauge!(RELAY_LISTENER, "gateway" => gateway.clone())
                .set(f64::from(u8::from(connected)));
        }
        if let Some(seen) = figures.last_seen_at {
            metrics::gauge!(LAST_SEEN, "gateway" => gateway)
                .set((now - seen).as_seconds_f64().max(0.0));
        }
    }
    Ok(())
}

/// Times every request, labelled by the route it matched (`unmatched` for a 404 fallback).
pub async fn time_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(
        HTTP_REQUEST_DURATION,
        "route" => route,
        "method" => method,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// Counts a live-status stream as open for as long as it is held.
pub struct OpenStream(());

impl OpenStream {
    /// A stream opens.
    pub fn open() -> Self {
        metrics::gauge!(LIVE_STREAMS).increment(1.0);
        Self(())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(LIVE_STREAMS).decrement(1.0);
    }
}
