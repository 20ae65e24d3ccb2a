//! Pure domain speed: NHS number parsing, building + serialising one FHIR ServiceRequest, and the
//! hub's work on each order it hands out (its wire form, its signature) and the gateway's check.
//! Target: >= 50,000 ServiceRequests built and serialised per second on one core.

use chrono::NaiveDate;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use screening::core::demo::demo_data;
use screening::core::prelude::*;
use screening::core::signing::{HubSigningKey, TrustedHubKeys};
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

/// Per order handed out: the hub reads the stored payload into its wire form and signs it; the
/// gateway checks the signature.
fn signing(c: &mut Criterion) {
    let demo = demo_data(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
    let authored_on = demo.slots[0].starts_at;
    let message_id = MessageId::from_uuid(Uuid::from_u128(6));
    let payload =
        render_service_request(&demo.service_request_input(0, message_id, authored_on)).unwrap();
    let wire = GatewayMessage {
        message_id,
        message_type: MessageType::fhir(),
        payload: serde_json::from_str(&payload).unwrap(),
        destination: Destination::parse("https://ris.example.nhs.uk/orders").unwrap(),
        signature: None,
    };
    let key = HubSigningKey::from_seed([7; 32]);
    let trusted = TrustedHubKeys::new([key.public_key()], true);
    let signed = key.signed(wire.clone(), authored_on);
    let mut group = c.benchmark_group("signing");
    group.throughput(Throughput::Elements(1));
    group.bench_function("read_fhir_payload_into_wire_form", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&payload)).unwrap())
    });
    group.bench_function("sign_fhir_order", |b| {
        b.iter(|| key.sign(black_box(&wire), authored_on))
    });
    group.bench_function("verify_fhir_order", |b| {
        b.iter(|| trusted.verify(black_box(&signed), authored_on).unwrap())
    });
    group.finish();
}

criterion_group!(benches, nhs_number, service_request, signing);
criterion_main!(benches);
