//! The DICOM Modality Worklist the agent serves to the mammography machines: orders routed to
//! `mwl:` become worklist items (built in `screening_core::worklist`), kept in the agent's SQLite
//! beside its inbox, and found by the modalities' C-FIND queries.
//!
//! dicom-rs (`dicom-ul`) negotiates associations; it has no DIMSE layer, so the little this service
//! needs is in [`dimse`]. [`scp`] is the service, [`store`] the items, [`modality`] a modality's
//! side (an SCU) for examples, benchmarks and tests.

pub mod dimse;
pub mod modality;
pub mod scp;
pub mod store;

pub use scp::serve;
pub use store::{StepKind, StepUpdate, Stored, WorklistStore, WorklistStoreError};

/// The default AE title of the worklist, as the NHS's own gateway uses.
pub const DEFAULT_AE_TITLE: &str = "SCREENING_MWL";

/// How the worklist is offered to modalities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorklistSettings {
    /// The AE title modalities call.
    pub ae_title: String,
    /// The calling AE titles allowed to associate; empty allows any.
    pub allowed_calling_ae_titles: Vec<String>,
    /// The ScheduledStationAETitle put on new items; empty means any modality.
    pub station_ae_title: String,
}

impl Default for WorklistSettings {
    fn default() -> Self {
        Self {
            ae_title: DEFAULT_AE_TITLE.to_string(),
            allowed_calling_ae_titles: Vec::new(),
            station_ae_title: String::new(),
        }
    }
}
