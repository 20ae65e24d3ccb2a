//! The clinic page with 100 appointments: its server time, its latency at a fixed offered rate
//! (open loop), and its throughput at saturation, against the release build on loopback. Prints
//! Markdown tables; targets (issue 11, part 3): ≤ 0.5 ms of server time, p99 < 10 ms at 500
//! pages/s, ≥ 3,000 pages/s.
//!
//! ```text
//! cargo bench --bench web_clinic_page
//! SCREENING_BENCH_SECONDS=30 cargo bench --bench web_clinic_page
//! SCREENING_BENCH_RATE=1000 cargo bench --bench web_clinic_page      # the open loop's pages/s
//! SCREENING_BENCH_BACKEND=postgres cargo bench --bench web_clinic_page   # a fresh database on
//!     SCREENING_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test)
//! ```
//!
//! The app runs in this process (SQLite in a temporary folder, a third of the appointments sent so
//! the status column has messages), twice: as configured (the table kept in memory between
//! changes) and reading the table for every request (as before it was kept), for comparison.
//! Server time is a request through the app's router in process, no socket. The load generators
//! share the 2 cores: an open-loop client in this process that sends at a fixed rate and times each
//! page from when it was due (so a stall counts against every page it delays), a closed-loop Rust
//! client, and `wrk` in its own process when it is installed (`apt-get install wrk`).

mod support;
use support::{env_number, percentile};

use std::sync::Arc;
use std::time::{Duration, Instant};

use screening::core::demo::demo_clinic;
use screening::core::prelude::*;
use screening::gateway::hub::{Hub, HubConfig};
use screening::store::testing::{Backend, TestStore};
use screening::store::{now_utc, ScreeningStore};
use screening_web::server::auth::start_session;
use screening_web::server::{router, AppState, WebConfig};

// The allocator the `screening-web` binary uses, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const APPOINTMENTS: usize = 100;
/// Concurrent connections (`SCREENING_BENCH_CONNECTIONS`, default 50).
fn connections() -> usize {
    env_number("SCREENING_BENCH_CONNECTIONS", 50)
}

struct Row {
    tool: String,
    requests: usize,
    p50_ms: f64,
    p99_ms: f64,
    per_second: f64,
    /// Every request's latency (ms), sorted; empty from wrk.
    latencies: Vec<f64>,
}

/// Fills the app's database; returns the clinic page's path.
async fn arrange(store: &Arc<dyn ScreeningStore>) -> String {
    let now = now_utc();
    let data = demo_clinic(screening_core::london::today(now), APPOINTMENTS);
    store.seed(&data, now).await.expect("seed");
    let sendable: Vec<_> = data
        .appointments
        .iter()
        .filter(|a| a.state.after(AppointmentAction::SendToModality).is_some())
        .take(APPOINTMENTS / 3)
        .collect();
    for appointment in sendable {
        let request = ActionRequest::new(
            AppointmentAction::SendToModality,
            now_utc(),
            MessageId::generate(),
            Actor("bench".into()),
        );
        act_on_appointment(store.as_ref(), appointment.id, &request)
            .await
            .expect("send");
    }
    format!("/clinics/{}", data.clinic.id)
}

/// One page, read to its end; anything but 200 stops the bench.
async fn fetch_page(client: &reqwest::Client, url: &str, cookie: &str) {
    let response = client
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();
}

async fn rust_client(url: &str, cookie: &str, duration: Duration) -> Row {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections())
        .build()
        .unwrap();
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections())
        .map(|_| {
            let client = client.clone();
            let url = url.to_string();
            let cookie = cookie.to_string();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let start = Instant::now();
                    fetch_page(&client, &url, &cookie).await;
                    latencies.push(start.elapsed().as_secs_f64() * 1000.0);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Row {
        tool: format!("Rust client in process, {} connections", connections()),
        requests: latencies.len(),
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        per_second: latencies.len() as f64 / elapsed,
        latencies,
    }
}

/// `wrk --latency` in its own process; `None` when wrk is not installed.
fn wrk(url: &str, cookie: &str, duration: Duration) -> Option<Row> {
    let output = std::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", connections()),
            &format!("-d{}s", duration.as_secs()),
            "--latency",
            "-H",
            &format!("Cookie: {cookie}"),
            url,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let millis = |label: &str| -> f64 {
        let value = text
            .lines()
            .find(|line| line.trim_start().starts_with(label))
            .and_then(|line| line.split_whitespace().nth(1))
            .unwrap_or("0ms");
        let (number, unit) = value.split_at(
            value
                .find(|c: char| c.is_alphabetic())
                .unwrap_or(value.len()),
        );
        let number: f64 = number.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => number / 1000.0,
            "s" => number * 1000.0,
            _ => number,
        }
    };
    let number_after = |label: &str| -> f64 {
        text.lines()
            .find(|line| line.contains(label))
            .and_then(|line| line.split_whitespace().find_map(|w| w.parse::<f64>().ok()))
            .unwrap_or(f64::NAN)
    };
    if text.contains("Non-2xx") {
        eprintln!("wrk saw errors:\n{text}");
    }
    Some(Row {
        tool: format!(
            "wrk (own process), {} connections, 2 threads",
            connections()
        ),
        requests: number_after("requests in") as usize,
        p50_ms: millis("50%"),
        p99_ms: millis("99%"),
        per_second: number_after("Requests/sec"),
        latencies: Vec::new(),
    })
}

/// Requests through the router in process, one after another: the server's own time per page
/// (session check, reads, render), with no socket or client.
async fn server_time(app: &axum::Router, path: &str, cookie: &str, requests: usize) -> Row {
    use tower::ServiceExt;
    let mut latencies = Vec::with_capacity(requests);
    let started = Instant::now();
    for _ in 0..requests {
        let request = axum::http::Request::get(path)
            .header("cookie", cookie)
            .body(axum::body::Body::empty())
            .unwrap();
        let start = Instant::now();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Row {
        tool: "in process, one after another".into(),
        requests,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        per_second: requests as f64 / elapsed,
        latencies,
    }
}

/// `rate` pages a second for `duration`, each sent when due whether or not earlier ones have
/// come back, and timed from when it was due.
async fn open_loop(url: &str, cookie: &str, rate: u32, duration: Duration) -> Row {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let period = Duration::from_secs(1) / rate;
    let count = (duration.as_secs_f64() * f64::from(rate)) as u32;
    let start = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let due = start + period * index;
        tokio::time::sleep_until(due).await;
        let (client, url, cookie) = (client.clone(), url.to_string(), cookie.to_string());
        tasks.spawn(async move {
            fetch_page(&client, &url, &cookie).await;
            due.elapsed().as_secs_f64() * 1000.0
        });
    }
    let mut latencies = Vec::with_capacity(count as usize);
    while let Some(latency) = tasks.join_next().await {
        latencies.push(latency.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Row {
        tool: format!("open loop, {rate} pages/s offered"),
        requests: latencies.len(),
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        per_second: latencies.len() as f64 / elapsed,
        latencies,
    }
}

/// Serves `app` on a loopback port; returns its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn main() {
    let seconds: u64 = env_number("SCREENING_BENCH_SECONDS", 10);
    let rate: u32 = env_number("SCREENING_BENCH_RATE", 500);
    let duration = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let backend = match std::env::var("SCREENING_BENCH_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let (rows, metered_rows, page_bytes, test_store) = runtime.block_on(async {
        let test_store = TestStore::new(backend)
            .await
            .expect("PostgreSQL is not reachable (SCREENING_TEST_POSTGRES_URL)");
        let store = test_store.store.clone();
        let path = arrange(&store).await;
        let user = screening_web::server::auth::save_account(
            store.as_ref(),
            "bench.user",
            "Bench",
            StaffRole::Staff,
            "a-bench-password",
        )
        .await
        .unwrap();
        let cookie = format!(
            "screening_session={}",
            start_session(store.as_ref(), &user).await.unwrap()
        );
        let hub = Hub::new(store.clone(), HubConfig::default());
        let kept = router(AppState::new(store.clone(), WebConfig::default()), &hub);
        // A table no older than zero is never served from memory: read for every request.
        let read_every_time = router(
            AppState::new(
                store.clone(),
                WebConfig {
                    clinic_table_max_age: Duration::ZERO,
                    ..WebConfig::default()
                },
            ),
            &hub,
        );
        let url = format!("{}{path}", serve(kept.clone()).await);
        let url_read_every_time = format!("{}{path}", serve(read_every_time.clone()).await);

        let page = reqwest::Client::new()
            .get(&url)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(page.matches("id=\"appointment-").count(), APPOINTMENTS);
        eprintln!(
            "clinic page: {} bytes ({} KiB), {APPOINTMENTS} appointments",
            page.len(),
            page.len() / 1024
        );
        // Where the time goes: the page's database reads alone, one request after another.
        let clinic_id = ClinicId::parse(path.trim_start_matches("/clinics/")).unwrap();
        let reads = 300;
        let started = Instant::now();
        for _ in 0..reads {
            store.clinic_page(clinic_id).await.unwrap();
        }
        eprintln!(
            "the page's database reads alone: {:.2} ms a page",
            started.elapsed().as_secs_f64() * 1000.0 / f64::from(reads)
        );
        let mut rows = Vec::new();
        for (setting, app, url) in [
            ("kept between changes", &kept, &url),
            ("read every time", &read_every_time, &url_read_every_time),
        ] {
            // Warm up: connections, caches, the allocator.
            server_time(app, &path, &cookie, 200).await;
            rust_client(url, &cookie, Duration::from_secs(1)).await;
            rows.push((setting, server_time(app, &path, &cookie, 2000).await));
            rows.push((setting, open_loop(url, &cookie, rate, duration).await));
            rows.push((setting, rust_client(url, &cookie, duration).await));
            let (wrk_url, wrk_cookie) = (url.clone(), cookie.clone());
            if let Some(row) =
                tokio::task::spawn_blocking(move || wrk(&wrk_url, &wrk_cookie, duration))
                    .await
                    .unwrap()
            {
                rows.push((setting, row));
            } else {
                eprintln!("wrk is not installed: no row from it (apt-get install wrk)");
            }
        }
        // The same load with metrics on (request timing in every response, a recorder) and
        // /metrics scraped every second, alternated with metrics off so drift between runs shows.
        let metered = router(
            AppState::new(
                store.clone(),
                WebConfig {
                    metrics_token: Some(METRICS_TOKEN.into()),
                    ..WebConfig::default()
                },
            ),
            &hub,
        );
        let metered_base = serve(metered).await;
        let metered_url = format!("{metered_base}{path}");
        let scrapes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let scraper = {
            let scrapes = scrapes.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut every = tokio::time::interval(Duration::from_secs(1));
                loop {
                    every.tick().await;
                    let response = client
                        .get(format!("{metered_base}/metrics"))
                        .bearer_auth(METRICS_TOKEN)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    response.bytes().await.unwrap();
                    scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        };
        // Short slices, alternated, pooled per setting: this machine's speed drifts under
        // sustained load (by a third over a minute), which would otherwise favour whichever
        // setting runs first.
        let slice = Duration::from_secs(2);
        let slices = (duration.as_secs() / 2).max(1) as u32;
        let mut pooled: [(Vec<f64>, f64); 2] = Default::default();
        for _ in 0..slices {
            for (index, target) in [&url, &metered_url].into_iter().enumerate() {
                let row = rust_client(target, &cookie, slice).await;
                pooled[index].0.extend(row.latencies);
                pooled[index].1 += row.per_second / f64::from(slices);
            }
        }
        let metered_rows: Vec<Row> = pooled
            .into_iter()
            .zip(["metrics off", "metrics on, /metrics scraped every second"])
            .map(|((mut latencies, per_second), tool)| {
                latencies.sort_by(f64::total_cmp);
                Row {
                    tool: format!("{tool} ({slices} slices of 2 s, alternated)"),
                    requests: latencies.len(),
                    p50_ms: percentile(&latencies, 50.0),
                    p99_ms: percentile(&latencies, 99.0),
                    per_second,
                    latencies,
                }
            })
            .collect();
        scraper.abort();
        eprintln!(
            "/metrics was scraped {} times",
            scrapes.load(std::sync::atomic::Ordering::Relaxed)
        );
        (rows, metered_rows, page.len(), test_store)
    });
    runtime.block_on(test_store.cleanup());
    println!("\n| Table | Load | Requests | p50 (ms) | p99 (ms) | Pages/s |");
    println!("|---|---|---|---|---|---|");
    for (setting, row) in &rows {
        println!(
            "| {setting} | {} | {} | {:.2} | {:.2} | {:.0} |",
            row.tool, row.requests, row.p50_ms, row.p99_ms, row.per_second
        );
    }
    println!(
        "\nDatabase: {backend:?}. Page: {page_bytes} bytes ({} bytes an appointment). {seconds} s \
         per load. Targets: server time ≤ 0.5 ms; p99 < 10 ms at 500 pages/s offered; ≥ 3,000 \
         pages/s.",
        page_bytes / APPOINTMENTS
    );

    println!("\n| Metrics | Requests | p50 (ms) | p99 (ms) | Requests/s |");
    println!("|---|---|---|---|---|");
    for row in &metered_rows {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.0} |",
            row.tool, row.requests, row.p50_ms, row.p99_ms, row.per_second
        );
    }
    let (off, on) = (metered_rows[0].p99_ms, metered_rows[1].p99_ms);
    println!(
        "\np99 with metrics off {off:.2} ms, on {on:.2} ms: {:+.1}% (target: within 5%).",
        (on / off - 1.0) * 100.0
    );
}

/// The bearer token of the metered app's /metrics.
const METRICS_TOKEN: &str = "bench-metrics-token-0123456789";
