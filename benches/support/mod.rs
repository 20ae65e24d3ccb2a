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

/// Hand-offs from this task to an OS thread and back, each one's time in µs, sorted: what each
/// sqlx SQLite call costs beyond SQLite itself (each connection lives on a worker thread of its
/// own, which the call wakes and which wakes the task back).
// Not every bench measures it: core does not.
#[allow(dead_code)]
pub async fn thread_handoffs(rounds: usize) -> Vec<f64> {
    thread_handoffs_after(rounds, std::time::Duration::ZERO).await
}

/// [`thread_handoffs`], each after `pause` in which both sides sleep: as each step of a hand-off
/// finds the threads it wakes when messages come seconds apart, not back to back.
#[allow(dead_code)]
pub async fn thread_handoffs_after(rounds: usize, pause: std::time::Duration) -> Vec<f64> {
    let (to_thread, from_tasks) = std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<()>>();
    let thread = std::thread::spawn(move || {
        for answer in from_tasks {
            let _ = answer.send(());
        }
    });
    let mut took = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let started = std::time::Instant::now();
        let (answer, answered) = tokio::sync::oneshot::channel();
        to_thread.send(answer).unwrap();
        answered.await.unwrap();
        took.push(started.elapsed().as_secs_f64() * 1e6);
    }
    drop(to_thread);
    thread.join().unwrap();
    took.sort_by(f64::total_cmp);
    took
}
