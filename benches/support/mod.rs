//! What every benchmark's table needs.

/// The `p`th percentile (nearest rank) of latencies sorted ascending.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}
