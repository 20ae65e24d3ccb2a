//! Who is screened, by whom, and where: participants, providers, settings, clinics and slots.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ClinicId, ClinicSlotId, ParticipantId, ProviderId, SettingId};
use crate::nhs_number::NhsNumber;

/// Administrative sex as FHIR R4 codes it (`AdministrativeGender`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// `female`.
    Female,
    /// `male`.
    Male,
    /// `other`.
    Other,
    /// `unknown`.
    Unknown,
}

impl Sex {
    /// The FHIR `AdministrativeGender` code, also the stored form.
    pub const fn code(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }
}

/// The text is not one of `female`, `male`, `other`, `unknown`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sex must be one of female, male, other, unknown; got {0:?}")]
pub struct UnknownSex(pub String);

impl FromStr for Sex {
    type Err = UnknownSex;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "female" => Ok(Sex::Female),
            "male" => Ok(Sex::Male),
            "other" => Ok(Sex::Other),
            "unknown" => Ok(Sex::Unknown),
            other => Err(UnknownSex(other.chars().take(32).collect())),
        }
    }
}

/// A person invited for screening.
///
/// `Debug` deliberately omits the name and masks the NHS number, so a participant logged by
/// mistake leaks nothing identifying.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Our identifier.
    pub id: ParticipantId,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// The verified NHS number.
    pub nhs_number: NhsNumber,
    /// Administrative sex.
    pub sex: Sex,
}

impl Participant {
    /// The name as a DICOM-style person name (`LAST^FIRST`), as modality worklists expect.
    pub fn dicom_name(&self) -> String {
        format!(
            "{}^{}",
            self.last_name.to_uppercase(),
            self.first_name.to_uppercase()
        )
    }
}

impl fmt::Debug for Participant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Participant")
            .field("id", &self.id)
            .field("nhs_number", &self.nhs_number)
            .finish_non_exhaustive()
    }
}

/// An NHS organisation that runs breast screening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// Our identifier.
    pub id: ProviderId,
    /// Display name.
    pub name: String,
    /// The organisation's ODS code, used to identify it in FHIR.
    pub ods_code: String,
}

/// A place where screening happens: a static site or a mobile unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// Our identifier.
    pub id: SettingId,
    /// The provider that runs it.
    pub provider_id: ProviderId,
    /// Display name.
    pub name: String,
}

/// One screening session at a setting on one date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clinic {
    /// Our identifier.
    pub id: ClinicId,
    /// Where it happens.
    pub setting_id: SettingId,
    /// The day it runs.
    pub date: NaiveDate,
    /// Display name, e.g. "Morning clinic".
    pub name: String,
}

/// A time slot within a clinic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClinicSlot {
    /// Our identifier.
    pub id: ClinicSlotId,
    /// The clinic it belongs to.
    pub clinic_id: ClinicId,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// How long it lasts, in minutes.
    pub duration_minutes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn participant() -> Participant {
        Participant {
            id: ParticipantId::from_uuid(Uuid::nil()),
            first_name: "Janet".into(),
            last_name: "Williams".into(),
            date_of_birth: NaiveDate::from_ymd_opt(1960, 4, 2).unwrap(),
            nhs_number: NhsNumber::parse("9434765919").unwrap(),
            sex: Sex::Female,
        }
    }

    #[test]
    fn debug_of_a_participant_shows_neither_name_nor_full_nhs_number() {
        let text = format!("{:?}", participant());
        assert!(
            !text.contains("Janet") && !text.contains("Williams"),
            "{text}"
        );
        assert!(
            !text.contains("9434765919") && text.contains("*******919"),
            "{text}"
        );
    }

    #[test]
    fn the_dicom_name_is_last_caret_first_in_capitals() {
        assert_eq!(participant().dicom_name(), "WILLIAMS^JANET");
    }

    #[test]
    fn sex_parses_only_its_fhir_codes() {
        assert_eq!("female".parse::<Sex>(), Ok(Sex::Female));
        assert!("F".parse::<Sex>().is_err());
    }
}
