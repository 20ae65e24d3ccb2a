//! Ten thousand gateways on one web instance (issue 11, part 5): 10,000 gateways long-polling the
//! web app from separate client processes on loopback, plus 100 relay gateways whose rendezvous the
//! instance keeps open. Prints a Markdown table: the instance's memory while they all wait, one
//! message to each of 1,000 gateways at once, and the same while one gateway drains a backlog of
//! 10,000 messages.
//!
//! ```text
//! cargo bench --bench many_gateways
//! SCREENING_BENCH_GATEWAYS=2000 SCREENING_BENCH_FANOUT=500 cargo bench --bench many_gateways
//! ```
//!
//! The instance (this process) is the web app's router with the hub API and the relay dispatcher,
//! on SQLite in a temporary folder, with the allocator the `screening-web` binary uses and its
//! memory settings (no transparent huge pages: `screening_web::server::memory`). The
//! pollers are two child processes (this binary again, `SCREENING_BENCH_ROLE=pollers`), each
//! simulated gateway with its own HTTP/1 connection through hyper's client; the local
//! relay and its 100 listeners are a third (`SCREENING_BENCH_ROLE=relay`). Latency is from the
//! message's `created_at` (taken before its commit) to the moment a poller has parsed the response
//! holding it, on the machine's one wall clock.

mod support;
use support::{env_number, percentile};

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use screening::core::prelude::*;
use screening::core::wire::{ConfirmationBatch, MessagesResponse, RelayReply, RelayStatus};
use screening::gateway::auth::hash_credential;
use screening::gateway::hub::{Hub, HubConfig};
use screening::gateway::logging::{LogArgs, LogFormat};
use screening::gateway::relay::client::{listen, ListenerTiming, RelayEndpoint};
use screening::gateway::relay::dispatcher::{spawn_dispatchers, DispatcherConfig};
use screening::gateway::relay::local::LocalRelayConfig;
use screening::gateway::testing::{
    local_relay_config, relay_endpoint, start_local_relay_with, RELAY_LISTEN_KEY, RELAY_SEND_KEY,
};
use screening::store::testing::TestStore;
use screening::store::{now_utc, DemoData, ScreeningStore};
use screening_web::server::{router, AppState, WebConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use uuid::Uuid;

// The allocator the `screening-web` binary uses, so the figures are the binary's, with a count of
// the live heap by size (two relaxed atomic adds an allocation) to say where the memory goes,
// kept only until the waiting gateways' heap is read (see `COUNTING`).
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Live allocations and bytes by size class (class n holds sizes in 2^(n-1)+1 ..= 2^n).
struct HeapCounts {
    allocations: [AtomicI64; 40],
    bytes: [AtomicI64; 40],
}

static HEAP: HeapCounts = HeapCounts {
    allocations: [const { AtomicI64::new(0) }; 40],
    bytes: [const { AtomicI64::new(0) }; 40],
};

fn size_class(size: usize) -> usize {
    (usize::BITS - size.saturating_sub(1).leading_zeros()) as usize
}

/// Whether allocations are counted: only until the waiting gateways' heap is read. Two atomic
/// adds on lines every thread shares, at every allocation, cost the fan-outs' CPU (the counting
/// wrapper showed as 4% of the instance's samples), which the binary does not pay.
static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

impl HeapCounts {
    fn add(&self, size: usize, sign: i64) {
        if !COUNTING.load(Ordering::Relaxed) {
            return;
        }
        let class = size_class(size).min(39);
        self.allocations[class].fetch_add(sign, Ordering::Relaxed);
        self.bytes[class].fetch_add(sign * size as i64, Ordering::Relaxed);
    }

    /// (allocations, bytes) live in each class now.
    fn snapshot(&self) -> Vec<(i64, i64)> {
        (0..40)
            .map(|class| {
                (
                    self.allocations[class].load(Ordering::Relaxed),
                    self.bytes[class].load(Ordering::Relaxed),
                )
            })
            .collect()
    }
}

struct CountingAllocator;

// SAFETY: every call is passed on unchanged to mimalloc; the counts are only arithmetic.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        HEAP.add(layout.size(), 1);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        HEAP.add(layout.size(), 1);
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        HEAP.add(layout.size(), -1);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        HEAP.add(layout.size(), -1);
        HEAP.add(new_size, 1);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

/// What the waiting gateways hold on the heap: the growth of each size class from `before` to
/// `after`, per waiting gateway, largest first (to stderr, for whoever looks for the next cut).
fn print_heap_growth(before: &[(i64, i64)], after: &[(i64, i64)], waiting: usize) -> f64 {
    let mut growth: Vec<(usize, f64, f64)> = before
        .iter()
        .zip(after)
        .enumerate()
        .map(|(class, (b, a))| {
            (
                class,
                (a.0 - b.0) as f64 / waiting as f64,
                (a.1 - b.1) as f64 / waiting as f64,
            )
        })
        .filter(|(_, _, bytes)| bytes.abs() >= 16.0)
        .collect();
    growth.sort_by(|x, y| y.2.total_cmp(&x.2));
    let total: f64 = growth.iter().map(|(_, _, bytes)| bytes).sum();
    eprintln!("\nLive heap per waiting gateway by allocation size: {total:.0} bytes");
    eprintln!("| Sizes (bytes) | Allocations | Bytes |\n|---|---|---|");
    for (class, count, bytes) in growth {
        let low = if class == 0 {
            0
        } else {
            (1usize << (class - 1)) + 1
        };
        eprintln!("| {low}–{} | {count:.2} | {bytes:.0} |", 1usize << class);
    }
    total
}

/// Which part this process plays (unset: the instance).
const ROLE: &str = "SCREENING_BENCH_ROLE";
const POLLER_PROCESSES: usize = 2;
/// How long each long-poll asks to wait (the hub allows up to 60 s).
const WAIT_SECONDS: u64 = 55;

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("pollers") => pollers(),
        Ok("relay") => relay(),
        _ => {
            // As the `screening-web` binary does first thing.
            screening_web::server::memory::keep_heap_in_small_pages();
            instance()
        }
    }
}

/// The instance's resident memory, from the kernel.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("VmRSS in /proc/self/status")
        * 1024
}

/// Raises this process's open-file limit to its hard limit (children inherit it); fails with the
/// command to run when even that is too low.
fn raise_file_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    if limit.rlim_cur < needed {
        eprintln!(
            "many_gateways: needs {needed} open files, the hard limit is {}; raise it (ulimit -Hn) or \
             set SCREENING_BENCH_GATEWAYS lower",
            limit.rlim_cur
        );
        std::process::exit(2);
    }
}

/// When each message reached its poller (µs since the epoch), as the pollers report it.
#[derive(Default)]
struct Arrivals {
    at: Mutex<HashMap<MessageId, i64>>,
    changed: tokio::sync::Notify,
}

impl Arrivals {
    fn record(&self, line: &str) {
        let mut words = line.split_whitespace();
        if words.next() != Some("received") {
            return;
        }
        let (Some(id), Some(at)) = (words.next(), words.next()) else {
            return;
        };
        let (Ok(id), Ok(at)) = (MessageId::parse(id), at.parse::<i64>()) else {
            return;
        };
        self.at.lock().unwrap().insert(id, at);
        self.changed.notify_waiters();
    }

    fn count(&self, ids: &[MessageId]) -> usize {
        let at = self.at.lock().unwrap();
        ids.iter().filter(|id| at.contains_key(id)).count()
    }

    /// Waits until every one of `messages` has arrived; their latencies (ms), sorted.
    async fn latencies(&self, messages: &[Message], within: Duration) -> Vec<f64> {
        let ids: Vec<MessageId> = messages.iter().map(|m| m.id).collect();
        let deadline = Instant::now() + within;
        loop {
            let changed = self.changed.notified();
            if self.count(&ids) == ids.len() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {} of {} messages arrived within {within:?}",
                self.count(&ids),
                ids.len()
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), changed).await;
        }
        let at = self.at.lock().unwrap();
        let mut latencies: Vec<f64> = messages
            .iter()
            .map(|m| (at[&m.id] - m.created_at.timestamp_micros()) as f64 / 1000.0)
            .collect();
        latencies.sort_by(f64::total_cmp);
        latencies
    }
}

/// A message to `gateway`, created now.
fn message_to(demo: &DemoData, gateway: GatewayId) -> Message {
    Message {
        gateway_id: gateway,
        ..demo.pending_message(MessageId::generate(), now_utc())
    }
}

/// Commits one message to each gateway, all at once (concurrent senders); the messages.
async fn send_to_each(
    store: &Arc<dyn ScreeningStore>,
    demo: &DemoData,
    gateways: &[GatewayId],
) -> Vec<Message> {
    send_to_each_timed(store, demo, gateways)
        .await
        .into_iter()
        .map(|(message, _)| message)
        .collect()
}

/// [`send_to_each`], with when each message's commit returned (µs since the epoch).
async fn send_to_each_timed(
    store: &Arc<dyn ScreeningStore>,
    demo: &DemoData,
    gateways: &[GatewayId],
) -> Vec<(Message, i64)> {
    let sends: Vec<_> = gateways
        .iter()
        .map(|&gateway| {
            let store = store.clone();
            let message = message_to(demo, gateway);
            tokio::spawn(async move {
                store.enqueue(&message).await.expect("enqueued");
                (message, now_utc().timestamp_micros())
            })
        })
        .collect();
    let mut messages = Vec::with_capacity(sends.len());
    for send in sends {
        messages.push(send.await.unwrap());
    }
    messages
}

struct Fanout {
    latencies: Vec<f64>,
    /// Created → commit returned, and commit returned → received (ms), each sorted.
    committing: Vec<f64>,
    after_commit: Vec<f64>,
    /// From the first commit to the last arrival.
    all_within_ms: f64,
    /// CPU time used in that span: by the instance, and by the client processes.
    instance_cpu_ms: f64,
    clients_cpu_ms: f64,
}

/// CPU time (user + system) of this process so far, every thread, live or ended, in ms: the
/// kernel's own count, to the nanosecond (the clock ticks of `/proc/<pid>/stat` are 10 ms, a
/// tenth of a fan-out's CPU).
fn own_cpu_ms() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only the timespec it is given.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    now.tv_sec as f64 * 1000.0 + now.tv_nsec as f64 / 1e6
}

/// CPU time of process `pid`'s live threads so far, in ms, to the nanosecond: the sum of each
/// thread's `/proc/<pid>/task/<tid>/schedstat` (its first field). The client processes' threads
/// live as long as they do.
fn cpu_ms(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/<pid>/task");
    let mut nanoseconds = 0u64;
    for task in tasks.flatten() {
        // A thread that ended since the listing is simply not counted.
        if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
            let first = stat.split_whitespace().next().unwrap_or("0");
            nanoseconds += first.parse::<u64>().unwrap_or(0);
        }
    }
    nanoseconds as f64 / 1e6
}

async fn fan_out(
    store: &Arc<dyn ScreeningStore>,
    demo: &DemoData,
    arrivals: &Arrivals,
    gateways: &[GatewayId],
    clients: &[u32],
) -> Fanout {
    let clients_cpu = || clients.iter().map(|&pid| cpu_ms(pid)).sum::<f64>();
    let (instance_before, clients_before) = (own_cpu_ms(), clients_cpu());
    // Markers a profiler can start and stop on (e.g. `perf record --control`).
    eprintln!("fan-out: start");
    let started = now_utc();
    let sent = send_to_each_timed(store, demo, gateways).await;
    let messages: Vec<Message> = sent.iter().map(|(message, _)| message.clone()).collect();
    let latencies = arrivals.latencies(&messages, Duration::from_secs(60)).await;
    let (instance_after, clients_after) = (own_cpu_ms(), clients_cpu());
    eprintln!("fan-out: done");
    let last = {
        let at = arrivals.at.lock().unwrap();
        messages.iter().map(|m| at[&m.id]).max().unwrap()
    };
    let sorted = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values
    };
    let committing = sorted(
        sent.iter()
            .map(|(message, committed)| {
                (committed - message.created_at.timestamp_micros()) as f64 / 1000.0
            })
            .collect(),
    );
    let after_commit = {
        let at = arrivals.at.lock().unwrap();
        sorted(
            sent.iter()
                .map(|(message, committed)| (at[&message.id] - committed) as f64 / 1000.0)
                .collect(),
        )
    };
    Fanout {
        latencies,
        committing,
        after_commit,
        all_within_ms: (last - started.timestamp_micros()) as f64 / 1000.0,
        instance_cpu_ms: instance_after - instance_before,
        clients_cpu_ms: clients_after - clients_before,
    }
}

/// Saves `count` gateways with `transport(i)`, each with its own credential; their ids and
/// credentials.
async fn save_gateways(
    store: &Arc<dyn ScreeningStore>,
    demo: &DemoData,
    count: usize,
    transport: impl Fn(usize) -> Transport,
) -> Vec<(GatewayId, String)> {
    let mut saved = Vec::with_capacity(count);
    let gateways: Vec<(Gateway, String)> = (0..count)
        .map(|i| {
            let gateway = Gateway {
                id: GatewayId::from_uuid(Uuid::new_v4()),
                name: format!("Bench gateway {i}"),
                transport: transport(i),
                ..demo.gateway.clone()
            };
            (gateway, format!("bench-credential-{}", Uuid::new_v4()))
        })
        .collect();
    // Concurrent writers, so SQLite's group commit takes them a few hundred at a time.
    for chunk in gateways.chunks(500) {
        let writes: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|(gateway, credential)| {
                let store = store.clone();
                tokio::spawn(async move {
                    store.save_gateway(&gateway, now_utc()).await.unwrap();
                    store
                        .set_gateway_credential_hash(gateway.id, &hash_credential(&credential))
                        .await
                        .unwrap();
                    (gateway.id, credential)
                })
            })
            .collect();
        for write in writes {
            saved.push(write.await.unwrap());
        }
    }
    saved
}

fn instance() {
    let gateways: usize = env_number("SCREENING_BENCH_GATEWAYS", 10_000);
    let relay_gateways: usize = env_number("SCREENING_BENCH_RELAY_GATEWAYS", 100);
    let fanout = env_number("SCREENING_BENCH_FANOUT", 1_000).min(gateways.saturating_sub(1) / 2);
    let backlog: usize = env_number("SCREENING_BENCH_BACKLOG", 10_000);
    raise_file_limit((gateways + relay_gateways + 1_000) as u64);
    // The binary's logging (JSON at info, so each request's span is kept while it waits).
    LogArgs {
        log_format: LogFormat::Json,
        log: std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
    }
    .init()
    .expect("a valid RUST_LOG");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let test = TestStore::sqlite().await;
        let store = test.store.clone();
        let now = now_utc();
        let demo = store
            .seed_demo(screening::core::london::today(now), now)
            .await
            .expect("seed");

        // The relay and its listeners, in their own process.
        let mut relay = child("relay", &[relay_gateways.to_string()]);
        let mut relay_lines = tokio::io::BufReader::new(relay.stdout.take().unwrap()).lines();
        let relay_url = loop {
            let line = relay_lines.next_line().await.unwrap().expect("the relay starts");
            if let Some(url) = line.strip_prefix("relay ") {
                break url.to_string();
            }
        };
        let folder = tempfile::tempdir().unwrap();
        let key_file = folder.path().join("relay-send.key");
        std::fs::write(&key_file, RELAY_SEND_KEY).unwrap();

        let started = Instant::now();
        let polling = save_gateways(&store, &demo, gateways, |_| Transport::Polling).await;
        let relayed = save_gateways(&store, &demo, relay_gateways, |i| {
            Transport::Relay(RelayTransport {
                namespace: relay_url.clone(),
                hybrid_connection: format!("hc-{i}"),
                key_name: "send".into(),
                key_ref: format!("file:{}", key_file.display()).parse().unwrap(),
            })
        })
        .await;
        eprintln!(
            "{} gateways saved in {:.1} s",
            gateways + relay_gateways,
            started.elapsed().as_secs_f64()
        );

        let signing_key = screening::gateway::signing::generate_signing_key();
        let hub = Hub::new(
            store.clone(),
            HubConfig {
                signing_key: Some(signing_key.clone()),
                ..HubConfig::default()
            },
        );
        hub.spawn_lease_sweeper();
        let app = router(AppState::new(store.clone(), WebConfig::default()), &hub);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        // Served as the binary serves it (`hub::serve`: HTTP/1, with the peer address).
        tokio::spawn(screening_gateway::hub::serve(listener, app, std::future::pending()));
        spawn_dispatchers(
            store.clone(),
            DispatcherConfig {
                secrets_dir: Some(folder.path().to_path_buf()),
                signing_key: Some(signing_key),
                // Open for the whole run once the first message has gone.
                keep_open: Duration::from_secs(600),
                ..DispatcherConfig::default()
            },
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle_rss = rss_bytes();
        let idle_heap = HEAP.snapshot();

        // The pollers: the first gateway is held back to drain the backlog later.
        let (backlogged, rest) = polling.split_first().unwrap();
        let list = folder.path().join("gateways.txt");
        let mut text = String::new();
        for (id, credential) in rest {
            text.push_str(&format!("{id} {credential}\n"));
        }
        std::fs::write(&list, text).unwrap();
        let arrivals = Arc::new(Arrivals::default());
        let mut pollers = Vec::new();
        let per_process = rest.len().div_ceil(POLLER_PROCESSES);
        for index in 0..POLLER_PROCESSES {
            let from = (index * per_process).min(rest.len());
            let to = ((index + 1) * per_process).min(rest.len());
            let mut poller = child(
                "pollers",
                &[
                    base_url.clone(),
                    list.display().to_string(),
                    from.to_string(),
                    to.to_string(),
                ],
            );
            let lines = tokio::io::BufReader::new(poller.stdout.take().unwrap()).lines();
            tokio::spawn(read_arrivals(lines, arrivals.clone()));
            pollers.push(poller);
        }
        let started = Instant::now();
        while hub.long_polls_waiting() < rest.len() {
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "only {} of {} long-polls waiting after 180 s",
                hub.long_polls_waiting(),
                rest.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "{} long-polls waiting after {:.1} s",
            rest.len(),
            started.elapsed().as_secs_f64()
        );

        // The relay gateways' rendezvous opened by one message each, and kept open.
        let relay_ids: Vec<GatewayId> = relayed.iter().map(|(id, _)| *id).collect();
        let relay_messages = send_to_each(&store, &demo, &relay_ids).await;
        let mut relay_latencies = Vec::new();
        for message in &relay_messages {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let stored = store.message(message.id).await.unwrap();
                if let Some(confirmed) = stored.confirmed_at {
                    relay_latencies.push((confirmed - stored.created_at).num_microseconds().unwrap() as f64 / 1000.0);
                    break;
                }
                assert!(Instant::now() < deadline, "a relay message was not confirmed within 60 s");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        relay_latencies.sort_by(f64::total_cmp);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let waiting_rss = rss_bytes();
        let waiting_heap_per_gateway =
            print_heap_growth(&idle_heap, &HEAP.snapshot(), rest.len() + relay_gateways);
        // The heap is not read again: the fan-outs run on the binary's allocator alone.
        COUNTING.store(false, Ordering::Relaxed);

        // One message to each of `fanout` waiting gateways at once.
        // Taken across the whole list, so every poller process gets its share: the gateways at
        // one poller process's end of the list would all queue on its one thread, which a
        // thousand separate gateways do not.
        let stride = rest.len() / (2 * fanout);
        let spread: Vec<GatewayId> = rest.iter().step_by(stride.max(1)).map(|(id, _)| *id).collect();
        let (quiet_ids, busy_ids): (Vec<_>, Vec<_>) = spread[..2 * fanout]
            .chunks(2)
            .map(|pair| (pair[0], pair[1]))
            .unzip();
        let poller_pids: Vec<u32> = pollers.iter().filter_map(|poller| poller.id()).collect();
        let quiet = fan_out(&store, &demo, &arrivals, &quiet_ids, &poller_pids).await;
        // Their pollers are back waiting before the next round.
        tokio::time::sleep(Duration::from_secs(2)).await;

        // The backlog: committed while its gateway is not polling, then drained while another
        // `fanout` gateways are sent one message each.
        let started = Instant::now();
        let backlog_gateways = vec![backlogged.0; backlog];
        let mut backlog_messages = Vec::with_capacity(backlog);
        for chunk in backlog_gateways.chunks(1_000) {
            backlog_messages.extend(send_to_each(&store, &demo, chunk).await);
        }
        eprintln!(
            "a backlog of {backlog} messages committed in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let backlog_ids: Vec<MessageId> = backlog_messages.iter().map(|m| m.id).collect();
        let backlogged_list = folder.path().join("backlogged.txt");
        std::fs::write(
            &backlogged_list,
            format!("{} {}\n", backlogged.0, backlogged.1),
        )
        .unwrap();
        let mut drainer = child(
            "pollers",
            &[
                base_url.clone(),
                backlogged_list.display().to_string(),
                "0".into(),
                "1".into(),
            ],
        );
        drainer.stdin.take().unwrap().write_all(b"go\n").await.unwrap();
        let lines = tokio::io::BufReader::new(drainer.stdout.take().unwrap()).lines();
        tokio::spawn(read_arrivals(lines, arrivals.clone()));
        let drain_started = Instant::now();
        while arrivals.count(&backlog_ids) < 200 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut busy_clients = poller_pids.clone();
        busy_clients.extend(drainer.id());
        let busy = fan_out(&store, &demo, &arrivals, &busy_ids, &busy_clients).await;
        let drained_during = arrivals.count(&backlog_ids);
        arrivals
            .latencies(&backlog_messages, Duration::from_secs(120))
            .await;
        let drained_in = drain_started.elapsed().as_secs_f64();

        for mut process in pollers.into_iter().chain([relay, drainer]) {
            let _ = process.kill().await;
        }
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        let waiting = rest.len() + relay_gateways;
        let per_gateway_kib = (waiting_rss.saturating_sub(idle_rss)) as f64 / 1024.0 / waiting as f64;
        println!("\n| Ten thousand gateways | Figure | Target |");
        println!("|---|---|---|");
        println!(
            "| Instance RSS, gateways saved, none connected | {:.0} MiB | |",
            mib(idle_rss)
        );
        println!(
            "| Instance RSS, {} long-polling + {relay_gateways} relay gateways (rendezvous open) | {:.0} MiB | < 200 MiB |",
            rest.len(),
            mib(waiting_rss)
        );
        println!(
            "| Per waiting gateway: resident; of it live heap | {per_gateway_kib:.1} KiB; {:.1} KiB | ≤ 20 KiB |",
            waiting_heap_per_gateway / 1024.0
        );
        println!(
            "| Relay: one message to each of {relay_gateways}, commit → confirmed p50 / p99 | {:.1} / {:.1} ms | |",
            percentile(&relay_latencies, 50.0),
            percentile(&relay_latencies, 99.0)
        );
        for (label, round) in [
            (format!("One message to each of {fanout} long-polling gateways at once"), &quiet),
            (
                format!("The same to {fanout} others while one gateway drains {backlog}"),
                &busy,
            ),
        ] {
            println!(
                "| {label}: commit → received p50 / p99 / max; all within | {:.1} / {:.1} / {:.1} ms; {:.0} ms | p99 < 100 ms |",
                percentile(&round.latencies, 50.0),
                percentile(&round.latencies, 99.0),
                round.latencies.last().unwrap(),
                round.all_within_ms
            );
            println!(
                "| … of which created → committed p50 / p99; committed → received p50 / p99 | {:.1} / {:.1} ms; {:.1} / {:.1} ms | |",
                percentile(&round.committing, 50.0),
                percentile(&round.committing, 99.0),
                percentile(&round.after_commit, 50.0),
                percentile(&round.after_commit, 99.0)
            );
            println!(
                "| … CPU used from the first commit to the last arrival: instance; client processes; the instance's per delivery | {:.1} ms; {:.1} ms; {:.0} µs | |",
                round.instance_cpu_ms,
                round.clients_cpu_ms,
                round.instance_cpu_ms * 1000.0 / round.latencies.len() as f64
            );
        }
        println!(
            "| The backlog of {backlog}: drained in (received {drained_during} of it during the fan-out) | {drained_in:.1} s | |"
        );
        println!(
            "\nSQLite (WAL, synchronous=NORMAL, as the store opens it), {POLLER_PROCESSES} poller processes, long-polls of {WAIT_SECONDS} s, orders signed; transparent huge pages {}.",
            if screening_web::server::memory::huge_pages_off() { "off" } else { "allowed" }
        );
        let _ = std::io::stdout().flush();
        test.cleanup().await;
    });
}

/// This binary again, in `role`, with `args`; killed when dropped.
fn child(role: &str, args: &[String]) -> tokio::process::Child {
    tokio::process::Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the bench runs itself as a child")
}

async fn read_arrivals(
    mut lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    arrivals: Arc<Arrivals>,
) {
    while let Ok(Some(line)) = lines.next_line().await {
        arrivals.record(&line);
    }
}

/// `SCREENING_BENCH_ROLE=pollers <base url> <gateway list> <from> <to>`: long-polls as the
/// gateways on lines `from..to` of the list, confirming what arrives and printing
/// `received <message id> <µs since the epoch>` for each message. With `to - from == 1` it waits
/// for a line on stdin first (the backlogged gateway starts when told).
fn pollers() {
    let args: Vec<String> = std::env::args().collect();
    let [base_url, list, from, to] = &args[args.len() - 4..] else {
        unreachable!()
    };
    let (from, to): (usize, usize) = (from.parse().unwrap(), to.parse().unwrap());
    if to - from == 1 {
        std::io::stdin().read_line(&mut String::new()).unwrap();
    }
    // Arrival lines are written by a thread of their own, so a slow reader never stalls a poll.
    let (lines, printed) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        for line in printed {
            out.write_all(line.as_bytes()).unwrap();
            out.flush().unwrap();
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let text = std::fs::read_to_string(list).unwrap();
        let gateways: Vec<(String, String)> = text
            .lines()
            .skip(from)
            .take(to - from)
            .map(|line| {
                let (id, credential) = line.split_once(' ').unwrap();
                (id.to_string(), credential.to_string())
            })
            .collect();
        let address: std::net::SocketAddr = base_url
            .strip_prefix("http://")
            .expect("an http:// base URL")
            .parse()
            .expect("the instance's address");
        let mut tasks = Vec::new();
        for (index, (id, credential)) in gateways.into_iter().enumerate() {
            let lines = lines.clone();
            tasks.push(tokio::spawn(async move {
                // Connections opened a few hundred at a time, not in one SYN flood.
                tokio::time::sleep(Duration::from_millis(index as u64 / 4)).await;
                let gateway = SimulatedGateway {
                    address,
                    messages: format!("/api/v1/gateways/{id}/messages?wait={WAIT_SECONDS}"),
                    confirmations: format!("/api/v1/gateways/{id}/confirmations"),
                    bearer: format!("Bearer {credential}"),
                };
                loop {
                    // On any failure: say which phase, wait a second, connect again.
                    if let Err(error) = gateway.poll_and_confirm(&lines).await {
                        eprintln!("poller: {error}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// One simulated gateway: its own HTTP/1 connection to the instance (as each real gateway has),
/// through hyper's client. Each answer is parsed in full, as a gateway parses it, before its
/// messages count as received.
struct SimulatedGateway {
    address: std::net::SocketAddr,
    messages: String,
    confirmations: String,
    bearer: String,
}

type Body = http_body_util::Full<hyper::body::Bytes>;

impl SimulatedGateway {
    /// Connects, then long-polls and confirms until something fails; the failure, by phase.
    async fn poll_and_confirm(
        &self,
        lines: &std::sync::mpsc::Sender<String>,
    ) -> Result<(), String> {
        let stream = tokio::net::TcpStream::connect(self.address)
            .await
            .map_err(|error| format!("connect: {error}"))?;
        stream
            .set_nodelay(true)
            .map_err(|error| format!("connect: {error}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Body>(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|error| format!("connect: {error}"))?;
        tokio::spawn(connection);
        loop {
            let poll = self.request(hyper::Method::GET, &self.messages, Body::default());
            let answer = self
                .exchange(&mut sender, poll, Duration::from_secs(WAIT_SECONDS + 30))
                .await
                .map_err(|error| format!("fetch: {error}"))?;
            let answer: MessagesResponse = serde_json::from_slice(&answer)
                .map_err(|error| format!("fetch: an answer that is not a message list: {error}"))?;
            if answer.messages.is_empty() {
                continue;
            }
            let at = now_utc().timestamp_micros();
            let mut text = String::new();
            for message in &answer.messages {
                text.push_str(&format!("received {} {at}\n", message.message_id));
            }
            let _ = lines.send(text);
            let batch = ConfirmationBatch {
                message_ids: answer.messages.iter().map(|m| m.message_id).collect(),
            };
            let body = Body::new(serde_json::to_vec(&batch).unwrap().into());
            let confirm = self.request(hyper::Method::POST, &self.confirmations, body);
            self.exchange(&mut sender, confirm, Duration::from_secs(30))
                .await
                .map_err(|error| format!("confirm: {error}"))?;
        }
    }

    fn request(&self, method: hyper::Method, path: &str, body: Body) -> hyper::Request<Body> {
        hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.address.to_string())
            .header(hyper::header::AUTHORIZATION, &self.bearer)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap()
    }

    /// Sends `request` and reads the whole answer, which must be a success.
    async fn exchange(
        &self,
        sender: &mut hyper::client::conn::http1::SendRequest<Body>,
        request: hyper::Request<Body>,
        within: Duration,
    ) -> Result<hyper::body::Bytes, String> {
        use http_body_util::BodyExt as _;
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|error| error.to_string())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| error.to_string())?;
            if !status.is_success() {
                return Err(format!("HTTP {status}"));
            }
            Ok(body.to_bytes())
        };
        tokio::time::timeout(within, exchange)
            .await
            .map_err(|_| format!("no answer within {within:?}"))?
    }
}

/// `SCREENING_BENCH_ROLE=relay <count>`: a local relay with hybrid connections `hc-0` …, one
/// listener on each answering "processed"; prints `relay <ws url>` once every listener is
/// connected, then serves until killed.
fn relay() {
    let count: usize = std::env::args().next_back().unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (relay, url) = start_local_relay_with(LocalRelayConfig {
            hybrid_connections: (0..count).map(|i| format!("hc-{i}")).collect(),
            rules: local_relay_config().rules,
        })
        .await;
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        for i in 0..count {
            let endpoint = RelayEndpoint {
                hybrid_connection: format!("hc-{i}"),
                ..relay_endpoint(&url, "listen", RELAY_LISTEN_KEY)
            };
            let handler = |message: GatewayMessage| async move {
                RelayReply {
                    status: RelayStatus::Processed,
                    message_id: message.message_id,
                    reason: None,
                }
            };
            tokio::spawn(listen(
                endpoint,
                ListenerTiming::default(),
                handler,
                stopped.clone(),
            ));
        }
        while (0..count).any(|i| relay.listener_count(&format!("hc-{i}")) == 0) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("relay {url}");
        std::future::pending::<()>().await;
    });
}
