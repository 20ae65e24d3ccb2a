//! Wakes the waiters of a gateway when one of its messages becomes pending, within this process.
//!
//! PostgreSQL adapters feed it from `LISTEN` as well, so waiters in every instance wake up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use screening_core::ids::GatewayId;
use tokio::sync::Notify;

/// One [`Notify`] per gateway that anyone has waited for.
#[derive(Default)]
pub(crate) struct Notifier {
    gateways: Mutex<HashMap<GatewayId, Arc<Notify>>>,
}

impl Notifier {
    /// The handle to wait on for a gateway, created on first use.
    pub fn handle(&self, gateway_id: GatewayId) -> Arc<Notify> {
        let mut gateways = self
            .gateways
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        gateways.entry(gateway_id).or_default().clone()
    }

    /// Wakes everyone currently waiting for the gateway; nobody waiting means nothing to do.
    pub fn notify(&self, gateway_id: GatewayId) {
        let gateways = self
            .gateways
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(notify) = gateways.get(&gateway_id) {
            notify.notify_waiters();
        }
    }

    /// Wakes every waiter of every gateway, so each looks again: for when wake-ups may have been
    /// missed (the `LISTEN` connection was lost for a moment).
    pub fn notify_all(&self) {
        let gateways = self
            .gateways
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for notify in gateways.values() {
            notify.notify_waiters();
        }
    }
}
