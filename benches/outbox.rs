//! Outbox rounds (create -> take -> confirm) on SQLite and PostgreSQL, through the public store API.
//! Targets on 2 cores (issue 11): batched >= 10,000 messages/s on SQLite and PostgreSQL; one message
//! at a time >= 3,000 rounds/s on SQLite.
//!
//! `single`: one message per round, each step its own transaction, as one clinician and one gateway.
//! `batched`: 50 messages created by concurrent senders (their commits are grouped), taken in one
//! batch and confirmed in one call, as a busy clinic with several web workers and a gateway
//! confirming what it handed on together.
//! `batched_50_x8_gateways`: the same for eight gateways side by side, as a hub serving several
//! units: eight such rounds at once, each with its own gateway (`SCREENING_BENCH_SIDE_BY_SIDE=4`
//! for four). One gateway's rounds one after another leave the machine idle part of the time
//! (each waits for its commits); a hub's gateways take and confirm independently.
//!
//! ```text
//! cargo bench --bench outbox
//! SCREENING_BENCH_SIDE_BY_SIDE=4 cargo bench --bench outbox -- _x4
//! ```

mod support;
use support::{env_number, percentile, thread_handoffs};

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use screening::core::prelude::*;
use screening::store::testing::{Backend, TestStore};
use screening::store::{now_utc, DemoData, ScreeningStore};

// The allocator of the `screening-web` binary, whose store these rounds are.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 50;

fn message(demo: &DemoData, gateway_id: GatewayId) -> Message {
    Message {
        gateway_id,
        ..demo.pending_message(MessageId::generate(), now_utc())
    }
}

async fn single_round(store: &dyn ScreeningStore, demo: &DemoData) {
    let sent = message(demo, demo.gateway.id);
    store.enqueue(&sent).await.unwrap();
    let now = now_utc();
    let taken = store
        .take_pending(demo.gateway.id, now, now + TimeDelta::seconds(30), 1)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    store
        .confirm(demo.gateway.id, taken[0].id, now_utc())
        .await
        .unwrap();
}

async fn batched_round(
    store: &Arc<dyn ScreeningStore>,
    demo: &Arc<DemoData>,
    gateway_id: GatewayId,
) {
    let creates: Vec<_> = (0..BATCH)
        .map(|_| {
            let (store, demo) = (store.clone(), demo.clone());
            tokio::spawn(async move { store.enqueue(&message(&demo, gateway_id)).await.unwrap() })
        })
        .collect();
    for create in creates {
        create.await.unwrap();
    }
    let now = now_utc();
    let taken = store
        .take_pending(gateway_id, now, now + TimeDelta::seconds(30), BATCH as u32)
        .await
        .unwrap();
    assert_eq!(taken.len(), BATCH);
    let ids: Vec<MessageId> = taken.iter().map(|message| message.id).collect();
    let outcomes = store
        .confirm_many(gateway_id, &ids, now_utc())
        .await
        .unwrap();
    assert!(outcomes
        .iter()
        .all(|outcome| matches!(outcome, Ok(o) if o.confirmed == Confirmed::Now)));
}

/// Runs `rounds` as a task on the runtime's workers, as the web app's and the hub's callers run (a
/// request handler is a task), not on the bench's own thread: `block_on` would put a third thread
/// between the caller and the store's tasks, and a wake-up across threads on every call.
fn in_a_task(
    runtime: &tokio::runtime::Runtime,
    rounds: impl std::future::Future<Output = Duration> + Send + 'static,
) -> Duration {
    runtime.block_on(runtime.spawn(rounds)).unwrap()
}

/// CPU time (user + system) and context switches of this process so far, every thread counted.
fn process_usage() -> (Duration, i64) {
    // SAFETY: getrusage only writes the struct passed.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    (
        time(usage.ru_utime) + time(usage.ru_stime),
        usage.ru_nvcsw + usage.ru_nivcsw,
    )
}

/// Where a one-at-a-time round's time goes: the round's CPU time and context switches, beside a
/// bare hand-off from a task to a thread and back (what a sqlx SQLite call costs before any SQL:
/// each call goes to the connection's own thread and its answer wakes the task). The rounds are
/// latency-bound: each of their three statements waits for two such wake-ups in a row.
fn print_single_round_breakdown(
    runtime: &tokio::runtime::Runtime,
    store: Arc<dyn ScreeningStore>,
    demo: Arc<DemoData>,
) {
    const ROUNDS: u32 = 2_000;
    const HANDOFFS: usize = 5_000;
    let (elapsed, cpu, switches) = in_a_task_with_usage(runtime, async move {
        for _ in 0..ROUNDS {
            single_round(store.as_ref(), &demo).await;
        }
    });
    let handoffs = runtime
        .block_on(runtime.spawn(thread_handoffs(HANDOFFS)))
        .unwrap();
    let per_round = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(ROUNDS);
    println!("\n| SQLite, one message at a time: where a round goes | Figure |");
    println!("|---|---|");
    println!(
        "| {ROUNDS} rounds: wall time per round; CPU time per round (every thread) | {:.0} µs; {:.0} µs |",
        per_round(elapsed),
        per_round(cpu)
    );
    println!(
        "| Context switches per round | {:.1} |",
        switches as f64 / f64::from(ROUNDS)
    );
    println!(
        "| A bare hand-off from a task to a thread and back, p50 / p90 / p99 | {:.1} / {:.1} / {:.1} µs |",
        percentile(&handoffs, 50.0),
        percentile(&handoffs, 90.0),
        percentile(&handoffs, 99.0)
    );
}

/// Runs `work` as a task (see [`in_a_task`]); its wall time, and the process's CPU time and
/// context switches meanwhile.
fn in_a_task_with_usage(
    runtime: &tokio::runtime::Runtime,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) -> (Duration, Duration, i64) {
    let (cpu_before, switches_before) = process_usage();
    let elapsed = in_a_task(runtime, async move {
        let start = Instant::now();
        work.await;
        start.elapsed()
    });
    let (cpu_after, switches_after) = process_usage();
    (
        elapsed,
        cpu_after - cpu_before,
        switches_after - switches_before,
    )
}

fn outbox(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (name, backend) in [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)] {
        let Some(test) = runtime.block_on(TestStore::new(backend)) else {
            eprintln!("skipping the {name} outbox bench: database unreachable");
            continue;
        };
        let now = now_utc();
        let demo = Arc::new(
            runtime
                .block_on(
                    test.store
                        .seed_demo(screening_core::london::today(now), now),
                )
                .unwrap(),
        );
        let store = test.store.clone();

        let mut group = c.benchmark_group(format!("outbox_round/{name}"));
        group
            .measurement_time(Duration::from_secs(5))
            .sample_size(20);
        group.throughput(Throughput::Elements(1));
        group.bench_function("single", |b| {
            b.iter_custom(|iterations| {
                let (store, demo) = (store.clone(), demo.clone());
                in_a_task(&runtime, async move {
                    let start = Instant::now();
                    for _ in 0..iterations {
                        single_round(store.as_ref(), &demo).await;
                    }
                    start.elapsed()
                })
            })
        });
        if backend == Backend::Sqlite {
            print_single_round_breakdown(&runtime, store.clone(), demo.clone());
        }
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_function("batched_50", |b| {
            b.iter_custom(|iterations| {
                let (store, demo) = (store.clone(), demo.clone());
                in_a_task(&runtime, async move {
                    let start = Instant::now();
                    for _ in 0..iterations {
                        batched_round(&store, &demo, demo.gateway.id).await;
                    }
                    start.elapsed()
                })
            })
        });
        // Gateways whose batched rounds run side by side.
        let side_by_side: usize = env_number("SCREENING_BENCH_SIDE_BY_SIDE", 8);
        let gateways: Vec<GatewayId> = (0..side_by_side)
            .map(|n| {
                let gateway = Gateway {
                    id: GatewayId::from_uuid(uuid::Uuid::new_v4()),
                    name: format!("Bench unit {n}"),
                    ..demo.gateway.clone()
                };
                runtime
                    .block_on(store.save_gateway(&gateway, now_utc()))
                    .unwrap();
                gateway.id
            })
            .collect();
        group.throughput(Throughput::Elements((BATCH * side_by_side) as u64));
        group.bench_function(format!("batched_{BATCH}_x{side_by_side}_gateways"), |b| {
            b.iter_custom(|iterations| {
                let (store, demo, gateways) = (store.clone(), demo.clone(), gateways.clone());
                in_a_task(&runtime, async move {
                    let start = Instant::now();
                    for _ in 0..iterations {
                        let rounds: Vec<_> = gateways
                            .iter()
                            .map(|&gateway_id| {
                                let (store, demo) = (store.clone(), demo.clone());
                                tokio::spawn(async move {
                                    batched_round(&store, &demo, gateway_id).await
                                })
                            })
                            .collect();
                        for round in rounds {
                            round.await.unwrap();
                        }
                    }
                    start.elapsed()
                })
            })
        });
        group.finish();
        runtime.block_on(test.cleanup());
    }
}

criterion_group!(benches, outbox);
criterion_main!(benches);
