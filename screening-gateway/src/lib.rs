//! # screening-gateway
//!
//! Both ends of the link between the screening hub and the gateways inside hospital networks, cut
//! by cargo features along where each part is deployed:
//!
//! - `agent` (default): [`agent`], the gateway process inside the hospital: fetch (poll or
//!   long-poll), durable inbox, destinations (HTTP, file, log), confirmations, and the relay
//!   listener. It links neither the hub's HTTP server nor PostgreSQL.
//! - `hub`: [`hub`], an axum `Router` the web app (or any axum service) mounts: the proof of
//!   concept's polling API, long-polling, confirmations, failures and heartbeats, with per-gateway
//!   credentials ([`auth`]); and the relay dispatcher that pushes messages.
//! - `worklist` (part of `agent`): [`worklist`], the DICOM Modality Worklist served to modalities.
//! - `relay`: [`relay`], Azure Relay Hybrid Connections: SAS tokens, the sender and the listener.
//! - `local-relay`: `relay::local`, a protocol-faithful Hybrid Connections relay for development
//!   and tests.
//! - `testing`: `testing`, the loopback harness for tests, examples and benches.
//!
//! Logs go through `tracing` ([`logging`] sets up the binaries' subscriber); fields carry ids and
//! masked NHS numbers only, never a name or a full NHS number.

#![warn(missing_docs)]

#[cfg(feature = "agent")]
pub mod agent;
#[cfg(feature = "worklist")]
mod agent_file;
#[cfg(feature = "hub")]
pub mod auth;
pub mod backoff;
#[cfg(feature = "hub")]
pub mod hub;
pub mod logging;
pub mod random;
#[cfg(feature = "relay")]
pub mod relay;
pub mod signing;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "worklist")]
pub mod worklist;
