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

/// The longest [`check_listener`] may take.
pub const CHECK_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Associates with the worklist at `address` as `calling` and sends a C-ECHO, as a modality
/// would: `Ok` when it answers success within [`CHECK_WITHIN`], else why not, phase first.
/// The agent runs it before answering the hub's echo.
pub async fn check_listener(
    address: std::net::SocketAddr,
    calling: &str,
    called: &str,
) -> Result<(), String> {
    let attempt = async {
        let mut modality =
            modality::Modality::connect(&address.to_string(), calling, called).await?;
        let status = modality.echo().await?;
        modality.release().await?;
        Ok::<u16, dimse::DimseError>(status)
    };
    match tokio::time::timeout(CHECK_WITHIN, attempt).await {
        Ok(Ok(0)) => Ok(()),
        Ok(Ok(status)) => Err(format!(
            "worklist: the DICOM listener at {address} answered C-ECHO with status {status:#06X}"
        )),
        Ok(Err(error)) => Err(format!(
            "worklist: the DICOM listener at {address}: {error}"
        )),
        Err(_) => Err(format!(
            "worklist: the DICOM listener at {address} did not answer C-ECHO within {} s",
            CHECK_WITHIN.as_secs()
        )),
    }
}
