//! The small part of DIMSE (DICOM PS3.7) the worklist needs, which dicom-rs does not provide:
//! reassembling a message's command and dataset from P-DATA fragments (across PDUs), reading the
//! command set, and writing responses. Command sets are always Implicit VR Little Endian; datasets
//! use the presentation context's transfer syntax.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::Pdu;

/// Verification SOP class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";
/// Modality Worklist Information Model – FIND.
pub const WORKLIST_FIND: &str = "1.2.840.10008.5.1.4.31";
/// Modality Performed Procedure Step SOP class (N-CREATE, N-SET).
pub const MPPS: &str = "1.2.840.10008.3.1.2.3.3";
/// Implicit VR Little Endian.
pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// CommandField values.
pub mod command {
    /// C-ECHO-RQ.
    pub const C_ECHO_RQ: u16 = 0x0030;
    /// C-ECHO-RSP.
    pub const C_ECHO_RSP: u16 = 0x8030;
    /// C-FIND-RQ.
    pub const C_FIND_RQ: u16 = 0x0020;
    /// C-FIND-RSP.
    pub const C_FIND_RSP: u16 = 0x8020;
    /// C-CANCEL-RQ.
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
    /// N-CREATE-RQ.
    pub const N_CREATE_RQ: u16 = 0x0140;
    /// N-CREATE-RSP.
    pub const N_CREATE_RSP: u16 = 0x8140;
    /// N-SET-RQ.
    pub const N_SET_RQ: u16 = 0x0120;
    /// N-SET-RSP.
    pub const N_SET_RSP: u16 = 0x8120;
}

/// Status values.
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0x0000;
    /// C-FIND: a match follows, more may come.
    pub const PENDING: u16 = 0xFF00;
    /// C-FIND: matching stopped by the modality's C-CANCEL.
    pub const CANCEL: u16 = 0xFE00;
    /// C-FIND: the identifier does not match the SOP class (a key it cannot read).
    pub const IDENTIFIER_DOES_NOT_MATCH: u16 = 0xA900;
    /// C-FIND: unable to process.
    pub const UNABLE_TO_PROCESS: u16 = 0xC000;
    /// The operation is not one this SCP offers.
    pub const UNRECOGNISED_OPERATION: u16 = 0x0211;
}

/// CommandDataSetType: no dataset follows.
const NO_DATASET: u16 = 0x0101;
/// CommandDataSetType: a dataset follows (any value but 0x0101 says so).
const DATASET_FOLLOWS: u16 = 0x0000;

/// A message or fragment the SCP cannot read; says what was wrong.
#[derive(Debug, thiserror::Error)]
#[error("DIMSE: {0}")]
pub struct DimseError(pub String);

/// One request: its command set and, when one followed, its dataset (still encoded).
#[derive(Debug)]
pub struct Request {
    /// The presentation context it came on (responses go back on the same).
    pub context_id: u8,
    /// The command set.
    pub command: InMemDicomObject,
    /// The dataset's bytes, in the context's transfer syntax.
    pub dataset: Option<Vec<u8>>,
}

impl Request {
    /// CommandField.
    pub fn command_field(&self) -> Result<u16, DimseError> {
        self.uint16(tags::COMMAND_FIELD, "CommandField")
    }

    /// MessageID (0 when absent, as in C-CANCEL's MessageIDBeingRespondedTo form).
    pub fn message_id(&self) -> u16 {
        self.uint16(tags::MESSAGE_ID, "MessageID").unwrap_or(0)
    }

    /// MessageIDBeingRespondedTo: the request a C-CANCEL stops (0 when absent).
    pub fn message_id_being_responded_to(&self) -> u16 {
        self.uint16(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            "MessageIDBeingRespondedTo",
        )
        .unwrap_or(0)
    }

    /// AffectedSOPClassUID (RequestedSOPClassUID for N-SET), without DICOM's padding.
    pub fn sop_class(&self) -> String {
        self.uid(tags::AFFECTED_SOP_CLASS_UID)
            .or_else(|| self.uid(tags::REQUESTED_SOP_CLASS_UID))
            .unwrap_or_default()
    }

    /// AffectedSOPInstanceUID (RequestedSOPInstanceUID for N-SET), when given.
    pub fn sop_instance(&self) -> Option<String> {
        self.uid(tags::AFFECTED_SOP_INSTANCE_UID)
            .or_else(|| self.uid(tags::REQUESTED_SOP_INSTANCE_UID))
    }

    fn uid(&self, tag: dicom_core::Tag) -> Option<String> {
        self.command
            .get(tag)
            .and_then(|element| element.to_str().ok())
            .map(|uid| uid.trim_end_matches(['\0', ' ']).to_string())
            .filter(|uid| !uid.is_empty())
    }

    fn uint16(&self, tag: dicom_core::Tag, name: &str) -> Result<u16, DimseError> {
        self.command
            .get(tag)
            .ok_or_else(|| DimseError(format!("the command has no {name}")))?
            .uint16()
            .map_err(|e| DimseError(format!("{name} is not a number: {e}")))
    }
}

/// Gathers P-DATA fragments into whole requests: a command may span several PDVs and PDUs, and so
/// may its dataset.
#[derive(Default)]
pub struct Assembler {
    command: Vec<u8>,
    data: Vec<u8>,
    pending: Option<(u8, InMemDicomObject)>,
}

impl Assembler {
    /// Takes one fragment; returns a request once its last fragment is in.
    pub fn push(&mut self, value: PDataValue) -> Result<Option<Request>, DimseError> {
        match value.value_type {
            PDataValueType::Command => {
                if self.pending.is_some() {
                    return Err(DimseError(
                        "a command arrived while the previous command's dataset was still expected"
                            .into(),
                    ));
                }
                self.command.extend_from_slice(&value.data);
                if !value.is_last {
                    return Ok(None);
                }
                let bytes = std::mem::take(&mut self.command);
                let command = InMemDicomObject::read_dataset_with_ts(
                    bytes.as_slice(),
                    &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
                )
                .map_err(|e| DimseError(format!("the command set cannot be read: {e}")))?;
                if command.get(tags::COMMAND_FIELD).is_none() {
                    return Err(DimseError(
                        "the command set cannot be read: it has no CommandField".into(),
                    ));
                }
                let data_set_type = command
                    .get(tags::COMMAND_DATA_SET_TYPE)
                    .and_then(|element| element.uint16().ok())
                    .unwrap_or(NO_DATASET);
                if data_set_type == NO_DATASET {
                    return Ok(Some(Request {
                        context_id: value.presentation_context_id,
                        command,
                        dataset: None,
                    }));
                }
                self.pending = Some((value.presentation_context_id, command));
                Ok(None)
            }
            PDataValueType::Data => {
                if self.pending.is_none() {
                    return Err(DimseError("a dataset arrived without a command".into()));
                }
                self.data.extend_from_slice(&value.data);
                if !value.is_last {
                    return Ok(None);
                }
                let (context_id, command) = self.pending.take().expect("checked above");
                Ok(Some(Request {
                    context_id,
                    command,
                    dataset: Some(std::mem::take(&mut self.data)),
                }))
            }
        }
    }
}

/// Reads a dataset in the transfer syntax `transfer_syntax` (a UID).
pub fn read_dataset(bytes: &[u8], transfer_syntax: &str) -> Result<InMemDicomObject, DimseError> {
    let syntax = TransferSyntaxRegistry
        .get(transfer_syntax.trim_end_matches('\0'))
        .ok_or_else(|| {
            DimseError(format!(
                "transfer syntax {transfer_syntax} is not supported"
            ))
        })?;
    InMemDicomObject::read_dataset_with_ts(bytes, syntax)
        .map_err(|e| DimseError(format!("the dataset cannot be read: {e}")))
}

/// A response command set (C-ECHO, C-FIND).
pub fn response(
    command_field: u16,
    request: &Request,
    status: u16,
    error_comment: Option<&str>,
    with_dataset: bool,
) -> InMemDicomObject {
    response_about(
        command_field,
        request,
        status,
        error_comment,
        with_dataset,
        None,
    )
}

/// A response command set naming the SOP instance it is about (N-CREATE, N-SET).
pub fn response_about(
    command_field: u16,
    request: &Request,
    status: u16,
    error_comment: Option<&str>,
    with_dataset: bool,
    instance: Option<&str>,
) -> InMemDicomObject {
    let mut elements = vec![
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(request.sop_class()),
        ),
        DataElement::new(
            tags::COMMAND_FIELD,
            VR::US,
            PrimitiveValue::from(command_field),
        ),
        DataElement::new(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            PrimitiveValue::from(request.message_id()),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(if with_dataset {
                DATASET_FOLLOWS
            } else {
                NO_DATASET
            }),
        ),
        DataElement::new(tags::STATUS, VR::US, PrimitiveValue::from(status)),
    ];
    if let Some(instance) = instance {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(instance),
        ));
    }
    if let Some(comment) = error_comment {
        // ErrorComment is LO: at most 64 characters.
        let comment: String = comment.chars().take(64).collect();
        elements.push(DataElement::new(
            tags::ERROR_COMMENT,
            VR::LO,
            PrimitiveValue::from(comment),
        ));
    }
    InMemDicomObject::command_from_element_iter(elements)
}

/// The PDUs that carry a response: the command, then the dataset (if any) cut to fit the peer's
/// maximum PDU length.
pub fn response_pdus(
    context_id: u8,
    command: &InMemDicomObject,
    dataset: Option<(&InMemDicomObject, &str)>,
    max_pdu_length: u32,
) -> Result<Vec<Pdu>, DimseError> {
    let mut command_bytes = Vec::new();
    command
        .write_dataset_with_ts(&mut command_bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .map_err(|e| DimseError(format!("writing the response command: {e}")))?;
    let mut pdus = vec![Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: context_id,
            value_type: PDataValueType::Command,
            is_last: true,
            data: command_bytes,
        }],
    }];
    if let Some((dataset, transfer_syntax)) = dataset {
        let syntax = TransferSyntaxRegistry
            .get(transfer_syntax.trim_end_matches('\0'))
            .ok_or_else(|| {
                DimseError(format!(
                    "transfer syntax {transfer_syntax} is not supported"
                ))
            })?;
        let mut bytes = Vec::new();
        dataset
            .write_dataset_with_ts(&mut bytes, syntax)
            .map_err(|e| DimseError(format!("writing the response dataset: {e}")))?;
        // A PDV item carries 6 bytes of header inside the PDU's own 6; 0 means "no limit".
        let room = match max_pdu_length {
            0 => usize::MAX,
            max => (max as usize).saturating_sub(12).max(1),
        };
        // Small enough to travel with its command: one PDU with two PDVs (PS3.8 9.3.5), so a
        // match is one write, not two.
        let command_len = match &pdus[0] {
            Pdu::PData { data } => data[0].data.len(),
            _ => unreachable!("built above"),
        };
        if command_len + 6 + bytes.len() <= room {
            if let Pdu::PData { data } = &mut pdus[0] {
                data.push(PDataValue {
                    presentation_context_id: context_id,
                    value_type: PDataValueType::Data,
                    is_last: true,
                    data: bytes,
                });
            }
            return Ok(pdus);
        }
        let chunks: Vec<&[u8]> = bytes.chunks(room).collect();
        let last = chunks.len().saturating_sub(1);
        for (index, chunk) in chunks.into_iter().enumerate() {
            pdus.push(Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: context_id,
                    value_type: PDataValueType::Data,
                    is_last: index == last,
                    data: chunk.to_vec(),
                }],
            });
        }
    }
    Ok(pdus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_request_bytes(message_id: u16) -> Vec<u8> {
        let command = InMemDicomObject::command_from_element_iter([
            DataElement::new(
                tags::AFFECTED_SOP_CLASS_UID,
                VR::UI,
                PrimitiveValue::from(VERIFICATION),
            ),
            DataElement::new(
                tags::COMMAND_FIELD,
                VR::US,
                PrimitiveValue::from(command::C_ECHO_RQ),
            ),
            DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
            DataElement::new(
                tags::COMMAND_DATA_SET_TYPE,
                VR::US,
                PrimitiveValue::from(NO_DATASET),
            ),
        ]);
        let mut bytes = Vec::new();
        command
            .write_dataset_with_ts(&mut bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
            .unwrap();
        bytes
    }

    #[test]
    fn a_command_split_over_fragments_is_reassembled_and_answered_with_its_message_id() {
        let bytes = echo_request_bytes(4242);
        let (first, second) = bytes.split_at(10);
        let mut assembler = Assembler::default();
        let fragment = |data: &[u8], is_last| PDataValue {
            presentation_context_id: 3,
            value_type: PDataValueType::Command,
            is_last,
            data: data.to_vec(),
        };
        assert!(assembler.push(fragment(first, false)).unwrap().is_none());
        let request = assembler.push(fragment(second, true)).unwrap().unwrap();
        assert_eq!(request.context_id, 3);
        assert_eq!(request.command_field().unwrap(), command::C_ECHO_RQ);
        assert_eq!(request.sop_class(), VERIFICATION);
        let answer = response(command::C_ECHO_RSP, &request, status::SUCCESS, None, false);
        assert_eq!(
            answer
                .get(tags::MESSAGE_ID_BEING_RESPONDED_TO)
                .unwrap()
                .uint16()
                .unwrap(),
            4242
        );
    }

    #[test]
    fn a_dataset_without_a_command_is_an_error_not_a_panic() {
        let mut assembler = Assembler::default();
        let error = assembler
            .push(PDataValue {
                presentation_context_id: 1,
                value_type: PDataValueType::Data,
                is_last: true,
                data: vec![1, 2, 3],
            })
            .unwrap_err();
        assert!(error.to_string().contains("without a command"));
        let error = assembler
            .push(PDataValue {
                presentation_context_id: 1,
                value_type: PDataValueType::Command,
                is_last: true,
                data: vec![1, 2, 3],
            })
            .unwrap_err();
        assert!(error.to_string().contains("cannot be read"), "{error}");
    }
}
