//! End-to-end latency from "Send to modality" committed to confirmed, and the idle cost of each way
//! of reaching a gateway: 1 s polling, long-polling, and push through the local Azure Relay.
//! Prints a Markdown table. (Idle HTTP requests for the relay count only polls and heartbeats; its
//! control channel is one WebSocket with a ping every 30 s.)
//!
//! ```text
//! cargo bench --bench gateway_latency
//! SCREENING_BENCH_MESSAGES=50 SCREENING_BENCH_IDLE_SECONDS=60 cargo bench --bench gateway_latency
//! ```
//!
//! Each message is sent after a random pause, so polling sees every phase of its interval; latency
//! is `confirmed_at - created_at` from the hub's own timestamps. Idle cost is the hub's request
//! count over a quiet window, scaled to an hour.

mod support;
use support::{env_number, percentile, thread_handoffs, thread_handoffs_after};

use std::sync::atomic::Ordering;
use std::time::Duration;

use screening::core::prelude::*;
use screening::gateway::agent::inbox::Inbox;
use screening::gateway::agent::FetchMode;
use screening::gateway::hub::HubConfig;
use screening::gateway::random::fraction as random_fraction;
use screening::gateway::relay::dispatcher::DispatcherConfig;
use screening::gateway::testing::{
    start_agent, start_local_relay, until_listening, LocalHub, OrderEndpoint, RELAY_SEND_KEY,
};

struct Row {
    mode: &'static str,
    latencies_ms: Vec<f64>,
    idle_requests_per_hour: f64,
    /// Each message's time in each of [`STEPS`] (ms).
    steps_ms: Vec<[f64; STEPS.len()]>,
}

/// Where a hand-off's time goes, from the hub's timestamps, the moment "Send to modality" returned
/// to the bench, the agent's inbox and the order endpoint's arrival times (one clock: everything
/// runs on this machine).
const STEPS: [&str; 6] = [
    "hub: created → committed (context read, transition, commit; until the sender hears)",
    "committed → taken (the long poll or dispatcher woken, its take begins; 0 when it began first)",
    "taken → at the agent (claim, signature, the answer or push on the wire)",
    "at the agent → at the order endpoint (signature check, forward; the inbox write alongside, not waiting for the disk)",
    "endpoint → forwarded (the endpoint's answer heard; the inbox write if still running)",
    "forwarded → confirmed (confirmation, the forward recorded alongside, hub commit)",
];

fn ms(delta: chrono::TimeDelta) -> f64 {
    delta.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// How the gateway is reached.
enum Way {
    Http(FetchMode),
    /// Push, the hub's rendezvous to the gateway kept open this long between messages.
    Relay {
        keep_open: Duration,
    },
}

async fn measure(
    mode: &'static str,
    way: Way,
    messages: u64,
    idle: Duration,
    max_pause_ms: f64,
) -> Row {
    let hub = LocalHub::with_config(HubConfig::default()).await;
    let (endpoint, url) = OrderEndpoint::start(vec![]).await;
    let folder = tempfile::tempdir().unwrap();
    let inbox = folder.path().join("inbox.db");
    let agent = match way {
        Way::Http(fetch) => {
            hub.route_to(&url).await;
            let mut config = hub.agent_config(&inbox);
            config.fetch = fetch;
            start_agent(config).await
        }
        Way::Relay { keep_open } => {
            let (relay, relay_url) = start_local_relay().await;
            hub.make_relay_gateway(&relay_url, RELAY_SEND_KEY, &url)
                .await;
            hub.start_dispatcher_with(DispatcherConfig {
                keep_open,
                ..hub.dispatcher_config()
            })
            .await;
            let agent = start_agent(hub.relay_agent_config(&inbox, &relay_url)).await;
            until_listening(&relay).await;
            agent
        }
    };

    let warm_up = hub.send(0).await;
    hub.until_status(warm_up.id, MessageStatus::Confirmed).await;
    let mut latencies_ms = Vec::new();
    let mut confirmed_messages = Vec::new();
    for _ in 0..messages {
        tokio::time::sleep(Duration::from_secs_f64(
            random_fraction() * max_pause_ms / 1000.0,
        ))
        .await;
        let sent = hub.resend(0).await;
        // The notifier wakes the gateway's side as the committer tells the sender, so the take
        // may begin before this: see STEPS.
        let committed = chrono::Utc::now();
        let confirmed = hub.until_status(sent.id, MessageStatus::Confirmed).await;
        let latency = confirmed.confirmed_at.unwrap() - confirmed.created_at;
        latencies_ms.push(ms(latency));
        confirmed_messages.push((confirmed, committed));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    hub.requests.store(0, Ordering::SeqCst);
    tokio::time::sleep(idle).await;
    let idle_requests = hub.requests.load(Ordering::SeqCst) as f64;
    let _ = agent.stop.send(true);
    let _ = agent.task.await;
    let inbox = Inbox::open(&inbox).await.expect("the agent's inbox");
    let arrivals: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> = endpoint
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|received| (received.message_id.clone(), received.at))
        .collect();
    let mut steps_ms = Vec::new();
    for (message, committed) in &confirmed_messages {
        let entry = inbox
            .entry(message.id)
            .await
            .unwrap()
            .expect("in the inbox");
        let at_endpoint = arrivals[&message.id.to_string()];
        let (delivered, forwarded) = (message.delivered_at.unwrap(), entry.forwarded_at.unwrap());
        steps_ms.push([
            ms(*committed - message.created_at),
            ms(delivered - *committed).max(0.0),
            ms(entry.received_at - delivered),
            ms(at_endpoint - entry.received_at),
            ms(forwarded - at_endpoint),
            ms(message.confirmed_at.unwrap() - forwarded),
        ]);
    }
    latencies_ms.sort_by(f64::total_cmp);
    Row {
        mode,
        latencies_ms,
        idle_requests_per_hour: idle_requests * 3600.0 / idle.as_secs_f64(),
        steps_ms,
    }
}

/// p50 and p99 (ms) of `rounds` runs of `step`.
async fn time_each<F, Fut>(rounds: usize, mut step: F) -> (f64, f64)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let started = std::time::Instant::now();
        step(round).await;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (percentile(&times, 50.0), percentile(&times, 99.0))
}

/// As long as the bench's own pauses between messages (0-100 ms), in the parts below.
const PAUSE: Duration = Duration::from_millis(50);

/// Keeps this thread's core busy for [`PAUSE`].
fn spin_through_pause() {
    let spin = std::time::Instant::now();
    while spin.elapsed() < PAUSE {
        std::hint::spin_loop();
    }
}

/// p50 and p99 (ms) of 100 inbox reads, each timed alone after `pause` has run on this thread.
async fn reads_after(inbox: &Inbox, pause: impl Fn()) -> (f64, f64) {
    let mut reads = Vec::with_capacity(100);
    for _ in 0..100 {
        pause();
        let started = std::time::Instant::now();
        inbox.depth().await.unwrap();
        reads.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    reads.sort_by(f64::total_cmp);
    (percentile(&reads, 50.0), percentile(&reads, 99.0))
}

/// What the hand-off is made of, each part alone on this machine: the floor under the steps above.
async fn parts() -> Vec<(&'static str, (f64, f64))> {
    const ROUNDS: usize = 1000;
    let handoffs = thread_handoffs(ROUNDS).await;
    let wake = (
        percentile(&handoffs, 50.0) / 1000.0,
        percentile(&handoffs, 99.0) / 1000.0,
    );
    let handoffs = thread_handoffs_after(200, Duration::from_millis(5)).await;
    let wake_after_pause = (
        percentile(&handoffs, 50.0) / 1000.0,
        percentile(&handoffs, 99.0) / 1000.0,
    );
    let handoffs = thread_handoffs_after(100, PAUSE).await;
    let wake_after_long_pause = (
        percentile(&handoffs, 50.0) / 1000.0,
        percentile(&handoffs, 99.0) / 1000.0,
    );
    // The agent's inbox, as the agent opens it (WAL, synchronous=FULL).
    let folder = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(&folder.path().join("inbox.db")).await.unwrap();
    let read = time_each(ROUNDS, |_| {
        let inbox = inbox.clone();
        async move {
            inbox.depth().await.unwrap();
        }
    })
    .await;
    // The same read after 50 ms in which nothing ran; then with this thread spinning through
    // the pause, and with a second thread spinning too, so that neither core idles: if the read
    // is fast again, its cost after a pause is the cores going idle, not the work.
    let read_after_long_pause = reads_after(&inbox, || std::thread::sleep(PAUSE)).await;
    let read_after_busy_pause = reads_after(&inbox, spin_through_pause).await;
    let read_after_both_busy = reads_after(&inbox, || {
        let spinner = std::thread::spawn(spin_through_pause);
        spin_through_pause();
        spinner.join().unwrap();
    })
    .await;
    let commit = time_each(ROUNDS, |round| {
        let inbox = inbox.clone();
        let message = GatewayMessage {
            message_id: MessageId::from_uuid(uuid::Uuid::from_u128(round as u128 + 1)),
            message_type: MessageType::fhir(),
            payload: serde_json::json!({ "resourceType": "ServiceRequest" }),
            destination: Destination::parse("log:").unwrap(),
            signature: None,
        };
        async move {
            inbox.receive(&message, chrono::Utc::now()).await.unwrap();
        }
    })
    .await;
    // A forward's HTTP round trip on loopback, the connection kept alive.
    let (_endpoint, url) = OrderEndpoint::start(vec![]).await;
    let client = reqwest::Client::new();
    let post = time_each(ROUNDS, |_| {
        let request = client.post(&url).body("{}").send();
        async move {
            assert!(request.await.unwrap().status().is_success());
        }
    })
    .await;
    vec![
        (
            "async task → OS thread → async task (each sqlx SQLite call makes one)",
            wake,
        ),
        (
            "the same, each after 5 ms asleep (200 of them)",
            wake_after_pause,
        ),
        (
            "the same, each after 50 ms asleep (100 of them; the bench pauses 0-100 ms between messages)",
            wake_after_long_pause,
        ),
        ("an inbox read through sqlx (`Inbox::depth`)", read),
        (
            "the same read, each after 50 ms asleep (100 of them)",
            read_after_long_pause,
        ),
        (
            "the same read, each after 50 ms spinning on one core (100 of them)",
            read_after_busy_pause,
        ),
        (
            "the same read, each after 50 ms spinning on both cores (100 of them)",
            read_after_both_busy,
        ),
        (
            "a durable inbox commit (`Inbox::receive`, synchronous=FULL)",
            commit,
        ),
        (
            "an HTTP POST on loopback, kept alive (reqwest → axum)",
            post,
        ),
    ]
}

fn main() {
    let messages: u64 = env_number("SCREENING_BENCH_MESSAGES", 200);
    let idle = Duration::from_secs(env_number::<u64>("SCREENING_BENCH_IDLE_SECONDS", 110));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    eprintln!("gateway latency: {messages} messages per mode; idle window {idle:?} (this takes a few minutes)");
    let (parts, rows) = runtime.block_on(async {
        let parts = parts().await;
        let rows = vec![
            measure(
                "HTTP polling every 1 s (proof of concept)",
                Way::Http(FetchMode::Poll {
                    interval: Duration::from_secs(1),
                }),
                messages,
                idle.min(Duration::from_secs(20)),
                1000.0,
            )
            .await,
            measure(
                "HTTP long-polling (wait 50 s)",
                Way::Http(FetchMode::LongPoll {
                    wait: Duration::from_secs(50),
                }),
                messages,
                idle,
                100.0,
            )
            .await,
            measure(
                "Azure Relay push (local relay; agent also polls hourly)",
                Way::Relay {
                    keep_open: DispatcherConfig::default().keep_open,
                },
                messages,
                idle.min(Duration::from_secs(20)),
                100.0,
            )
            .await,
            // What a message pays when the last one was longer ago than `keep_open`.
            measure(
                "Azure Relay push, a new rendezvous for each message",
                Way::Relay {
                    keep_open: Duration::ZERO,
                },
                messages,
                idle.min(Duration::from_secs(20)),
                100.0,
            )
            .await,
        ];
        (parts, rows)
    });
    println!("\n| Transport | Messages | p50 (ms) | p99 (ms) | max (ms) | Idle requests/hour |");
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.0} |",
            row.mode,
            row.latencies_ms.len(),
            percentile(&row.latencies_ms, 50.0),
            percentile(&row.latencies_ms, 99.0),
            row.latencies_ms.last().copied().unwrap_or_default(),
            row.idle_requests_per_hour
        );
    }
    let ratio = percentile(&rows[0].latencies_ms, 50.0) / percentile(&rows[1].latencies_ms, 50.0);
    println!("\nlong-poll p50 is {ratio:.0}x lower than 1 s polling");
    println!("\nWhere the time goes, each step's p50 / p99 (ms):\n");
    print!("| Step |");
    for row in &rows[1..] {
        print!(" {} |", row.mode);
    }
    println!("\n|---|{}", "---|".repeat(rows.len() - 1));
    for (step, name) in STEPS.iter().enumerate() {
        print!("| {name} |");
        for row in &rows[1..] {
            let mut times: Vec<f64> = row.steps_ms.iter().map(|steps| steps[step]).collect();
            times.sort_by(f64::total_cmp);
            print!(
                " {:.2} / {:.2} |",
                percentile(&times, 50.0),
                percentile(&times, 99.0)
            );
        }
        println!();
    }
    println!("\nThe parts alone on this machine, p50 / p99 (ms), 1,000 of each unless said:\n");
    println!("| Part | p50 | p99 |");
    println!("|---|---|---|");
    for (name, (p50, p99)) in parts {
        println!("| {name} | {p50:.3} | {p99:.3} |");
    }
}
