//! Gateway credential hashes kept in memory for a moment. One delivery makes three requests within
//! milliseconds (the answered long poll, its confirmation, the next long poll), and each would
//! otherwise read the same hash from the database: with a thousand gateways woken at once those
//! reads were a third of the database's work. A take's look for an echo reads the same row, and
//! keeps its hash too (`take_echo`): the poll's answer goes out at the take, so the confirmation
//! that follows finds the hash kept even when the poll waited longer than the keep.
//!
//! A credential issued through this store replaces its entry at once, so the old one stops working
//! here immediately; one issued elsewhere (another instance on the same PostgreSQL, or the
//! `--issue-credential` command on the same SQLite file) is seen within [`CREDENTIAL_KEEP`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use screening_core::prelude::GatewayId;

/// How long a hash read from the database is used before it is read again.
pub const CREDENTIAL_KEEP: Duration = Duration::from_secs(2);

/// The hashes read within [`CREDENTIAL_KEEP`], by gateway. Only issued credentials are kept, so
/// requests naming made-up gateways add nothing; entries past their time are dropped as new ones
/// come, so the map holds the gateways active in the last few seconds, not every gateway.
#[derive(Default)]
pub(crate) struct CredentialCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_gateway: HashMap<GatewayId, (Instant, String)>,
    /// When entries past their time were last dropped.
    swept_at: Option<Instant>,
    /// Counts replaced credentials, so a read that raced a replacement keeps nothing.
    replacements: u64,
}

/// Taken before reading a hash from the database; [`CredentialCache::keep`] keeps what was read
/// only if no credential was replaced in between (the read may have found the old one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadTicket(u64);

impl CredentialCache {
    /// The hash read for `gateway_id` within [`CREDENTIAL_KEEP`] of `now`, if any.
    pub(crate) fn get(&self, gateway_id: GatewayId, now: Instant) -> Option<String> {
        let entries = self.entries.lock().expect("not poisoned");
        entries
            .by_gateway
            .get(&gateway_id)
            .filter(|(read_at, _)| now.saturating_duration_since(*read_at) < CREDENTIAL_KEEP)
            .map(|(_, hash)| hash.clone())
    }

    /// Taken before a read whose hash may be kept.
    pub(crate) fn ticket(&self) -> ReadTicket {
        ReadTicket(self.entries.lock().expect("not poisoned").replacements)
    }

    /// Keeps `hash`, read for `gateway_id` at `now` after `ticket` was taken.
    pub(crate) fn keep(&self, ticket: ReadTicket, gateway_id: GatewayId, hash: &str, now: Instant) {
        let mut entries = self.entries.lock().expect("not poisoned");
        if entries.replacements != ticket.0 {
            return;
        }
        let due = entries
            .swept_at
            .is_none_or(|at| now.saturating_duration_since(at) >= CREDENTIAL_KEEP);
        if due {
            entries.by_gateway.retain(|_, (read_at, _)| {
                now.saturating_duration_since(*read_at) < CREDENTIAL_KEEP
            });
            entries.swept_at = Some(now);
        }
        entries
            .by_gateway
            .insert(gateway_id, (now, hash.to_string()));
    }

    /// Forgets `gateway_id`'s hash: its credential has been replaced.
    pub(crate) fn forget(&self, gateway_id: GatewayId) {
        let mut entries = self.entries.lock().expect("not poisoned");
        entries.by_gateway.remove(&gateway_id);
        entries.replacements += 1;
    }

    /// How many hashes are held (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().expect("not poisoned").by_gateway.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway() -> GatewayId {
        GatewayId::from_uuid(uuid::Uuid::new_v4())
    }

    #[test]
    fn a_hash_is_used_for_its_keep_then_read_again() {
        let cache = CredentialCache::default();
        let (a, start) = (gateway(), Instant::now());
        assert_eq!(cache.get(a, start), None);
        cache.keep(cache.ticket(), a, "hash-a", start);
        assert_eq!(
            cache.get(a, start + CREDENTIAL_KEEP / 2).as_deref(),
            Some("hash-a")
        );
        assert_eq!(cache.get(a, start + CREDENTIAL_KEEP), None);
        cache.keep(cache.ticket(), a, "hash-b", start);
        cache.forget(a);
        assert_eq!(cache.get(a, start), None);
    }

    #[test]
    fn a_read_that_raced_a_replacement_is_not_kept() {
        let cache = CredentialCache::default();
        let (a, now) = (gateway(), Instant::now());
        let ticket = cache.ticket();
        // The credential is replaced while the read (which found the old hash) is under way.
        cache.forget(a);
        cache.keep(ticket, a, "old-hash", now);
        assert_eq!(cache.get(a, now), None);
        cache.keep(cache.ticket(), a, "new-hash", now);
        assert_eq!(cache.get(a, now).as_deref(), Some("new-hash"));
    }

    #[test]
    fn entries_past_their_time_are_dropped_as_new_ones_come() {
        let cache = CredentialCache::default();
        let start = Instant::now();
        for _ in 0..100 {
            cache.keep(cache.ticket(), gateway(), "old", start);
        }
        assert_eq!(cache.len(), 100);
        cache.keep(cache.ticket(), gateway(), "new", start + CREDENTIAL_KEEP);
        assert_eq!(cache.len(), 1);
    }
}
