//! Azure Relay Hybrid Connections (see `shared/relay-protocol.md`). So far: SAS tokens.
//! The listener, sender and local relay come next.

pub mod sas;
