//! # screening-gateway
//!
//! Both ends of the link between the screening hub and the gateways inside hospital networks:
//!
//! - [`hub`]: an axum `Router` that the web app (or any axum service) mounts: the proof of
//!   concept's polling API, long-polling, confirmations, failures and heartbeats, with per-gateway
//!   credentials ([`auth`]).
//! - [`agent`]: the gateway process: fetch, durable inbox, destinations (HTTP, file, log),
//!   confirmations. The binary `screening-gateway run` wraps it.
//! - [`relay`]: Azure Relay Hybrid Connections; so far its SAS tokens.

pub mod agent;
pub mod auth;
pub mod backoff;
pub mod hub;
pub mod relay;
pub mod testing;

/// Writes one structured log line (JSON) to standard error. Callers pass ids and masked values only:
/// never a name or a full NHS number.
pub fn log_event(event: &str, fields: &[(&str, String)]) {
    let mut line = serde_json::Map::new();
    line.insert("at".into(), chrono::Utc::now().to_rfc3339().into());
    line.insert("event".into(), event.into());
    for (key, value) in fields {
        line.insert((*key).into(), value.clone().into());
    }
    eprintln!("{}", serde_json::Value::Object(line));
}
