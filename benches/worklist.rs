//! The DICOM Modality Worklist's speed, measured as a modality sees it over loopback DICOM:
//! C-FIND for today's MG steps with 1,000 and 10,000 items on the worklist (40 of them today), and
//! "Send to modality" committed → the order findable by C-FIND, through long-poll. Prints a
//! Markdown table.
//!
//! ```text
//! cargo bench --bench worklist
//! SCREENING_BENCH_QUERIES=200 SCREENING_BENCH_SENDS=50 cargo bench --bench worklist
//! ```

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use screening::core::prelude::*;
use screening::core::worklist::{accession_number, uid_from_message};
use screening::gateway::testing::{
    serve_worklist, start_agent, start_worklist, worklist_order, LocalHub,
};
use screening::gateway::worklist::modality::{self, Modality};
use screening::gateway::worklist::WorklistSettings;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

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

/// p50 and p99 of "Send to modality" committed → findable by accession number, over long-poll.
async fn commit_to_findable(sends: usize) -> (f64, f64) {
    let hub = LocalHub::start().await;
    hub.route_to("mwl:").await;
    let folder = tempfile::tempdir().unwrap();
    let mut config = hub.agent_config(&folder.path().join("agent.db"));
    let port = serve_worklist(&mut config, WorklistSettings::default());
    let agent = start_agent(config).await;
    let mut machine = Modality::connect(&format!("127.0.0.1:{port}"), "MAMMO1", "SCREENING_MWL")
        .await
        .unwrap();
    let first = hub.send(0).await;
    hub.until_status(first.id, MessageStatus::Confirmed).await;
    let query = modality::accession_query(&accession_number(first.appointment_id));
    let mut latencies = Vec::with_capacity(sends);
    for _ in 0..sends {
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
        let findable = Utc::now();
        latencies.push((findable - message.created_at).as_seconds_f64() * 1e3);
    }
    machine.release().await.ok();
    agent.stop.send(true).ok();
    latencies.sort_by(f64::total_cmp);
    (percentile(&latencies, 50.0), percentile(&latencies, 99.0))
}

fn main() {
    screening::gateway::logging::run_main(run())
}

async fn run() {
    // Enough samples that p99 is not just the worst one or two.
    let queries = env_number("SCREENING_BENCH_QUERIES", 2_000);
    let sends = env_number("SCREENING_BENCH_SENDS", 200);
    println!("| Measure | Items on the worklist | p50 | p99 |");
    println!("|---|---|---|---|");
    for items in [1_000, 10_000] {
        let (p50, p99, matches) = find_latency(items, queries).await;
        println!(
            "| C-FIND today's MG steps ({matches} matches, {queries} queries) | {items} | {p50:.2} ms | {p99:.2} ms |"
        );
    }
    let (p50, p99) = commit_to_findable(sends).await;
    println!(
        "| Send to modality committed → findable by C-FIND, long-poll ({sends} sends) | 1 | {p50:.2} ms | {p99:.2} ms |"
    );
}
