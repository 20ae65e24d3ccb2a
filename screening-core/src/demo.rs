//! The demo data set: one provider, one setting, a polling gateway with a FHIR route, and a clinic on
//! a given day with ten participants whose NHS numbers are valid test numbers (999 range).
//!
//! Ids are derived from fixed constants and the day, so seeding twice changes nothing. Pure data:
//! stores seed it, and tests, benches and examples build on it.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::prelude::*;

/// Everything the demo seed writes.
#[derive(Debug, Clone)]
pub struct DemoData {
    /// The screening provider.
    pub provider: Provider,
    /// The screening site.
    pub setting: Setting,
    /// A polling gateway whose FHIR route logs the payload (masked).
    pub gateway: Gateway,
    /// The clinic for the day.
    pub clinic: Clinic,
    /// One slot per participant, every 10 minutes from 09:00 UK time.
    pub slots: Vec<ClinicSlot>,
    /// Ten participants.
    pub participants: Vec<Participant>,
    /// One appointment per slot, in a mix of states so every button can be tried.
    pub appointments: Vec<Appointment>,
}

const NAMES: [(&str, &str); 10] = [
    ("Janet", "Williams"),
    ("Priya", "Patel"),
    ("Margaret", "O'Brien"),
    ("Aisha", "Khan"),
    ("Susan", "Taylor"),
    ("Grace", "Okafor"),
    ("Helen", "Jones"),
    ("Mei", "Chen"),
    ("Fiona", "MacDonald"),
    ("Ruth", "Evans"),
];

impl DemoData {
    /// The inputs of the FHIR `ServiceRequest` for the `n`th appointment.
    pub fn service_request_input(
        &self,
        n: usize,
        message_id: MessageId,
        authored_on: DateTime<Utc>,
    ) -> ServiceRequestInput<'_> {
        ServiceRequestInput {
            message_id,
            appointment_id: self.appointments[n].id,
            participant: &self.participants[n],
            slot: &self.slots[n],
            provider: &self.provider,
            setting: &self.setting,
            authored_on,
            revoked: false,
        }
    }

    /// A pending message for the demo gateway about the first appointment, as the outbox holds it.
    pub fn pending_message(&self, id: MessageId, created_at: DateTime<Utc>) -> Message {
        Message {
            id,
            gateway_id: self.gateway.id,
            participant_id: self.participants[0].id,
            appointment_id: self.appointments[0].id,
            message_type: MessageType::fhir(),
            payload: "{\"resourceType\":\"ServiceRequest\"}".into(),
            destination: self.gateway.routes[0].destination.clone(),
            created_at,
            delivered_at: None,
            lease_expires_at: None,
            confirmed_at: None,
            failed_at: None,
            attempts: 0,
            last_error: None,
            resend_of: None,
        }
    }
}

/// Kinds of demo id, kept apart in the top bits of the UUID.
#[derive(Clone, Copy)]
enum Kind {
    Provider = 1,
    Setting,
    Gateway,
    Participant,
    Clinic,
    Slot,
    Appointment,
}

fn demo_id(kind: Kind, day: i32, index: u32) -> Uuid {
    // 0x5eed in the first group marks demo rows when someone looks at the database.
    Uuid::from_u128(
        0x5eed_0000_0000_4000_8000_0000_0000_0000
            | (kind as u128) << 64
            | (day as u32 as u128) << 32
            | index as u128,
    )
}

/// The first `count` valid NHS numbers in the 999 test range.
pub fn test_nhs_numbers(count: usize) -> Vec<NhsNumber> {
    // Each nine-digit prefix has one valid tenth digit, or none when its check digit would be 10.
    (999_000_001u64..=999_999_999)
        .step_by(7_919)
        .flat_map(|prefix| (0..10).map(move |last| prefix * 10 + last))
        .filter_map(|candidate| NhsNumber::parse(&candidate.to_string()).ok())
        .take(count)
        .collect()
}

/// The demo data for a clinic on `day`.
pub fn demo_data(day: NaiveDate) -> DemoData {
    demo_clinic(day, NAMES.len())
}

/// The demo set with a clinic of `size` appointments (benchmarks use 100). The first ten are those
/// of [`demo_data`]; later ones reuse the names with other test NHS numbers.
pub fn demo_clinic(day: NaiveDate, size: usize) -> DemoData {
    let day_number = day.num_days_from_ce();
    let provider = Provider {
        id: demo_id(Kind::Provider, 0, 0).into(),
        name: "West Yorkshire Breast Screening Service".into(),
        ods_code: "RR8".into(),
    };
    let setting = Setting {
        id: demo_id(Kind::Setting, 0, 0).into(),
        provider_id: provider.id,
        name: "Leeds St James's Breast Screening Unit".into(),
    };
    let gateway = Gateway {
        id: demo_id(Kind::Gateway, 0, 0).into(),
        name: "Leeds St James's gateway".into(),
        setting_id: setting.id,
        transport: Transport::Polling,
        routes: vec![Route {
            message_type: MessageType::fhir(),
            destination: Destination::parse("log:").expect("a valid destination"),
        }],
    };
    let clinic = Clinic {
        id: demo_id(Kind::Clinic, day_number, 0).into(),
        setting_id: setting.id,
        date: day,
        name: "Morning screening clinic".into(),
    };
    // 09:00 on the clinic's wall clock, GMT or BST.
    let first_start =
        crate::london::to_utc(day.and_time(NaiveTime::from_hms_opt(9, 0, 0).expect("09:00")));
    let states = [
        AppointmentState::CheckedIn,
        AppointmentState::CheckedIn,
        AppointmentState::Arrived,
        AppointmentState::CheckedIn,
        AppointmentState::Pending,
        AppointmentState::Pending,
        AppointmentState::Pending,
        AppointmentState::Pending,
        AppointmentState::Pending,
        AppointmentState::Pending,
    ];
    let mut slots = Vec::new();
    let mut participants = Vec::new();
    let mut appointments = Vec::new();
    for (index, ((first, last), nhs_number)) in
        NAMES.iter().cycle().zip(test_nhs_numbers(size)).enumerate()
    {
        let i = index as u32;
        let slot = ClinicSlot {
            id: demo_id(Kind::Slot, day_number, i).into(),
            clinic_id: clinic.id,
            starts_at: first_start + TimeDelta::minutes(10 * i64::from(i)),
            duration_minutes: 10,
        };
        let participant = Participant {
            id: demo_id(Kind::Participant, 0, i).into(),
            first_name: (*first).into(),
            last_name: (*last).into(),
            date_of_birth: NaiveDate::from_ymd_opt(
                1956 + 2 * (index % 10) as i32 + (index / 10 % 3) as i32,
                1 + i % 12,
                3 + i % 25,
            )
            .expect("a valid date"),
            nhs_number,
            sex: Sex::Female,
        };
        appointments.push(Appointment {
            id: demo_id(Kind::Appointment, day_number, i).into(),
            clinic_slot_id: slot.id,
            participant_id: participant.id,
            state: states[index % states.len()],
            version: 0,
        });
        slots.push(slot);
        participants.push(participant);
    }
    DemoData {
        provider,
        setting,
        gateway,
        clinic,
        slots,
        participants,
        appointments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_uses_ten_distinct_valid_test_numbers() {
        let numbers = test_nhs_numbers(10);
        assert_eq!(numbers.len(), 10);
        assert!(numbers.iter().all(NhsNumber::is_test_number));
        let mut unique = numbers.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
    }

    #[test]
    fn the_same_day_gives_the_same_ids_and_another_day_another_clinic() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let a = demo_data(day);
        let b = demo_data(day);
        assert_eq!(a.clinic.id, b.clinic.id);
        assert_eq!(a.appointments[3].id, b.appointments[3].id);
        let other = demo_data(day.succ_opt().unwrap());
        assert_ne!(a.clinic.id, other.clinic.id);
        assert_eq!(
            a.participants[0].id, other.participants[0].id,
            "participants are shared"
        );
    }

    #[test]
    fn a_large_demo_clinic_starts_with_the_standard_ten() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let small = demo_data(day);
        let large = demo_clinic(day, 100);
        assert_eq!(large.appointments.len(), 100);
        assert_eq!(large.participants[..10], small.participants[..]);
        assert_eq!(large.appointments[..10], small.appointments[..]);
        let mut numbers: Vec<_> = large.participants.iter().map(|p| p.nhs_number).collect();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), 100, "distinct NHS numbers");
    }

    #[test]
    fn some_demo_appointments_can_be_sent_straight_away() {
        let data = demo_data(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        let sendable = data
            .appointments
            .iter()
            .filter(|a| a.state.after(AppointmentAction::SendToModality).is_some())
            .count();
        assert!(sendable >= 3);
    }
}
