//! Azure Relay Hybrid Connections (Microsoft's Hybrid Connections protocol): SAS tokens, the client (sender
//! and listener), the hub's dispatcher and the project's local relay.

pub mod client;
#[cfg(feature = "hub")]
pub mod dispatcher;
#[cfg(feature = "local-relay")]
pub mod local;
pub mod sas;
