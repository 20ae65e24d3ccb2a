//! Pure domain speed: NHS number parsing, and building + serialising one FHIR ServiceRequest.
//! Target: >= 50,000 ServiceRequests built and serialised per second on one core.

use chrono::NaiveDate;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use screening::core::demo::demo_data;
use screening::core::prelude::*;
use uuid::Uuid;

fn nhs_number(c: &mut Criterion) {
    let mut group = c.benchmark_group("nhs_number");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse", |b| {
        b.iter(|| NhsNumber::parse(black_box("943 476 5919")))
    });
    group.finish();
}

fn service_request(c: &mut Criterion) {
    let demo = demo_data(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
    let authored_on = demo.slots[0].starts_at;
    let mut group = c.benchmark_group("fhir");
    group.throughput(Throughput::Elements(1));
    group.bench_function("build_and_serialise_service_request", |b| {
        b.iter(|| {
            let input = demo.service_request_input(
                0,
                MessageId::from_uuid(Uuid::from_u128(6)),
                authored_on,
            );
            render_service_request(black_box(&input)).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, nhs_number, service_request);
criterion_main!(benches);
