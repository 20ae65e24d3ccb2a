//! What the modality did: Modality Performed Procedure Step (MPPS, DICOM PS3.4 F) as pure rules.
//! A step is created IN PROGRESS, may be updated while IN PROGRESS, and ends COMPLETED or
//! DISCONTINUED; anything else is refused with the status code PS3.4 gives, never a silent success.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::MessageId;

/// A performed procedure step's status (PerformedProcedureStepStatus, 0040,0252).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcedureStatus {
    /// The modality started the examination.
    InProgress,
    /// Done.
    Completed,
    /// Stopped before it was done (the modality's reason travels with it).
    Discontinued,
}

impl ProcedureStatus {
    /// Reads DICOM's words (`IN PROGRESS`, `COMPLETED`, `DISCONTINUED`).
    pub fn from_dicom(text: &str) -> Option<Self> {
        match text.trim() {
            "IN PROGRESS" => Some(Self::InProgress),
            "COMPLETED" => Some(Self::Completed),
            "DISCONTINUED" => Some(Self::Discontinued),
            _ => None,
        }
    }

    /// DICOM's word for it.
    pub fn dicom(self) -> &'static str {
        match self {
            Self::InProgress => "IN PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Discontinued => "DISCONTINUED",
        }
    }

    /// The stored and wire form (`in_progress`).
    pub fn code(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Discontinued => "discontinued",
        }
    }

    /// Reads the stored form.
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::InProgress, Self::Completed, Self::Discontinued]
            .into_iter()
            .find(|status| status.code() == code)
    }

    /// Whether the step is over.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::InProgress)
    }
}

/// An MPPS request refused; each carries its PS3.4 / PS3.7 status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MppsRefusal {
    /// N-CREATE for an instance that exists (0x0111).
    #[error("the procedure step {0} exists already")]
    Duplicate(String),
    /// N-SET for an instance never created (0x0112).
    #[error("there is no procedure step {0}")]
    NoSuchInstance(String),
    /// A value this step cannot take (0x0106), such as a new step that is not IN PROGRESS.
    #[error("{0}")]
    InvalidValue(String),
    /// A required attribute is absent (0x0120).
    #[error("missing attribute: {0}")]
    MissingAttribute(String),
    /// The change is not allowed now (0x0110), such as changing a step that is over.
    #[error("{0}")]
    NotAllowed(String),
}

impl MppsRefusal {
    /// The DIMSE status code.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Duplicate(_) => 0x0111,
            Self::NoSuchInstance(_) => 0x0112,
            Self::InvalidValue(_) => 0x0106,
            Self::MissingAttribute(_) => 0x0120,
            Self::NotAllowed(_) => 0x0110,
        }
    }
}

/// N-CREATE: `existing` is the step's status if the instance is known; `requested` the
/// PerformedProcedureStepStatus sent.
pub fn create(
    instance: &str,
    existing: Option<ProcedureStatus>,
    requested: Option<&str>,
) -> Result<ProcedureStatus, MppsRefusal> {
    if existing.is_some() {
        return Err(MppsRefusal::Duplicate(instance.to_string()));
    }
    let requested = requested
        .filter(|text| !text.trim().is_empty())
        .ok_or_else(|| MppsRefusal::MissingAttribute("PerformedProcedureStepStatus".into()))?;
    match ProcedureStatus::from_dicom(requested) {
        Some(ProcedureStatus::InProgress) => Ok(ProcedureStatus::InProgress),
        _ => Err(MppsRefusal::InvalidValue(format!(
            "a new procedure step must be IN PROGRESS, not {requested:?}"
        ))),
    }
}

/// N-SET: an interim update (IN PROGRESS, or no status at all) while in progress, or the end
/// (COMPLETED, DISCONTINUED); a step that is over cannot change.
pub fn set(
    instance: &str,
    current: Option<ProcedureStatus>,
    requested: Option<&str>,
) -> Result<ProcedureStatus, MppsRefusal> {
    let current = current.ok_or_else(|| MppsRefusal::NoSuchInstance(instance.to_string()))?;
    if current.is_final() {
        return Err(MppsRefusal::NotAllowed(format!(
            "the procedure step is {} and can no longer change",
            current.dicom()
        )));
    }
    match requested.map(str::trim).filter(|text| !text.is_empty()) {
        None => Ok(current),
        Some(text) => ProcedureStatus::from_dicom(text).ok_or_else(|| {
            MppsRefusal::InvalidValue(format!(
                "{text:?} is not IN PROGRESS, COMPLETED or DISCONTINUED"
            ))
        }),
    }
}

/// The appointment action a modality's report stands for.
pub fn appointment_action(status: ProcedureStatus) -> crate::appointment::AppointmentAction {
    use crate::appointment::AppointmentAction as A;
    match status {
        ProcedureStatus::InProgress => A::ModalityStarted,
        ProcedureStatus::Completed => A::ModalityCompleted,
        ProcedureStatus::Discontinued => A::ModalityDiscontinued,
    }
}

/// What the gateway tells the hub the modality did with an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcedureReport {
    /// The order (message) the step performs.
    pub message_id: MessageId,
    /// The step's status now.
    pub status: ProcedureStatus,
    /// When it started, or ended for a final status.
    pub at: DateTime<Utc>,
    /// The modality (PerformedStationAETitle), or the calling AE title when it gave none.
    pub station_ae_title: String,
    /// For a discontinued step, the modality's reason when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProcedureStatus::*;

    #[test]
    fn a_step_is_created_in_progress_only_and_once() {
        assert_eq!(create("1.2", None, Some("IN PROGRESS")), Ok(InProgress));
        assert_eq!(
            create("1.2", Some(InProgress), Some("IN PROGRESS"))
                .unwrap_err()
                .status_code(),
            0x0111
        );
        assert_eq!(
            create("1.2", None, Some("COMPLETED"))
                .unwrap_err()
                .status_code(),
            0x0106
        );
        assert_eq!(create("1.2", None, None).unwrap_err().status_code(), 0x0120);
    }

    #[test]
    fn a_step_in_progress_takes_interim_updates_then_ends_once() {
        assert_eq!(
            set("1.2", Some(InProgress), Some("IN PROGRESS")),
            Ok(InProgress)
        );
        assert_eq!(set("1.2", Some(InProgress), None), Ok(InProgress));
        assert_eq!(
            set("1.2", Some(InProgress), Some("COMPLETED")),
            Ok(Completed)
        );
        assert_eq!(
            set("1.2", Some(InProgress), Some("DISCONTINUED")),
            Ok(Discontinued)
        );
        assert_eq!(
            set("1.2", Some(Completed), Some("DISCONTINUED"))
                .unwrap_err()
                .status_code(),
            0x0110
        );
        assert_eq!(
            set("1.2", Some(InProgress), Some("PAUSED"))
                .unwrap_err()
                .status_code(),
            0x0106
        );
        assert_eq!(
            set("9.9", None, Some("COMPLETED"))
                .unwrap_err()
                .status_code(),
            0x0112
        );
    }
}
