//! The DICOM Modality Worklist item an order becomes, and how a modality's C-FIND query matches it
//! (DICOM PS3.4 K.2.2 and C.2.2.2). Pure: the gateway's worklist SCP does the network and storage.
//!
//! Values are held as DICOM writes them: PN `SURNAME^Given`, DA `YYYYMMDD`, TM `HHMMSS` in UK local
//! time (DICOM dates and times are local; a modality in Leeds shows 09:00 for a 09:00 slot, GMT or
//! BST), CS `F`/`M`/`O`, and text in UTF-8 (`SpecificCharacterSet` `ISO_IR 192`).

use chrono::{DateTime, NaiveDate, Utc};

use crate::fhir::{ACCESSION_NUMBER_TYPE, NHS_NUMBER_SYSTEM, SCREENING_MAMMOGRAPHY};
use crate::ids::{AppointmentId, MessageId};

/// `SpecificCharacterSet` for UTF-8.
pub const CHARACTER_SET: &str = "ISO_IR 192";
/// The modality of breast screening.
pub const MAMMOGRAPHY: &str = "MG";
/// `IssuerOfPatientID` for NHS numbers.
pub const NHS_ISSUER: &str = "NHS";
/// The longest DICOM SH value (AccessionNumber, RequestedProcedureID, ScheduledProcedureStepID).
pub const SHORT_STRING_MAX: usize = 16;

/// The accession number of an appointment's order: `BS` and 14 hex digits of the appointment id.
///
/// Derived from the appointment, not the message, so a Resend keeps it: the modality and the RIS
/// see the same order replaced, not a second order beside the first.
pub fn accession_number(appointment_id: AppointmentId) -> String {
    let low_56_bits = appointment_id.as_uuid().as_u128() & ((1 << 56) - 1);
    format!("BS{low_56_bits:014X}")
}

/// A DICOM UID under the `2.25` root (ISO/IEC 9834-8): the UUID as one decimal integer. Stable for
/// a message, so a redelivered order keeps its StudyInstanceUID.
pub fn uid_from_message(message_id: MessageId) -> String {
    format!("2.25.{}", message_id.as_uuid().as_u128())
}

/// One scheduled screening on the worklist.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorklistItem {
    /// The message the order came in; the item's identity (redelivery never duplicates it).
    pub message_id: MessageId,
    /// PatientID: the NHS number, 10 digits.
    pub patient_id: String,
    /// PatientName, DICOM PN: `SURNAME^Given`.
    pub patient_name: String,
    /// PatientBirthDate, DA.
    pub birth_date: String,
    /// PatientSex, CS: `F`, `M` or `O`.
    pub sex: String,
    /// AccessionNumber (SH): the same for every send of one appointment.
    pub accession_number: String,
    /// StudyInstanceUID, from the message id.
    pub study_instance_uid: String,
    /// RequestedProcedureID (SH): the accession number, one procedure per order.
    pub requested_procedure_id: String,
    /// ScheduledProcedureStepID (SH): from the message id.
    pub step_id: String,
    /// ScheduledProcedureStepStartDate, DA, UK local.
    pub start_date: String,
    /// ScheduledProcedureStepStartTime, TM, UK local.
    pub start_time: String,
    /// ScheduledStationAETitle: the modality that should do it; empty for any.
    pub station_ae_title: String,
    /// ScheduledProcedureStepDescription and RequestedProcedureDescription.
    pub description: String,
    /// The SNOMED CT code of the procedure (ScheduledProtocolCodeSequence).
    pub procedure_code: String,
}

/// An order that cannot become a worklist item; says which part is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worklist: {0}")]
pub struct WorklistError(String);

fn missing(what: &str) -> WorklistError {
    WorklistError(format!("the ServiceRequest has no {what}"))
}

/// What the order asks of the worklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorklistOrder {
    /// Schedule (or replace) this item.
    Schedule(Box<WorklistItem>),
    /// Take the appointment's item off the worklist (the order was revoked: the appointment was
    /// cancelled after it was sent).
    Revoke {
        /// The accession number whose item goes.
        accession_number: String,
    },
}

impl WorklistOrder {
    /// Reads the FHIR `ServiceRequest` payload of `message_id`; `station_ae_title` comes from the
    /// gateway's configuration (empty: any modality).
    pub fn from_service_request(
        message_id: MessageId,
        json: &str,
        station_ae_title: &str,
    ) -> Result<WorklistOrder, WorklistError> {
        let request: OrderView = serde_json::from_str(json).map_err(|error| {
            WorklistError(format!("the ServiceRequest cannot be read: {error}"))
        })?;
        if request.resource_type != "ServiceRequest" {
            return Err(WorklistError(format!(
                "the order is a {}, not a ServiceRequest",
                request.resource_type
            )));
        }
        let accession_number = accession_of(&request)?;
        match request.status.as_str() {
            "active" => {}
            "revoked" => return Ok(WorklistOrder::Revoke { accession_number }),
            other => {
                return Err(WorklistError(format!(
                    "the ServiceRequest's status {other:?} is neither active nor revoked"
                )))
            }
        }
        let patient = request
            .contained
            .iter()
            .find(|resource| resource.resource_type == "Patient")
            .ok_or_else(|| missing("contained Patient"))?;
        let patient_id = patient
            .identifier
            .iter()
            .find(|id| id.system.as_deref() == Some(NHS_NUMBER_SYSTEM))
            .and_then(|id| id.value.clone())
            .ok_or_else(|| missing("NHS number on its Patient"))?;
        let name = patient
            .name
            .first()
            .ok_or_else(|| missing("patient name"))?;
        let family = name.family.clone().ok_or_else(|| missing("family name"))?;
        let birth_date = patient
            .birth_date
            .clone()
            .ok_or_else(|| missing("birth date"))?;
        let birth_date = NaiveDate::parse_from_str(&birth_date, "%Y-%m-%d").map_err(|_| {
            WorklistError(format!("the birth date {birth_date:?} is not a full date"))
        })?;
        let sex = match patient.gender.as_deref() {
            Some("female") => "F",
            Some("male") => "M",
            _ => "O",
        };
        let starts_at = request
            .occurrence_date_time
            .clone()
            .ok_or_else(|| missing("occurrenceDateTime"))?;
        let starts_at = DateTime::parse_from_rfc3339(&starts_at)
            .map_err(|_| {
                WorklistError(format!(
                    "the occurrence {starts_at:?} is not a date and time with a zone"
                ))
            })?
            .with_timezone(&Utc);
        let local = crate::london::local(starts_at);
        let code = request
            .code
            .as_ref()
            .and_then(|c| c.coding.first())
            .and_then(|c| c.code.clone())
            .unwrap_or_else(|| SCREENING_MAMMOGRAPHY.0.to_string());
        let given = &name.given;
        let step = message_id.as_uuid().as_u128() & ((1 << 56) - 1);
        Ok(WorklistOrder::Schedule(Box::new(WorklistItem {
            message_id,
            patient_id,
            patient_name: person_name(&family, given),
            birth_date: birth_date.format("%Y%m%d").to_string(),
            sex: sex.to_string(),
            requested_procedure_id: accession_number.clone(),
            accession_number,
            study_instance_uid: uid_from_message(message_id),
            step_id: format!("SP{step:014X}"),
            start_date: local.format("%Y%m%d").to_string(),
            start_time: local.format("%H%M%S").to_string(),
            station_ae_title: station_ae_title.to_string(),
            description: "Screening mammography".to_string(),
            procedure_code: code,
        })))
    }
}

fn accession_of(request: &OrderView) -> Result<String, WorklistError> {
    let accession = request
        .identifier
        .iter()
        .find(|id| {
            id.r#type.as_ref().is_some_and(|t| {
                t.coding
                    .iter()
                    .any(|c| c.code.as_deref() == Some(ACCESSION_NUMBER_TYPE.1))
            })
        })
        .and_then(|id| id.value.clone())
        .ok_or_else(|| missing("accession number identifier (type ACSN)"))?;
    if accession.is_empty() || accession.len() > SHORT_STRING_MAX || !accession.is_ascii() {
        return Err(WorklistError(format!(
            "the accession number {accession:?} is not 1 to 16 ASCII characters"
        )));
    }
    Ok(accession)
}

// The parts of a FHIR R4 ServiceRequest the worklist reads, through serde. The hub renders and
// checks the whole resource with fhirbolt; the gateway reads only these, so the agent does not link
// fhirbolt's deserialisers for every R4 resource type (tens of megabytes of code).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderView {
    resource_type: String,
    status: String,
    #[serde(default)]
    identifier: Vec<IdentifierView>,
    #[serde(default)]
    contained: Vec<PatientView>,
    occurrence_date_time: Option<String>,
    code: Option<CodeableConceptView>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PatientView {
    resource_type: String,
    #[serde(default)]
    identifier: Vec<IdentifierView>,
    #[serde(default)]
    name: Vec<HumanNameView>,
    gender: Option<String>,
    birth_date: Option<String>,
}

#[derive(serde::Deserialize)]
struct IdentifierView {
    r#type: Option<CodeableConceptView>,
    system: Option<String>,
    value: Option<String>,
}

#[derive(serde::Deserialize)]
struct CodeableConceptView {
    #[serde(default)]
    coding: Vec<CodingView>,
}

#[derive(serde::Deserialize)]
struct CodingView {
    code: Option<String>,
}

#[derive(serde::Deserialize)]
struct HumanNameView {
    family: Option<String>,
    #[serde(default)]
    given: Vec<String>,
}

/// DICOM PN: the family name in upper case, then the given names; `^`, `=` and `\` are DICOM's
/// own delimiters, so they become spaces.
fn person_name(family: &str, given: &[String]) -> String {
    let clean = |text: &str| text.replace(['^', '=', '\\'], " ").trim().to_string();
    format!(
        "{}^{}",
        clean(&family.to_uppercase()),
        clean(&given.join(" "))
    )
}

/// A modality's C-FIND query on the worklist: each key it gave a value for (an absent or empty key
/// matches everything, PS3.4 C.2.2.2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorklistQuery {
    /// PatientID: single value or wildcard.
    pub patient_id: Option<String>,
    /// PatientName: wildcard, case-insensitive.
    pub patient_name: Option<String>,
    /// AccessionNumber: single value or wildcard.
    pub accession_number: Option<String>,
    /// Modality in the step.
    pub modality: Option<String>,
    /// ScheduledStationAETitle in the step: an item with none is for any station.
    pub station_ae_title: Option<String>,
    /// ScheduledProcedureStepStartDate: `d`, `a-b`, `a-` or `-b`.
    pub start_date: Option<String>,
    /// ScheduledProcedureStepStartTime: `t`, `a-b`, `a-` or `-b`.
    pub start_time: Option<String>,
}

impl WorklistQuery {
    /// The first and last start dates (DA) a matching item can have, when the query limits them,
    /// so storage reads only those days. `None` when any date can match, or the key is not a
    /// plain date or date range (matching then says what is wrong with it).
    pub fn date_bounds(&self) -> Option<(String, String)> {
        let key = self.start_date.as_deref()?.trim();
        let date = |text: &str| text.len() == 8 && text.chars().all(|c| c.is_ascii_digit());
        match key.split_once('-') {
            None => date(key).then(|| (key.to_string(), key.to_string())),
            Some((low, high)) => {
                let low = match low {
                    "" => "00000000",
                    low if date(low) => low,
                    _ => return None,
                };
                let high = match high {
                    "" => "99999999",
                    high if date(high) => high,
                    _ => return None,
                };
                Some((low.to_string(), high.to_string()))
            }
        }
    }

    /// Whether `item` answers the query.
    pub fn matches(&self, item: &WorklistItem) -> Result<bool, WorklistError> {
        let text =
            |key: &Option<String>, value: &str, fold: bool| match key.as_deref().map(str::trim) {
                None | Some("") | Some("*") => true,
                Some(pattern) => wildcard(pattern, value, fold),
            };
        let station = match self.station_ae_title.as_deref().map(str::trim) {
            None | Some("") | Some("*") => true,
            Some(_) if item.station_ae_title.is_empty() => true,
            Some(pattern) => wildcard(pattern, &item.station_ae_title, false),
        };
        Ok(text(&self.patient_id, &item.patient_id, false)
            && text(&self.patient_name, &item.patient_name, true)
            && text(&self.accession_number, &item.accession_number, false)
            && text(&self.modality, MAMMOGRAPHY, false)
            && station
            && in_range(self.start_date.as_deref(), &item.start_date, 8, "date")?
            && in_range(self.start_time.as_deref(), &item.start_time, 6, "time")?)
    }
}

/// `*` (any run) and `?` (one character) wildcard matching; `fold` compares case-insensitively.
fn wildcard(pattern: &str, value: &str, fold: bool) -> bool {
    if fold {
        wildmatch::WildMatch::new_case_insensitive(pattern).matches(value)
    } else {
        wildmatch::WildMatch::new(pattern).matches(value)
    }
}

/// DA/TM range matching. Values compare as fixed-width digit strings: TM keys may be shorter
/// (`0900` is 09:00:00) or carry fractions, which are cut.
fn in_range(
    key: Option<&str>,
    value: &str,
    width: usize,
    what: &str,
) -> Result<bool, WorklistError> {
    let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
        return Ok(true);
    };
    let normalise = |part: &str, pad: char| -> Result<String, WorklistError> {
        let digits: String = part
            .split('.')
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| *c != ':')
            .collect();
        if digits.is_empty() || digits.len() > width || !digits.chars().all(|c| c.is_ascii_digit())
        {
            return Err(WorklistError(format!(
                "the {what} key {key:?} is not a DICOM {what} or range"
            )));
        }
        let mut padded = digits;
        while padded.len() < width {
            padded.push(pad);
        }
        Ok(padded)
    };
    let (low, high) = match key.split_once('-') {
        None => {
            let exact = normalise(key, '0')?;
            return Ok(if width == 6 {
                // A time matches to the precision given: `0900` is any second of 09:00.
                let given = key.split('.').next().unwrap_or("").replace(':', "").len();
                value.get(..given) == exact.get(..given)
            } else {
                value == exact
            });
        }
        Some((low, high)) => (low, high),
    };
    let low_ok = low.is_empty() || value >= normalise(low, '0')?.as_str();
    let high_ok = high.is_empty() || value <= normalise(high, '9')?.as_str();
    if low.is_empty() && high.is_empty() {
        return Err(WorklistError(format!(
            "the {what} range {key:?} has neither end"
        )));
    }
    Ok(low_ok && high_ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::{render_service_request, ServiceRequestInput};
    use crate::ids::{ClinicId, ClinicSlotId, ParticipantId, ProviderId, SettingId};
    use crate::nhs_number::NhsNumber;
    use crate::people::{ClinicSlot, Participant, Provider, Setting, Sex};
    use uuid::Uuid;

    const MESSAGE: u128 = 0x1234_5678_9abc_def0_1234_5678_9abc_def0;

    /// The rendered order for a participant at a time.
    fn order_json(starts_at: &str, first: &str, last: &str) -> String {
        let participant = Participant {
            id: ParticipantId::from_uuid(Uuid::from_u128(1)),
            first_name: first.into(),
            last_name: last.into(),
            date_of_birth: NaiveDate::from_ymd_opt(1960, 4, 2).unwrap(),
            nhs_number: NhsNumber::parse("9990001235").unwrap(),
            sex: Sex::Female,
        };
        let slot = ClinicSlot {
            id: ClinicSlotId::from_uuid(Uuid::from_u128(2)),
            clinic_id: ClinicId::from_uuid(Uuid::from_u128(3)),
            starts_at: DateTime::parse_from_rfc3339(starts_at)
                .unwrap()
                .with_timezone(&Utc),
            duration_minutes: 10,
        };
        let provider = Provider {
            id: ProviderId::from_uuid(Uuid::from_u128(4)),
            name: "West Yorkshire".into(),
            ods_code: "RR8".into(),
        };
        let setting = Setting {
            id: SettingId::from_uuid(Uuid::from_u128(5)),
            provider_id: provider.id,
            name: "Leeds".into(),
        };
        render_service_request(&ServiceRequestInput {
            message_id: MessageId::from_uuid(Uuid::from_u128(MESSAGE)),
            appointment_id: AppointmentId::from_uuid(Uuid::from_u128(
                0xfeed_0000_0000_0000_00ab_cdef_0123_4567,
            )),
            participant: &participant,
            slot: &slot,
            provider: &provider,
            setting: &setting,
            authored_on: slot.starts_at,
            revoked: false,
        })
        .unwrap()
    }

    fn order_at(starts_at: &str, first: &str, last: &str) -> WorklistItem {
        let json = order_json(starts_at, first, last);
        let message_id = MessageId::from_uuid(Uuid::from_u128(MESSAGE));
        match WorklistOrder::from_service_request(message_id, &json, "MAMMO1").unwrap() {
            WorklistOrder::Schedule(item) => *item,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_order_becomes_an_item_with_dicom_values() {
        let item = order_at("2026-01-14T09:00:00Z", "Janet", "Williams");
        assert_eq!(item.patient_id, "9990001235");
        assert_eq!(item.patient_name, "WILLIAMS^Janet");
        assert_eq!(item.birth_date, "19600402");
        assert_eq!(item.sex, "F");
        assert_eq!(item.accession_number, "BSABCDEF01234567");
        assert_eq!(item.accession_number.len(), 16);
        assert_eq!(item.requested_procedure_id, item.accession_number);
        assert_eq!(
            item.study_instance_uid,
            format!("2.25.{}", 0x1234_5678_9abc_def0_1234_5678_9abc_def0u128)
        );
        assert!(item.study_instance_uid.len() <= 64);
        assert_eq!(item.step_id, "SP3456789ABCDEF0");
        assert_eq!(item.station_ae_title, "MAMMO1");
        assert_eq!(item.procedure_code, "1224585002");
    }

    #[test]
    fn times_are_uk_local_in_winter_and_summer() {
        let winter = order_at("2026-01-14T09:00:00Z", "Janet", "Williams");
        assert_eq!(
            (winter.start_date.as_str(), winter.start_time.as_str()),
            ("20260114", "090000")
        );
        // 08:30 UTC in July is 09:30 BST.
        let summer = order_at("2026-07-14T08:30:00Z", "Janet", "Williams");
        assert_eq!(
            (summer.start_date.as_str(), summer.start_time.as_str()),
            ("20260714", "093000")
        );
        // 23:30 UTC on 30 June is already 1 July in the UK.
        let late = order_at("2026-06-30T23:30:00Z", "Janet", "Williams");
        assert_eq!(
            (late.start_date.as_str(), late.start_time.as_str()),
            ("20260701", "003000")
        );
    }

    #[test]
    fn names_keep_their_accents_and_apostrophes() {
        assert_eq!(
            order_at("2026-01-14T09:00:00Z", "Siân", "O'Brien").patient_name,
            "O'BRIEN^Siân"
        );
        assert_eq!(
            order_at("2026-01-14T09:00:00Z", "Zoë", "Ng").patient_name,
            "NG^Zoë"
        );
        assert_eq!(
            order_at("2026-01-14T09:00:00Z", "A^B", "C=D").patient_name,
            "C D^A B"
        );
    }

    #[test]
    fn the_accession_number_is_short_and_the_same_for_every_send_of_an_appointment() {
        let appointment = AppointmentId::from_uuid(Uuid::new_v4());
        let accession = accession_number(appointment);
        assert_eq!(accession.len(), 16);
        assert!(accession.starts_with("BS"));
        assert_eq!(accession, accession_number(appointment));
        assert_ne!(
            accession,
            accession_number(AppointmentId::from_uuid(Uuid::new_v4()))
        );
    }

    #[test]
    fn a_revoked_order_takes_the_item_off_and_other_statuses_are_refused() {
        let item = order_at("2026-01-14T09:00:00Z", "Janet", "Williams");
        let with_status = |status: &str| {
            order_json("2026-01-14T09:00:00Z", "Janet", "Williams")
                .replace("\"status\":\"active\"", &format!("\"status\":\"{status}\""))
        };
        let order =
            WorklistOrder::from_service_request(item.message_id, &with_status("revoked"), "")
                .unwrap();
        assert_eq!(
            order,
            WorklistOrder::Revoke {
                accession_number: item.accession_number.clone()
            }
        );
        let error = WorklistOrder::from_service_request(item.message_id, &with_status("draft"), "")
            .unwrap_err();
        assert!(error.to_string().contains("\"draft\""), "{error}");
    }

    #[test]
    fn an_order_without_its_parts_says_which_is_missing() {
        let json = order_json("2026-01-14T09:00:00Z", "Janet", "Williams");
        let id = MessageId::from_uuid(Uuid::from_u128(MESSAGE));
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value.as_object_mut().unwrap().remove("identifier");
        let error = WorklistOrder::from_service_request(id, &value.to_string(), "").unwrap_err();
        assert!(error.to_string().contains("accession number"), "{error}");
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value.as_object_mut().unwrap().remove("occurrenceDateTime");
        let error = WorklistOrder::from_service_request(id, &value.to_string(), "").unwrap_err();
        assert!(error.to_string().contains("occurrenceDateTime"), "{error}");
        let error = WorklistOrder::from_service_request(id, "{}", "").unwrap_err();
        assert!(error.to_string().contains("cannot be read"), "{error}");
        let error = WorklistOrder::from_service_request(
            id,
            r#"{"resourceType":"Patient","status":"active"}"#,
            "",
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("not a ServiceRequest"),
            "{error}"
        );
    }

    fn query() -> WorklistQuery {
        WorklistQuery::default()
    }

    #[test]
    fn an_empty_query_matches_everything() {
        let item = order_at("2026-01-14T09:00:00Z", "Janet", "Williams");
        assert!(query().matches(&item).unwrap());
    }

    #[test]
    fn single_values_and_wildcards_match_as_ps3_4_says() {
        let item = order_at("2026-01-14T09:00:00Z", "Siân", "O'Brien");
        let cases = [
            (
                WorklistQuery {
                    patient_id: Some("9990001235".into()),
                    ..query()
                },
                true,
            ),
            (
                WorklistQuery {
                    patient_id: Some("9990001236".into()),
                    ..query()
                },
                false,
            ),
            (
                WorklistQuery {
                    patient_id: Some("999*".into()),
                    ..query()
                },
                true,
            ),
            (
                WorklistQuery {
                    patient_name: Some("o'brien*".into()),
                    ..query()
                },
                true,
            ),
            (
                WorklistQuery {
                    patient_name: Some("O'BRIEN^Si?n".into()),
                    ..query()
                },
                true,
            ),
            (
                WorklistQuery {
                    patient_name: Some("SMITH*".into()),
                    ..query()
                },
                false,
            ),
            (
                WorklistQuery {
                    modality: Some("MG".into()),
                    ..query()
                },
                true,
            ),
            (
                WorklistQuery {
                    modality: Some("CT".into()),
                    ..query()
                },
                false,
            ),
            (
                WorklistQuery {
                    accession_number: Some(item.accession_number.clone()),
                    ..query()
                },
                true,
            ),
            (
                WorklistQuery {
                    accession_number: Some("BS0".into()),
                    ..query()
                },
                false,
            ),
            (
                WorklistQuery {
                    station_ae_title: Some("MAMMO1".into()),
                    ..query()
                },
                true,
            ),
            (
                WorklistQuery {
                    station_ae_title: Some("MAMMO2".into()),
                    ..query()
                },
                false,
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(query.matches(&item).unwrap(), expected, "{query:?}");
        }
        let mut for_any_station = item.clone();
        for_any_station.station_ae_title.clear();
        let query = WorklistQuery {
            station_ae_title: Some("MAMMO2".into()),
            ..query()
        };
        assert!(
            query.matches(&for_any_station).unwrap(),
            "an item for any station"
        );
    }

    #[test]
    fn date_bounds_narrow_the_read_only_for_plain_dates_and_ranges() {
        let bounds = |key: &str| {
            WorklistQuery {
                start_date: Some(key.into()),
                ..query()
            }
            .date_bounds()
        };
        assert_eq!(
            bounds("20260714"),
            Some(("20260714".into(), "20260714".into()))
        );
        assert_eq!(
            bounds("20260701-"),
            Some(("20260701".into(), "99999999".into()))
        );
        assert_eq!(
            bounds("-20260701"),
            Some(("00000000".into(), "20260701".into()))
        );
        assert_eq!(bounds(""), None);
        assert_eq!(bounds("2026"), None);
        assert_eq!(query().date_bounds(), None);
    }

    #[test]
    fn dates_and_times_match_single_values_and_ranges() {
        let item = order_at("2026-01-14T09:00:00Z", "Janet", "Williams");
        let date = |key: &str| {
            WorklistQuery {
                start_date: Some(key.into()),
                ..query()
            }
            .matches(&item)
            .unwrap()
        };
        let time = |key: &str| {
            WorklistQuery {
                start_time: Some(key.into()),
                ..query()
            }
            .matches(&item)
            .unwrap()
        };
        assert!(date("20260114"));
        assert!(!date("20260115"));
        assert!(date("20260101-20260131"));
        assert!(date("20260114-"));
        assert!(!date("20260115-"));
        assert!(date("-20260114"));
        assert!(!date("-20260113"));
        assert!(time("090000"));
        assert!(time("0900"));
        assert!(!time("0901"));
        assert!(time("080000-100000"));
        assert!(
            time("0800-0900"),
            "the end of a range takes the whole minute"
        );
        assert!(!time("091000-"));
        assert!(time("-09"));
        assert!(time("09:00:00.000"));
        let bad = WorklistQuery {
            start_date: Some("14/01/2026".into()),
            ..query()
        }
        .matches(&item);
        assert!(bad.unwrap_err().to_string().contains("not a DICOM date"));
        let bad = WorklistQuery {
            start_time: Some("-".into()),
            ..query()
        }
        .matches(&item);
        assert!(bad.is_err());
    }
}
