//! What every benchmark's table needs.

/// The `p`th percentile (nearest rank) of latencies sorted ascending.
// Not every bench reads one: outbox does not.
#[allow(dead_code)]
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// A number from the environment (`SCREENING_BENCH_…`), or `default` when unset or not a number.
// Not every bench reads one: live_status does not.
#[allow(dead_code)]
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
