//! Pure domain speed: NHS number parsing, and building + serialising one FHIR ServiceRequest.
//! Target: >= 50,000 ServiceRequests built and serialised per second on one core.

use chrono::{DateTime, NaiveDate};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
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
    let participant = Participant {
        id: ParticipantId::from_uuid(Uuid::from_u128(1)),
        first_name: "Janet".into(),
        last_name: "Williams".into(),
        date_of_birth: NaiveDate::from_ymd_opt(1960, 4, 2).unwrap(),
        nhs_number: NhsNumber::parse("9990001235").unwrap(),
        sex: Sex::Female,
    };
    let slot = ClinicSlot {
        id: ClinicSlotId::from_uuid(Uuid::from_u128(2)),
        clinic_id: ClinicId::from_uuid(Uuid::from_u128(3)),
        starts_at: DateTime::from_timestamp(1_795_000_000, 0).unwrap(),
        duration_minutes: 10,
    };
    let provider = Provider {
        id: ProviderId::from_uuid(Uuid::from_u128(4)),
        name: "West Yorkshire Breast Screening Service".into(),
        ods_code: "RR8".into(),
    };
    let setting = Setting {
        id: SettingId::from_uuid(Uuid::from_u128(5)),
        provider_id: provider.id,
        name: "Leeds St James's".into(),
    };
    let mut group = c.benchmark_group("fhir");
    group.throughput(Throughput::Elements(1));
    group.bench_function("build_and_serialise_service_request", |b| {
        b.iter(|| {
            render_service_request(&ServiceRequestInput {
                message_id: MessageId::from_uuid(Uuid::from_u128(6)),
                participant: black_box(&participant),
                slot: &slot,
                provider: &provider,
                setting: &setting,
                authored_on: slot.starts_at,
            })
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, nhs_number, service_request);
criterion_main!(benches);
