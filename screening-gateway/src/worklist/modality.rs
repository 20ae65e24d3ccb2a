//! A modality's side of the worklist (DICOM SCU, on dicom-ul): query the worklist (C-FIND) and
//! report progress (MPPS N-CREATE, N-SET). For the example, benchmarks and tests, and for anyone
//! who wants to try a gateway's worklist without a mammography machine.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_ul::association::client::AsyncClientAssociation;
use dicom_ul::association::ClientAssociationOptions;
use dicom_ul::Pdu;

use super::dimse::{self, command, status, Assembler, DimseError};

/// An association from a modality to a worklist.
pub struct Modality {
    association: AsyncClientAssociation<tokio::net::TcpStream>,
    next_message_id: u16,
}

/// What one operation answered: its status, and for C-FIND each match.
#[derive(Debug)]
pub struct Answer {
    /// The final status (0x0000 on success).
    pub status: u16,
    /// C-FIND's matches, in the order they came.
    pub matches: Vec<InMemDicomObject>,
}

impl Modality {
    /// Associates as `calling` with the worklist `called` at `address`, proposing worklist FIND,
    /// MPPS and Verification over Explicit and Implicit VR Little Endian.
    pub async fn connect(address: &str, calling: &str, called: &str) -> Result<Self, DimseError> {
        let association = ClientAssociationOptions::new()
            .calling_ae_title(calling)
            .called_ae_title(called)
            .with_presentation_context(
                dimse::WORKLIST_FIND,
                vec![dimse::EXPLICIT_VR_LE, dimse::IMPLICIT_VR_LE],
            )
            .with_presentation_context(
                dimse::MPPS,
                vec![dimse::EXPLICIT_VR_LE, dimse::IMPLICIT_VR_LE],
            )
            .with_presentation_context(
                dimse::VERIFICATION,
                vec![dimse::EXPLICIT_VR_LE, dimse::IMPLICIT_VR_LE],
            )
            .establish_async(address)
            .await
            .map_err(|e| DimseError(format!("associate with {called} at {address}: {e}")))?;
        let mut association = association;
        // Requests are several small writes; see the worklist's own note on Nagle's algorithm.
        association
            .inner_stream()
            .set_nodelay(true)
            .map_err(|e| DimseError(format!("connect: TCP_NODELAY: {e}")))?;
        Ok(Self {
            association,
            next_message_id: 1,
        })
    }

    /// Queries the worklist with `identifier` (the keys to match and to return).
    pub async fn find(&mut self, identifier: &InMemDicomObject) -> Result<Answer, DimseError> {
        self.find_cancelling(identifier, None).await
    }

    /// Queries the worklist, then sends a C-CANCEL once `after` matches have come, as a modality
    /// whose operator has found the participant; reads on to the final response.
    pub async fn find_then_cancel(
        &mut self,
        identifier: &InMemDicomObject,
        after: usize,
    ) -> Result<Answer, DimseError> {
        self.find_cancelling(identifier, Some(after)).await
    }

    async fn find_cancelling(
        &mut self,
        identifier: &InMemDicomObject,
        cancel_after: Option<usize>,
    ) -> Result<Answer, DimseError> {
        let message_id = self.message_id();
        self.send(
            dimse::WORKLIST_FIND,
            &find_request(message_id),
            Some(identifier),
        )
        .await?;
        let mut matches = Vec::new();
        loop {
            match self.response().await? {
                (status::PENDING, Some(found)) => {
                    matches.push(found);
                    if cancel_after == Some(matches.len()) {
                        let cancel = request_command([
                            us(tags::COMMAND_FIELD, command::C_CANCEL_RQ),
                            us(tags::MESSAGE_ID_BEING_RESPONDED_TO, message_id),
                            us(tags::COMMAND_DATA_SET_TYPE, 0x0101),
                        ]);
                        self.send(dimse::WORKLIST_FIND, &cancel, None).await?;
                    }
                }
                (status::PENDING, None) => {
                    return Err(DimseError(
                        "a pending C-FIND response without a match".into(),
                    ))
                }
                (code, _) => {
                    return Ok(Answer {
                        status: code,
                        matches,
                    })
                }
            }
        }
    }

    /// Verification (C-ECHO); the status answered (0x0000: the worklist is there and answering).
    pub async fn echo(&mut self) -> Result<u16, DimseError> {
        let message_id = self.message_id();
        let request = request_command([
            uid(tags::AFFECTED_SOP_CLASS_UID, dimse::VERIFICATION),
            us(tags::COMMAND_FIELD, command::C_ECHO_RQ),
            us(tags::MESSAGE_ID, message_id),
            us(tags::COMMAND_DATA_SET_TYPE, 0x0101),
        ]);
        self.send(dimse::VERIFICATION, &request, None).await?;
        Ok(self.response().await?.0)
    }

    /// MPPS N-CREATE of the step `instance` with `attributes`; the status answered.
    pub async fn create_step(
        &mut self,
        instance: &str,
        attributes: &InMemDicomObject,
    ) -> Result<u16, DimseError> {
        let (class, field, named) = (
            tags::AFFECTED_SOP_CLASS_UID,
            command::N_CREATE_RQ,
            tags::AFFECTED_SOP_INSTANCE_UID,
        );
        self.mpps(class, field, named, instance, attributes).await
    }

    /// MPPS N-SET of the step `instance` with `attributes`; the status answered.
    pub async fn set_step(
        &mut self,
        instance: &str,
        attributes: &InMemDicomObject,
    ) -> Result<u16, DimseError> {
        let (class, field, named) = (
            tags::REQUESTED_SOP_CLASS_UID,
            command::N_SET_RQ,
            tags::REQUESTED_SOP_INSTANCE_UID,
        );
        self.mpps(class, field, named, instance, attributes).await
    }

    /// An MPPS request: N-CREATE names its class and instance as "affected", N-SET as "requested".
    async fn mpps(
        &mut self,
        class: dicom_core::Tag,
        field: u16,
        named: dicom_core::Tag,
        instance: &str,
        attributes: &InMemDicomObject,
    ) -> Result<u16, DimseError> {
        let message_id = self.message_id();
        let request = request_command([
            uid(class, dimse::MPPS),
            us(tags::COMMAND_FIELD, field),
            us(tags::MESSAGE_ID, message_id),
            us(tags::COMMAND_DATA_SET_TYPE, 0x0000),
            uid(named, instance),
        ]);
        self.send(dimse::MPPS, &request, Some(attributes)).await?;
        Ok(self.response().await?.0)
    }

    /// Sends a C-FIND and drops the connection without reading the answer, as a modality that
    /// is switched off mid-query.
    pub async fn find_and_vanish(
        mut self,
        identifier: &InMemDicomObject,
    ) -> Result<(), DimseError> {
        self.send(dimse::WORKLIST_FIND, &find_request(1), Some(identifier))
            .await?;
        drop(self);
        Ok(())
    }

    /// Releases the association.
    pub async fn release(self) -> Result<(), DimseError> {
        self.association
            .release()
            .await
            .map_err(|e| DimseError(format!("release: {e}")))
    }

    fn message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }

    async fn send(
        &mut self,
        abstract_syntax: &str,
        request: &InMemDicomObject,
        dataset: Option<&InMemDicomObject>,
    ) -> Result<(), DimseError> {
        let context = self
            .association
            .presentation_contexts()
            .iter()
            .find(|pc| pc.abstract_syntax.trim_end_matches('\0') == abstract_syntax)
            .ok_or_else(|| DimseError(format!("the worklist did not accept {abstract_syntax}")))?;
        let (context_id, transfer_syntax) = (context.id, context.transfer_syntax.clone());
        let mut pdus = dimse::response_pdus(
            context_id,
            request,
            dataset.map(|d| (d, transfer_syntax.as_str())),
            self.association.acceptor_max_pdu_length(),
        )?;
        for pdu in pdus.drain(..) {
            self.association
                .send(&pdu)
                .await
                .map_err(|e| DimseError(format!("send: {e}")))?;
        }
        Ok(())
    }

    /// One response: its status and dataset.
    async fn response(&mut self) -> Result<(u16, Option<InMemDicomObject>), DimseError> {
        let mut assembler = Assembler::default();
        loop {
            let pdu = self
                .association
                .receive()
                .await
                .map_err(|e| DimseError(format!("await reply: {e}")))?;
            let Pdu::PData { data } = pdu else {
                return Err(DimseError(format!(
                    "await reply: expected P-DATA, got {}",
                    pdu.short_description()
                )));
            };
            for value in data {
                if let Some(response) = assembler.push(value)? {
                    let code = response
                        .command
                        .get(tags::STATUS)
                        .and_then(|element| element.uint16().ok())
                        .ok_or_else(|| DimseError("a response without a status".into()))?;
                    let transfer_syntax = self
                        .association
                        .presentation_contexts()
                        .iter()
                        .find(|pc| pc.id == response.context_id)
                        .map(|pc| pc.transfer_syntax.clone())
                        .unwrap_or_else(|| dimse::IMPLICIT_VR_LE.to_string());
                    let dataset = response
                        .dataset
                        .as_deref()
                        .map(|bytes| dimse::read_dataset(bytes, &transfer_syntax))
                        .transpose()?;
                    return Ok((code, dataset));
                }
            }
        }
    }
}

/// A C-FIND-RQ command on the worklist model.
fn find_request(message_id: u16) -> InMemDicomObject {
    request_command([
        uid(tags::AFFECTED_SOP_CLASS_UID, dimse::WORKLIST_FIND),
        us(tags::COMMAND_FIELD, command::C_FIND_RQ),
        us(tags::MESSAGE_ID, message_id),
        us(tags::PRIORITY, 0),
        us(tags::COMMAND_DATA_SET_TYPE, 0x0000),
    ])
}

fn request_command<const N: usize>(
    elements: [DataElement<InMemDicomObject>; N],
) -> InMemDicomObject {
    InMemDicomObject::command_from_element_iter(elements)
}

fn uid(tag: dicom_core::Tag, value: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::UI, PrimitiveValue::from(value))
}

fn us(tag: dicom_core::Tag, value: u16) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::US, PrimitiveValue::from(value))
}

fn text(tag: dicom_core::Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
    if value.is_empty() {
        DataElement::new(tag, vr, PrimitiveValue::Empty)
    } else {
        DataElement::new(tag, vr, PrimitiveValue::from(value))
    }
}

fn sequence(tag: dicom_core::Tag, item: InMemDicomObject) -> DataElement<InMemDicomObject> {
    DataElement::new(
        tag,
        VR::SQ,
        dicom_core::value::DataSetSequence::from(vec![item]),
    )
}

/// The query a mammography machine sends each morning: today's (`date`, DA) MG steps, for
/// `station` (empty: any), asking for the keys it shows.
pub fn todays_query(date: &str, station: &str) -> InMemDicomObject {
    let step = InMemDicomObject::from_element_iter([
        text(tags::MODALITY, VR::CS, "MG"),
        text(tags::SCHEDULED_STATION_AE_TITLE, VR::AE, station),
        text(tags::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, date),
        text(tags::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, ""),
        text(tags::SCHEDULED_PROCEDURE_STEP_ID, VR::SH, ""),
        text(tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION, VR::LO, ""),
    ]);
    InMemDicomObject::from_element_iter([
        text(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
        text(tags::ACCESSION_NUMBER, VR::SH, ""),
        text(tags::PATIENT_NAME, VR::PN, ""),
        text(tags::PATIENT_ID, VR::LO, ""),
        text(tags::PATIENT_BIRTH_DATE, VR::DA, ""),
        text(tags::PATIENT_SEX, VR::CS, ""),
        text(tags::STUDY_INSTANCE_UID, VR::UI, ""),
        text(tags::REQUESTED_PROCEDURE_ID, VR::SH, ""),
        sequence(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE, step),
    ])
}

/// A query for one order by its accession number.
pub fn accession_query(accession_number: &str) -> InMemDicomObject {
    let mut query = todays_query("", "");
    query.put(text(tags::ACCESSION_NUMBER, VR::SH, accession_number));
    query
}

/// N-CREATE's attributes: the step started at `date`/`time` (DA/TM, local) on `station`, for the
/// order with `accession_number` and `study_instance_uid`.
pub fn step_started(
    accession_number: &str,
    study_instance_uid: &str,
    station: &str,
    date: &str,
    time: &str,
) -> InMemDicomObject {
    let scheduled = InMemDicomObject::from_element_iter([
        text(tags::ACCESSION_NUMBER, VR::SH, accession_number),
        text(tags::STUDY_INSTANCE_UID, VR::UI, study_instance_uid),
    ]);
    InMemDicomObject::from_element_iter([
        text(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
        sequence(tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE, scheduled),
        text(tags::PERFORMED_STATION_AE_TITLE, VR::AE, station),
        text(tags::MODALITY, VR::CS, "MG"),
        text(tags::PERFORMED_PROCEDURE_STEP_START_DATE, VR::DA, date),
        text(tags::PERFORMED_PROCEDURE_STEP_START_TIME, VR::TM, time),
        text(tags::PERFORMED_PROCEDURE_STEP_STATUS, VR::CS, "IN PROGRESS"),
    ])
}

/// N-SET's attributes: the step ended (`COMPLETED` or `DISCONTINUED`) at `date`/`time`.
pub fn step_ended(status: &str, date: &str, time: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        text(tags::PERFORMED_PROCEDURE_STEP_END_DATE, VR::DA, date),
        text(tags::PERFORMED_PROCEDURE_STEP_END_TIME, VR::TM, time),
        text(tags::PERFORMED_PROCEDURE_STEP_STATUS, VR::CS, status),
    ])
}

/// The main values of one C-FIND match, for printing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchSummary {
    /// PatientName.
    pub patient_name: String,
    /// PatientID.
    pub patient_id: String,
    /// AccessionNumber.
    pub accession_number: String,
    /// StudyInstanceUID.
    pub study_instance_uid: String,
    /// The step's start date and time, `YYYYMMDD HHMMSS`.
    pub starts: String,
}

/// Reads the main values of a match.
pub fn summary(found: &InMemDicomObject) -> MatchSummary {
    let value = |object: &InMemDicomObject, tag| {
        object
            .get(tag)
            .and_then(|element| element.to_str().ok())
            .map(|text| text.trim_end_matches(['\0', ' ']).to_string())
            .unwrap_or_default()
    };
    let step = found
        .get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .and_then(|element| element.items())
        .and_then(|items| items.first());
    MatchSummary {
        patient_name: value(found, tags::PATIENT_NAME),
        patient_id: value(found, tags::PATIENT_ID),
        accession_number: value(found, tags::ACCESSION_NUMBER),
        study_instance_uid: value(found, tags::STUDY_INSTANCE_UID),
        starts: step
            .map(|step| {
                format!(
                    "{} {}",
                    value(step, tags::SCHEDULED_PROCEDURE_STEP_START_DATE),
                    value(step, tags::SCHEDULED_PROCEDURE_STEP_START_TIME)
                )
            })
            .unwrap_or_default(),
    }
}
