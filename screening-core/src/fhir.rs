//! FHIR R4 rendering: the `ServiceRequest` for screening mammography, built with fhirbolt's typed model.
//!
//! The participant travels as a contained `Patient` (NHS number, name, sex, date of birth) because
//! the modality's worklist needs them and a gateway cannot look them up.

use chrono::{DateTime, SecondsFormat, Utc};
use fhirbolt::model::r4::resources::{Patient, ServiceRequest, ServiceRequestOccurrence};
use fhirbolt::model::r4::types::{CodeableConcept, Coding, HumanName, Identifier, Reference};
use fhirbolt::model::r4::Resource;

use crate::ids::{AppointmentId, MessageId};
use crate::people::{ClinicSlot, Participant, Provider, Setting};

/// The NHS number identifier system.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// The ODS organisation code identifier system.
pub const ODS_CODE_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
/// SNOMED CT.
pub const SNOMED_SYSTEM: &str = "http://snomed.info/sct";
/// The HL7 service category code system.
pub const SERVICE_CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/service-category";
/// SNOMED CT: screening mammography of breast.
pub const SCREENING_MAMMOGRAPHY: (&str, &str) = ("1224585002", "Screening mammography of breast");
/// SNOMED CT: screening procedure (the reason).
pub const SCREENING_PROCEDURE: (&str, &str) = ("395555000", "Screening procedure");
/// The identifier type of an accession number: HL7 v2 table 0203, `ACSN`.
pub const ACCESSION_NUMBER_TYPE: (&str, &str) =
    ("http://terminology.hl7.org/CodeSystem/v2-0203", "ACSN");
/// Our own namespace for accession numbers (the worklist reads the identifier by its type).
pub const ACCESSION_NUMBER_SYSTEM: &str = "urn:nhs-breast-screening:accession-number";
/// The id of the contained `Patient`, referenced as `#patient`.
const CONTAINED_PATIENT_ID: &str = "patient";

/// Everything a `ServiceRequest` says, gathered by the caller.
#[derive(Debug, Clone, Copy)]
pub struct ServiceRequestInput<'a> {
    /// Becomes the resource id, so the order and the message share one identity.
    pub message_id: MessageId,
    /// The appointment, whose accession number the order carries (the same on every send).
    pub appointment_id: AppointmentId,
    /// Whom to screen.
    pub participant: &'a Participant,
    /// When.
    pub slot: &'a ClinicSlot,
    /// The requesting organisation.
    pub provider: &'a Provider,
    /// Where it is performed.
    pub setting: &'a Setting,
    /// When the order was written.
    pub authored_on: DateTime<Utc>,
    /// Whether this withdraws the order (`status: revoked`) rather than places it (`active`).
    pub revoked: bool,
}

/// A `ServiceRequest` could not be rendered or read back.
#[derive(Debug, thiserror::Error)]
#[error("FHIR: {0}")]
pub struct FhirError(String);

fn fhir_date_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn snomed((code, display): (&str, &str)) -> CodeableConcept {
    coded(SNOMED_SYSTEM, code, display)
}

fn coded(system: &str, code: &str, display: &str) -> CodeableConcept {
    CodeableConcept {
        coding: vec![Coding {
            system: Some(system.into()),
            code: Some(code.into()),
            display: Some(display.into()),
            ..Default::default()
        }],
        text: Some(display.into()),
        ..Default::default()
    }
}

fn identifier(system: &str, value: &str) -> Identifier {
    Identifier {
        system: Some(system.into()),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn contained_patient(participant: &Participant) -> Patient {
    Patient {
        id: Some(CONTAINED_PATIENT_ID.into()),
        identifier: vec![identifier(
            NHS_NUMBER_SYSTEM,
            &participant.nhs_number.digits(),
        )],
        name: vec![HumanName {
            family: Some(participant.last_name.as_str().into()),
            given: vec![participant.first_name.as_str().into()],
            ..Default::default()
        }],
        gender: Some(participant.sex.code().into()),
        birth_date: Some(
            participant
                .date_of_birth
                .format("%Y-%m-%d")
                .to_string()
                .into(),
        ),
        ..Default::default()
    }
}

/// Builds the screening mammography `ServiceRequest`.
pub fn service_request(input: &ServiceRequestInput<'_>) -> ServiceRequest {
    let participant = input.participant;
    ServiceRequest {
        id: Some(input.message_id.to_string().into()),
        identifier: vec![Identifier {
            r#type: Some(Box::new(CodeableConcept {
                coding: vec![Coding {
                    system: Some(ACCESSION_NUMBER_TYPE.0.into()),
                    code: Some(ACCESSION_NUMBER_TYPE.1.into()),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..identifier(
                ACCESSION_NUMBER_SYSTEM,
                &crate::worklist::accession_number(input.appointment_id),
            )
        }],
        contained: vec![Resource::Patient(Box::new(contained_patient(participant)))],
        status: if input.revoked { "revoked" } else { "active" }.into(),
        intent: "order".into(),
        category: vec![coded(SERVICE_CATEGORY_SYSTEM, "imaging", "Imaging")],
        code: Some(Box::new(snomed(SCREENING_MAMMOGRAPHY))),
        subject: Box::new(Reference {
            reference: Some(format!("#{CONTAINED_PATIENT_ID}").into()),
            r#type: Some("Patient".into()),
            identifier: Some(Box::new(identifier(
                NHS_NUMBER_SYSTEM,
                &participant.nhs_number.digits(),
            ))),
            ..Default::default()
        }),
        occurrence: Some(ServiceRequestOccurrence::DateTime(
            fhir_date_time(input.slot.starts_at).into(),
        )),
        authored_on: Some(fhir_date_time(input.authored_on).into()),
        requester: Some(Box::new(Reference {
            r#type: Some("Organization".into()),
            identifier: Some(Box::new(identifier(
                ODS_CODE_SYSTEM,
                &input.provider.ods_code,
            ))),
            display: Some(input.provider.name.as_str().into()),
            ..Default::default()
        })),
        performer: vec![Reference {
            r#type: Some("HealthcareService".into()),
            display: Some(input.setting.name.as_str().into()),
            ..Default::default()
        }],
        reason_code: vec![snomed(SCREENING_PROCEDURE)],
        ..Default::default()
    }
}

/// Renders the `ServiceRequest` as FHIR JSON, the `FHIR` message payload.
pub fn render_service_request(input: &ServiceRequestInput<'_>) -> Result<String, FhirError> {
    fhirbolt::json::to_string(&service_request(input), None)
        .map_err(|error| FhirError(format!("rendering ServiceRequest: {error}")))
}

/// Reads a `ServiceRequest` back with fhirbolt's strict deserialisation (unknown fields are errors).
pub fn parse_service_request(json: &str) -> Result<ServiceRequest, FhirError> {
    // Read through the `Resource` enum: fhirbolt 0.4 fails on a concrete `ServiceRequest` that has
    // `contained` resources ("expected Code"), while the enum path reads it correctly.
    let resource: Resource = fhirbolt::json::from_str(json, None)
        .map_err(|error| FhirError(format!("reading ServiceRequest: {error}")))?;
    match resource {
        Resource::ServiceRequest(request) => Ok(*request),
        _ => Err(FhirError(
            "reading ServiceRequest: the JSON is another resource type".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClinicId, ClinicSlotId, ParticipantId, ProviderId, SettingId};
    use crate::nhs_number::NhsNumber;
    use crate::people::Sex;
    use chrono::NaiveDate;
    use uuid::Uuid;

    pub(crate) struct Fixture {
        participant: Participant,
        slot: ClinicSlot,
        provider: Provider,
        setting: Setting,
    }

    fn fixture() -> Fixture {
        Fixture {
            participant: Participant {
                id: ParticipantId::from_uuid(Uuid::from_u128(1)),
                first_name: "Janet".into(),
                last_name: "Williams".into(),
                date_of_birth: NaiveDate::from_ymd_opt(1960, 4, 2).unwrap(),
                nhs_number: NhsNumber::parse("9990001235").unwrap(),
                sex: Sex::Female,
            },
            slot: ClinicSlot {
                id: ClinicSlotId::from_uuid(Uuid::from_u128(2)),
                clinic_id: ClinicId::from_uuid(Uuid::from_u128(3)),
                starts_at: DateTime::from_timestamp(1_795_000_000, 0).unwrap(),
                duration_minutes: 10,
            },
            provider: Provider {
                id: ProviderId::from_uuid(Uuid::from_u128(4)),
                name: "West Yorkshire Breast Screening".into(),
                ods_code: "RR8".into(),
            },
            setting: Setting {
                id: SettingId::from_uuid(Uuid::from_u128(5)),
                provider_id: ProviderId::from_uuid(Uuid::from_u128(4)),
                name: "Leeds St James's".into(),
            },
        }
    }

    fn input(f: &Fixture) -> ServiceRequestInput<'_> {
        ServiceRequestInput {
            message_id: MessageId::from_uuid(Uuid::from_u128(0xabc)),
            appointment_id: AppointmentId::from_uuid(Uuid::from_u128(0xdef)),
            participant: &f.participant,
            slot: &f.slot,
            provider: &f.provider,
            setting: &f.setting,
            authored_on: DateTime::from_timestamp(1_794_990_000, 0).unwrap(),
            revoked: false,
        }
    }

    #[test]
    fn the_payload_carries_every_required_element() {
        let f = fixture();
        let json: serde_json::Value =
            serde_json::from_str(&render_service_request(&input(&f)).unwrap()).unwrap();
        assert_eq!(json["resourceType"], "ServiceRequest");
        assert_eq!(json["id"], "00000000-0000-0000-0000-000000000abc");
        assert_eq!(json["status"], "active");
        assert_eq!(json["identifier"][0]["type"]["coding"][0]["code"], "ACSN");
        assert_eq!(json["identifier"][0]["value"], "BS00000000000DEF");
        assert_eq!(json["intent"], "order");
        assert_eq!(
            json["category"][0]["coding"][0]["system"],
            SERVICE_CATEGORY_SYSTEM
        );
        assert_eq!(json["code"]["coding"][0]["system"], SNOMED_SYSTEM);
        assert_eq!(json["code"]["coding"][0]["code"], "1224585002");
        assert_eq!(json["subject"]["identifier"]["system"], NHS_NUMBER_SYSTEM);
        assert_eq!(json["subject"]["identifier"]["value"], "9990001235");
        assert_eq!(json["subject"]["reference"], "#patient");
        assert_eq!(json["occurrenceDateTime"], "2026-11-18T11:06:40Z");
        assert_eq!(json["authoredOn"], "2026-11-18T08:20:00Z");
        assert_eq!(json["requester"]["identifier"]["value"], "RR8");
        assert_eq!(json["performer"][0]["display"], "Leeds St James's");
        assert_eq!(json["reasonCode"][0]["coding"][0]["code"], "395555000");
        let patient = &json["contained"][0];
        assert_eq!(patient["resourceType"], "Patient");
        assert_eq!(patient["birthDate"], "1960-04-02");
        assert_eq!(patient["gender"], "female");
        assert_eq!(patient["name"][0]["family"], "Williams");
    }

    #[test]
    fn the_payload_round_trips_through_strict_deserialisation() {
        let f = fixture();
        let built = service_request(&input(&f));
        let json = render_service_request(&input(&f)).unwrap();
        let parsed = parse_service_request(&json).unwrap();
        assert_eq!(parsed, built);
    }

    #[test]
    fn strict_deserialisation_rejects_a_request_without_intent() {
        let f = fixture();
        let mut json: serde_json::Value =
            serde_json::from_str(&render_service_request(&input(&f)).unwrap()).unwrap();
        json.as_object_mut().unwrap().remove("intent");
        let error = parse_service_request(&json.to_string()).unwrap_err();
        assert!(error.to_string().contains("intent"), "{error}");
    }
}
