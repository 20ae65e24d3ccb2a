//! What the hub counts, through the `metrics` facade: the embedding application chooses the
//! exporter (the web app serves Prometheus text at `/metrics`), and without one these calls cost
//! next to nothing. Labels carry gateway ids and transports, never patient data.

use chrono::{DateTime, Utc};
use screening_core::ids::GatewayId;

/// Messages a gateway took (marked delivered), by gateway and transport.
pub const DELIVERED: &str = "screening_messages_delivered_total";
/// Messages whose lease expired unconfirmed and were made pending again (or parked).
pub const REDELIVERED: &str = "screening_messages_redelivered_total";
/// Messages confirmed by their gateway, by gateway and transport.
pub const CONFIRMED: &str = "screening_messages_confirmed_total";
/// Messages parked as failed, by gateway and transport.
pub const FAILED: &str = "screening_messages_failed_total";
/// Seconds from "Send to modality" committed to confirmed by the gateway, by transport.
pub const COMMIT_TO_CONFIRMED: &str = "screening_commit_to_confirmed_seconds";
/// Echoes answered, by gateway, transport and outcome (`ok` or `failed`).
pub const ECHOES: &str = "screening_echoes_total";
/// Gauge: long polls waiting in this instance (the gateways connected by polling).
pub const LONG_POLLS_WAITING: &str = "screening_long_polls_waiting";
/// The last good echo's round trip, by gateway.
pub const ECHO_ROUND_TRIP: &str = "screening_echo_round_trip_seconds";

/// How a message reached its gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The gateway fetched it over HTTP (polling or long-polling).
    Poll,
    /// The hub pushed it through Azure Relay.
    Relay,
}

impl Path {
    /// The label value.
    pub const fn label(self) -> &'static str {
        match self {
            Path::Poll => "poll",
            Path::Relay => "relay",
        }
    }
}

/// `count` messages taken by `gateway` over `path`.
pub fn delivered(gateway: GatewayId, path: Path, count: usize) {
    if count > 0 {
        metrics::counter!(DELIVERED, "gateway" => gateway.to_string(), "transport" => path.label())
            .increment(count as u64);
    }
}

/// `count` leases expired.
pub fn redelivered(count: u64) {
    if count > 0 {
        metrics::counter!(REDELIVERED).increment(count);
    }
}

/// A message confirmed now (not a repeated confirmation), created at `created_at`.
pub fn confirmed(gateway: GatewayId, path: Path, created_at: DateTime<Utc>, now: DateTime<Utc>) {
    metrics::counter!(CONFIRMED, "gateway" => gateway.to_string(), "transport" => path.label())
        .increment(1);
    let seconds = (now - created_at).as_seconds_f64().max(0.0);
    metrics::histogram!(COMMIT_TO_CONFIRMED, "transport" => path.label()).record(seconds);
}

/// A message parked as failed.
pub fn failed(gateway: GatewayId, path: Path) {
    metrics::counter!(FAILED, "gateway" => gateway.to_string(), "transport" => path.label())
        .increment(1);
}

/// Counts an echo's answer; a good one also sets the gateway's round trip.
pub fn echo_answered(gateway: GatewayId, path: Path, round_trip_ms: Option<i64>) {
    let outcome = if round_trip_ms.is_some() {
        "ok"
    } else {
        "failed"
    };
    metrics::counter!(ECHOES, "gateway" => gateway.to_string(), "transport" => path.label(), "outcome" => outcome)
        .increment(1);
    if let Some(ms) = round_trip_ms {
        metrics::gauge!(ECHO_ROUND_TRIP, "gateway" => gateway.to_string()).set(ms as f64 / 1000.0);
    }
}

/// A long poll begins to wait.
pub fn long_poll_started() {
    metrics::gauge!(LONG_POLLS_WAITING).increment(1.0);
}

/// A long poll has ended, answered or not.
pub fn long_poll_ended() {
    metrics::gauge!(LONG_POLLS_WAITING).decrement(1.0);
}

/// Says what each metric is, once, for the exporter's `# HELP` lines.
pub fn describe() {
    metrics::describe_gauge!(
        LONG_POLLS_WAITING,
        "Long polls waiting in this instance (gateways connected by polling)."
    );
    metrics::describe_counter!(DELIVERED, "Messages a gateway took (marked delivered).");
    metrics::describe_counter!(
        REDELIVERED,
        "Messages whose lease expired unconfirmed and were made pending again or parked."
    );
    metrics::describe_counter!(CONFIRMED, "Messages confirmed by their gateway.");
    metrics::describe_counter!(FAILED, "Messages parked as failed.");
    metrics::describe_counter!(
        ECHOES,
        "Echoes answered through the path orders take, by outcome (ok or failed)."
    );
    metrics::describe_gauge!(
        ECHO_ROUND_TRIP,
        metrics::Unit::Seconds,
        "Round trip of the gateway's last good echo, from asked for to answered."
    );
    metrics::describe_histogram!(
        COMMIT_TO_CONFIRMED,
        metrics::Unit::Seconds,
        "Seconds from Send to modality committed to confirmed by the gateway."
    );
}
