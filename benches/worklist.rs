//! The DICOM Modality Worklist's speed, measured as a modality sees it over loopback DICOM:
//! C-FIND for today's MG steps with 1,000 and 10,000 items on the worklist (40 of them today), and
//! "Send to modality" committed → the order findable by C-FIND, through long-poll. Prints a
//! Markdown table.
//!
//! ```text
//! cargo bench --bench worklist
//! SCREENING_BENCH_QUERIES=200 SCREENING_BENCH_SENDS=50 cargo bench --bench worklist
//! ```

mod support;
use support::{env_number, percentile};

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use screening::core::prelude::*;
use screening::core::worklist::{accession_number, uid_from_message};
use screening::gateway::agent::Inbox;
use screening::gateway::testing::{
    serve_worklist, start_agent, start_worklist, worklist_order, LocalHub,
};
use screening::gateway::worklist::modality::{self, Modality};
use screening::gateway::worklist::WorklistSettings;

/// p50 and p99 of C-FIND for today's 40 steps among `items` on the worklist.
async fn find_latency(items: usize, queries: usize) -> (f64, f64, usize) {
    let worklist = start_worklist(Vec::new()).await;
    let today = Utc::now();
    for n in 0..items {
        // 40 today, the rest spread over the past and coming half-years, never today.
        let day = match n {
            0..40 => 0,
            _ => match (n as i64 % 364) - 182 {
                d if d >= 0 => d + 1,
                d => d,
            },
        };
        let starts_at = (today + TimeDelta::days(day)).to_rfc3339();
        let order = worklist_order("Janet", "Williams", &starts_at, "");
        worklist.store.store(&order, today).await.unwrap();
    }
    let date = screening::core::london::local(today)
        .format("%Y%m%d")
        .to_string();
    let query = modality::todays_query(&date, "");
    let mut machine = Modality::connect(
        &format!("127.0.0.1:{}", worklist.port),
        "MAMMO1",
        "SCREENING_MWL",
    )
    .await
    .unwrap();
    let mut latencies = Vec::with_capacity(queries);
    let mut matches = 0;
    for _ in 0..queries {
        let started = Instant::now();
        let answer = machine.find(&query).await.unwrap();
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
        matches = answer.matches.len();
    }
    machine.release().await.ok();
    latencies.sort_by(f64::total_cmp);
    (
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        matches,
    )
}

/// One send's timestamps, from the hub's commit to the item being findable and the outcome
/// confirmed; each step is the difference of two neighbours.
struct SendTimes {
    /// The hub's `created_at` (the commit starts).
    created: DateTime<Utc>,
    /// The hub leased it to the long-poll (commit, wake-up, take).
    delivered: DateTime<Utc>,
    /// The agent had the response (HTTP answer, parse).
    received: DateTime<Utc>,
    /// The agent's inbox and worklist had it on disk (inbox write, worklist write).
    forwarded: DateTime<Utc>,
    /// The bench's C-FIND first returned it.
    findable: DateTime<Utc>,
    /// The hub recorded the confirmation.
    confirmed: DateTime<Utc>,
}

/// Sends made before the counted ones.
const WARM_UP: usize = 20;

/// How sends follow one another.
#[derive(Clone, Copy, PartialEq)]
enum Pace {
    /// The next once the last is confirmed, as a clinic's sends (seconds apart) are.
    AfterConfirmation,
    /// The next as soon as the last is findable, while the agent is still confirming it.
    BackToBack,
}

/// "Send to modality" committed → findable by accession number, over long-poll, `sends` times.
async fn commit_to_findable(sends: usize, pace: Pace) -> Vec<SendTimes> {
    let hub = LocalHub::start().await;
    hub.route_to("mwl:").await;
    let folder = tempfile::tempdir().unwrap();
    let inbox_path = folder.path().join("agent.db");
    let mut config = hub.agent_config(&inbox_path);
    let port = serve_worklist(&mut config, WorklistSettings::default());
    let agent = start_agent(config).await;
    let inbox = Inbox::open(&inbox_path).await.unwrap();
    let mut machine = Modality::connect(&format!("127.0.0.1:{port}"), "MAMMO1", "SCREENING_MWL")
        .await
        .unwrap();
    let first = hub.send(0).await;
    hub.until_status(first.id, MessageStatus::Confirmed).await;
    let query = modality::accession_query(&accession_number(first.appointment_id));
    let mut found = Vec::with_capacity(sends);
    // The first sends of a run warm the pools, SQLite's caches and the allocator, which a gateway
    // that has run for a day has long done: they are sent but not counted.
    for n in 0..WARM_UP + sends {
        // Each resend replaces the item with a new study; it is findable once C-FIND returns it.
        let message = hub.resend(0).await;
        let study = uid_from_message(message.id);
        loop {
            let answer = machine.find(&query).await.unwrap();
            if answer
                .matches
                .iter()
                .any(|found| modality::summary(found).study_instance_uid == study)
            {
                break;
            }
            // A modality asks now and then; asking flat out would take the cores the hand-off needs.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if n >= WARM_UP {
            found.push((message.clone(), Utc::now()));
        }
        if pace == Pace::AfterConfirmation {
            hub.until_status(message.id, MessageStatus::Confirmed).await;
        }
    }
    let mut times = Vec::with_capacity(sends);
    for (message, findable) in found {
        let confirmed = hub.until_status(message.id, MessageStatus::Confirmed).await;
        let entry = inbox.entry(message.id).await.unwrap().unwrap();
        times.push(SendTimes {
            created: message.created_at,
            delivered: confirmed.delivered_at.unwrap(),
            received: entry.received_at,
            forwarded: entry.forwarded_at.unwrap(),
            findable,
            confirmed: confirmed.confirmed_at.unwrap(),
        });
    }
    machine.release().await.ok();
    agent.stop.send(true).ok();
    times
}

/// How one step's duration is read off a send's timestamps.
type Step = fn(&SendTimes) -> f64;

fn ms(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).as_seconds_f64() * 1e3
}

/// p50 and p99 of `step` over `times`.
fn spread(times: &[SendTimes], step: impl Fn(&SendTimes) -> f64) -> (f64, f64) {
    let mut values: Vec<f64> = times.iter().map(step).collect();
    values.sort_by(f64::total_cmp);
    (percentile(&values, 50.0), percentile(&values, 99.0))
}

fn main() {
    screening::gateway::logging::run_main(run())
}

async fn run() {
    // Enough samples that p99 is not just the worst one or two.
    let queries: usize = env_number("SCREENING_BENCH_QUERIES", 2_000);
    let sends: usize = env_number("SCREENING_BENCH_SENDS", 200);
    println!("| Measure | Items on the worklist | p50 | p99 |");
    println!("|---|---|---|---|");
    // SCREENING_BENCH_SKIP_FIND=1 measures the hand-off alone.
    let items_to_try: &[usize] = if std::env::var_os("SCREENING_BENCH_SKIP_FIND").is_some() {
        &[]
    } else {
        &[1_000, 10_000]
    };
    for &items in items_to_try {
        let (p50, p99, matches) = find_latency(items, queries).await;
        println!(
            "| C-FIND today's MG steps ({matches} matches, {queries} queries) | {items} | {p50:.2} ms | {p99:.2} ms |"
        );
    }
    let back_to_back = commit_to_findable(sends, Pace::BackToBack).await;
    let (p50, p99) = spread(&back_to_back, |t| ms(t.created, t.findable));
    println!(
        "| Send to modality committed → findable, long-poll, sent back to back ({sends} sends) | 1 | {p50:.2} ms | {p99:.2} ms |"
    );
    let times = commit_to_findable(sends, Pace::AfterConfirmation).await;
    let (p50, p99) = spread(&times, |t| ms(t.created, t.findable));
    println!(
        "| Send to modality committed → findable, long-poll, each after the last is confirmed ({sends} sends) | 1 | {p50:.2} ms | {p99:.2} ms |"
    );
    println!();
    println!(
        "Where the time goes, sends after confirmation (each step's own p50 and p99; they do not add up to the total's p99):"
    );
    println!();
    println!("| Step | p50 | p99 |");
    println!("|---|---|---|");
    let steps: [(&str, Step); 6] = [
        ("hub: commit, wake the long-poll, take", |t| {
            ms(t.created, t.delivered)
        }),
        ("HTTP answer reaches the agent", |t| {
            ms(t.delivered, t.received)
        }),
        ("agent: inbox write, worklist write", |t| {
            ms(t.received, t.forwarded)
        }),
        (
            "stored → C-FIND finds it (the bench asks every ~1 ms)",
            |t| ms(t.forwarded, t.findable),
        ),
        ("total: committed → findable", |t| {
            ms(t.created, t.findable)
        }),
        ("stored → hub records the confirmation", |t| {
            ms(t.forwarded, t.confirmed)
        }),
    ];
    for (name, step) in steps {
        let (p50, p99) = spread(&times, step);
        println!("| {name} | {p50:.2} ms | {p99:.2} ms |");
    }
    // The tail, send by send: which step a slow one lost its time in, and when it happened.
    let mut slowest: Vec<&SendTimes> = times.iter().collect();
    slowest.sort_by(|a, b| ms(b.created, b.findable).total_cmp(&ms(a.created, a.findable)));
    println!();
    println!(
        "The five slowest sends (ms: hub, HTTP, agent writes, finding it; seconds into the run):"
    );
    println!();
    let start = times.first().map(|t| t.created).unwrap_or_else(Utc::now);
    for t in slowest.into_iter().take(5) {
        println!(
            "- {:.2} ms = {:.2} + {:.2} + {:.2} + {:.2}, at {:.1} s",
            ms(t.created, t.findable),
            ms(t.created, t.delivered),
            ms(t.delivered, t.received),
            ms(t.received, t.forwarded),
            ms(t.forwarded, t.findable),
            ms(start, t.created) / 1e3,
        );
    }
}
