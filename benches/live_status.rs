//! The clinic page's live status at scale: 500 open pages of one clinic (100 appointments), what
//! they cost the database while nothing changes, and how soon a confirmation reaches every one of
//! them. Prints a Markdown table; targets: no reads while idle, confirmation → page p99 < 50 ms.
//!
//! ```text
//! cargo bench --bench live_status
//! SCREENING_BENCH_BACKEND=postgres cargo bench --bench live_status   # two instances on one
//!     PostgreSQL: pages on A, confirmations through B (LISTEN/NOTIFY carries them)
//! ```
//!
//! The app runs in this process with mimalloc, as the binary does; the 500 pages are event streams
//! read by a Rust client in the same process (500 connections on loopback, 4 per session, as the
//! app allows). Each confirmation is timed from just before the store's `confirm` is called to the
//! moment each page's client has parsed the event that says "confirmed".

mod support;
use support::percentile;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use screening::core::demo::demo_clinic;
use screening::core::prelude::*;
use screening::gateway::hub::{Hub, HubConfig};
use screening::store::testing::{Backend, TestStore};
use screening::store::{now_utc, ScreeningStore};
use screening_web::server::auth::start_session;
use screening_web::server::{router, AppState, WebConfig};
use tokio::sync::mpsc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const APPOINTMENTS: usize = 100;
const PAGES: usize = 500;
const STREAMS_PER_SESSION: usize = 4;
const IDLE: Duration = Duration::from_secs(5);

/// One status event a page received: which appointment, which status, when.
struct Seen {
    appointment_id: String,
    status: String,
    at: Instant,
}

/// Reads one page's event stream, sending each status it parses.
async fn read_page(mut response: reqwest::Response, seen: mpsc::UnboundedSender<Seen>) {
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let view: serde_json::Value = serde_json::from_str(data.trim()).expect("a status");
            let _ = seen.send(Seen {
                appointment_id: view["appointment_id"].as_str().unwrap().to_string(),
                status: view["status"].as_str().unwrap().to_string(),
                at: Instant::now(),
            });
        }
    }
}

fn main() {
    let postgres = std::env::var("SCREENING_BENCH_BACKEND").as_deref() == Ok("postgres");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let backend = if postgres {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let test_store = TestStore::new(backend)
            .await
            .expect("the bench's database (PostgreSQL reachable?)");
        let store = test_store.store.clone();
        let now = now_utc();
        let data = demo_clinic(screening_core::london::today(now), APPOINTMENTS);
        store.seed(&data, now).await.expect("seed");
        // Confirmations go through a second instance on PostgreSQL, as behind a load balancer.
        let confirming: Arc<dyn ScreeningStore> = if postgres {
            screening::store::connect(&test_store.url)
                .await
                .expect("a second instance")
        } else {
            store.clone()
        };
        let user = screening_web::server::auth::save_account(
            store.as_ref(),
            "bench.user",
            "Bench",
            StaffRole::Staff,
            "a-bench-password",
        )
        .await
        .unwrap();
        let hub = Hub::new(store.clone(), HubConfig::default());
        let state = AppState::new(store.clone(), WebConfig::default());
        let app = router(state.clone(), &hub);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let events_url = format!(
            "http://{}/clinics/{}/events",
            listener.local_addr().unwrap(),
            data.clinic.id
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        // The pages, each on its own connection.
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        for _ in 0..PAGES / STREAMS_PER_SESSION {
            let cookie = format!(
                "screening_session={}",
                start_session(store.as_ref(), &user).await.unwrap()
            );
            for _ in 0..STREAMS_PER_SESSION {
                let response = client
                    .get(&events_url)
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                tokio::spawn(read_page(response, seen_tx.clone()));
            }
        }
        eprintln!("{PAGES} pages open");
        // Let every page's first look finish, then count reads while nothing changes.
        tokio::time::sleep(Duration::from_secs(1)).await;
        while seen.try_recv().is_ok() {}
        let reads_before = state.live_status_reads.load(Ordering::Relaxed);
        tokio::time::sleep(IDLE).await;
        let idle_reads = state.live_status_reads.load(Ordering::Relaxed) - reads_before;

        // Each sendable appointment: sent, taken, then confirmed while every page watches.
        let sendable: Vec<_> = data
            .appointments
            .iter()
            .filter(|a| a.state.after(AppointmentAction::SendToModality).is_some())
            .collect();
        let gateway = data.gateway.id;
        let reads_before = state.live_status_reads.load(Ordering::Relaxed);
        let mut latencies = Vec::new();
        let mut missing = 0;
        for appointment in &sendable {
            let message_id = MessageId::generate();
            let request = ActionRequest::new(
                AppointmentAction::SendToModality,
                now_utc(),
                message_id,
                Actor("bench".into()),
            );
            act_on_appointment(confirming.as_ref(), appointment.id, &request)
                .await
                .expect("send");
            confirming
                .take_pending(gateway, now_utc(), now_utc() + chrono::TimeDelta::seconds(60), 10)
                .await
                .unwrap();
            // Let the pages see "delivered" first, as they would with a real gateway.
            tokio::time::sleep(Duration::from_millis(20)).await;
            while seen.try_recv().is_ok() {}
            let started = Instant::now();
            confirming
                .confirm(gateway, message_id, now_utc())
                .await
                .unwrap();
            let wanted = appointment.id.to_string();
            let mut arrived = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while arrived < PAGES {
                match tokio::time::timeout_at(deadline, seen.recv()).await {
                    Ok(Some(event)) => {
                        if event.appointment_id == wanted && event.status == "confirmed" {
                            latencies.push((event.at - started).as_secs_f64() * 1000.0);
                            arrived += 1;
                        }
                    }
                    _ => {
                        missing += PAGES - arrived;
                        break;
                    }
                }
            }
        }
        let change_reads = state.live_status_reads.load(Ordering::Relaxed) - reads_before;
        latencies.sort_by(f64::total_cmp);
        let changes = sendable.len() * 3;
        println!();
        println!(
            "| Database | Pages open | Reads in {} s idle | Confirmations | Arrivals | p50 (ms) | p99 (ms) | max (ms) | Reads per change |",
            IDLE.as_secs()
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        println!(
            "| {} | {PAGES} | {idle_reads} | {} | {}{} | {:.1} | {:.1} | {:.1} | {:.2} |",
            if postgres {
                "PostgreSQL (pages on A, confirmations through B)"
            } else {
                "SQLite"
            },
            sendable.len(),
            latencies.len(),
            if missing > 0 {
                format!(" ({missing} missing)")
            } else {
                String::new()
            },
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies.last().copied().unwrap_or(f64::NAN),
            change_reads as f64 / changes as f64,
        );
        println!(
            "\nTargets: no reads while idle ({}), confirmation → every page p99 < 50 ms ({}).",
            if idle_reads == 0 { "met" } else { "NOT met" },
            if percentile(&latencies, 99.0) < 50.0 && missing == 0 {
                "met"
            } else {
                "NOT met"
            }
        );
        drop(confirming);
        test_store.cleanup().await;
    });
}
