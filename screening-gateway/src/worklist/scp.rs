//! The worklist's DICOM service (SCP): accepts associations from modalities, answers C-ECHO,
//! answers Modality Worklist C-FIND from the store, one pending response per match with exactly
//! the keys the modality asked for (empty where there is no value, PS3.4 K.6.1.2.2), and records
//! the modality's progress (MPPS N-CREATE, N-SET) for the hub.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use chrono::Utc;
use dicom_core::header::Header;
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_ul::association::server::AccessControl;
use dicom_ul::association::ServerAssociationOptions;
use dicom_ul::pdu::{
    AssociationRJServiceUserReason, PresentationContextResultReason, UserIdentity,
};
use dicom_ul::prelude::*;
use dicom_ul::Pdu;
use screening_core::procedure::{MppsRefusal, ProcedureStatus};
use screening_core::worklist::{
    WorklistItem, WorklistQuery, CHARACTER_SET, MAMMOGRAPHY, NHS_ISSUER,
};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::dimse::{self, command, status, Assembler, Request};
use super::store::{StepKind, StepUpdate, WorklistStore};
use super::WorklistSettings;

/// Who may open an association: the called AE title must be ours, and the calling AE title on the
/// allow-list when there is one.
struct Admission {
    allowed_calling: Vec<String>,
}

impl AccessControl for Admission {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title.trim() {
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        if !self.allowed_calling.is_empty()
            && !self
                .allowed_calling
                .iter()
                .any(|allowed| allowed == calling_ae_title.trim())
        {
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

/// Serves the worklist on `listener` until `stop` turns true; each association runs in its own task.
pub async fn serve(
    listener: TcpListener,
    settings: WorklistSettings,
    store: WorklistStore,
    mut stop: watch::Receiver<bool>,
) {
    let settings = Arc::new(settings);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((socket, peer)) => {
                let (settings, store) = (settings.clone(), store.clone());
                tokio::spawn(async move {
                    if let Err(error) = associate(socket, &settings, &store).await {
                        tracing::warn!(%peer, %error, "worklist: association ended with an error");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "worklist: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The send buffer asked for on each association (Linux doubles it for bookkeeping): enough for a
/// day's worklist in one go on a LAN, small enough that a C-CANCEL takes effect promptly.
const RESPONSE_SEND_BUFFER: usize = 32 * 1024;

async fn associate(
    socket: tokio::net::TcpStream,
    settings: &WorklistSettings,
    store: &WorklistStore,
) -> Result<(), String> {
    let options = ServerAssociationOptions::new()
        .ae_access_control(Admission {
            allowed_calling: settings.allowed_calling_ae_titles.clone(),
        })
        .ae_title(settings.ae_title.as_str())
        .with_abstract_syntax(dimse::VERIFICATION)
        .with_abstract_syntax(dimse::WORKLIST_FIND)
        .with_abstract_syntax(dimse::MPPS)
        .with_transfer_syntax(dimse::IMPLICIT_VR_LE)
        .with_transfer_syntax(dimse::EXPLICIT_VR_LE)
        // A modality that goes quiet mid-association does not hold a task for ever.
        .read_timeout(Duration::from_secs(60));
    // A response is several small writes (command, then dataset): without this, Nagle's
    // algorithm and the peer's delayed ACK add about 40 ms to each exchange.
    socket
        .set_nodelay(true)
        .map_err(|e| format!("association: TCP_NODELAY: {e}"))?;
    // Loopback and LAN sockets start with a send buffer of about 1 MB, which would take a couple
    // of thousand matches before a modality's C-CANCEL is even read; a bounded buffer paces the
    // matches by the modality's reading, so a cancel stops them within a few hundred.
    socket2::SockRef::from(&socket)
        .set_send_buffer_size(RESPONSE_SEND_BUFFER)
        .map_err(|e| format!("association: SO_SNDBUF: {e}"))?;
    let mut association = options
        .establish_async(socket)
        .await
        .map_err(|e| format!("association: {e}"))?;
    let calling = association.peer_ae_title().to_string();
    tracing::info!(calling_ae_title = %calling, "worklist: association accepted");
    let mut inbound = Inbound::default();
    loop {
        if let Some(request) = inbound.requests.pop_front() {
            respond_to(&mut association, &mut inbound, &request, store, &calling).await?;
            continue;
        }
        let pdu = match inbound.held.take() {
            Some(pdu) => pdu,
            None => association
                .receive()
                .await
                .map_err(|e| format!("receive: {e}"))?,
        };
        match pdu {
            Pdu::PData { data } => {
                if let Err(error) = inbound.take(data) {
                    let _ = association.abort().await;
                    return Err(error.to_string());
                }
            }
            Pdu::ReleaseRQ => {
                let _ = association.send(&Pdu::ReleaseRP).await;
                tracing::debug!(calling_ae_title = %calling, "worklist: association released");
                return Ok(());
            }
            Pdu::AbortRQ { .. } => return Ok(()),
            other => {
                let _ = association.abort().await;
                return Err(format!("unexpected PDU: {}", other.short_description()));
            }
        }
    }
}

/// What has arrived from the modality and not yet been acted on: whole requests, in order, and a
/// PDU other than P-DATA (a release or abort) that came while a C-FIND was being answered.
#[derive(Default)]
struct Inbound {
    assembler: Assembler,
    requests: VecDeque<Request>,
    held: Option<Pdu>,
}

impl Inbound {
    /// Adds the requests that P-DATA fragments complete.
    fn take(&mut self, data: Vec<dicom_ul::pdu::PDataValue>) -> Result<(), dimse::DimseError> {
        for value in data {
            if let Some(request) = self.assembler.push(value)? {
                self.requests.push_back(request);
            }
        }
        Ok(())
    }

    /// Takes out a C-CANCEL of the request `message_id`, if one has arrived.
    fn cancelled(&mut self, message_id: u16) -> bool {
        let position = self.requests.iter().position(|request| {
            request.command_field().ok() == Some(command::C_CANCEL_RQ)
                && request.message_id_being_responded_to() == message_id
        });
        position
            .and_then(|position| self.requests.remove(position))
            .is_some()
    }
}

/// Answers one request. A C-FIND's matches go out one at a time, and before each the association
/// is checked, without waiting, for a C-CANCEL: when one has come, matching stops with the Cancel
/// status (PS3.4 C.4.1.2.3).
async fn respond_to<S>(
    association: &mut dicom_ul::association::server::AsyncServerAssociation<S>,
    inbound: &mut Inbound,
    request: &Request,
    store: &WorklistStore,
    calling: &str,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let transfer_syntax = association
        .presentation_contexts()
        .iter()
        .find(|pc| {
            pc.id == request.context_id && pc.reason == PresentationContextResultReason::Acceptance
        })
        .map(|pc| pc.transfer_syntax.clone())
        .ok_or_else(|| {
            format!(
                "presentation context {} was not accepted",
                request.context_id
            )
        })?;
    let reply = Reply {
        request,
        transfer_syntax: &transfer_syntax,
        max_pdu: association.requestor_max_pdu_length(),
    };
    let (matches, last) = match answer(reply, store, calling).await? {
        Answer::Now(pdus) => (Vec::new(), pdus),
        Answer::Matches { each, done } => (each, done),
    };
    let total = matches.len();
    for (sent, pdus) in matches.into_iter().enumerate() {
        if heard(association, inbound).await? && inbound.cancelled(request.message_id()) {
            tracing::info!(calling_ae_title = %calling, sent, total, "worklist: C-FIND cancelled by the modality");
            let cancelled =
                dimse::response(command::C_FIND_RSP, request, status::CANCEL, None, false);
            return send_all(association, reply.pdus(cancelled, None)?).await;
        }
        if inbound.held.is_some() {
            // The modality released or aborted mid-answer: the rest would go nowhere.
            return Ok(());
        }
        send_all(association, pdus).await?;
    }
    send_all(association, last).await
}

/// Reads what the modality has already sent, without waiting for more; true when a PDU came.
async fn heard<S>(
    association: &mut dicom_ul::association::server::AsyncServerAssociation<S>,
    inbound: &mut Inbound,
) -> Result<bool, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    // One poll: dicom-ul reads into the association's own buffer, so a PDU that is only partly in
    // stays there for the next receive.
    let mut receive = std::pin::pin!(association.receive());
    let polled = std::future::poll_fn(|cx| Poll::Ready(receive.as_mut().poll(cx))).await;
    match polled {
        Poll::Pending => Ok(false),
        Poll::Ready(Err(e)) => Err(format!("receive: {e}")),
        Poll::Ready(Ok(Pdu::PData { data })) => {
            inbound.take(data).map_err(|e| e.to_string())?;
            Ok(true)
        }
        Poll::Ready(Ok(other)) => {
            inbound.held = Some(other);
            Ok(true)
        }
    }
}

async fn send_all<S>(
    association: &mut dicom_ul::association::server::AsyncServerAssociation<S>,
    pdus: Vec<Pdu>,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    for pdu in pdus {
        association
            .send(&pdu)
            .await
            .map_err(|e| format!("send: {e}"))?;
    }
    Ok(())
}

/// How a request is answered: PDUs sent at once, or a C-FIND's matches (each a response's PDUs)
/// followed by its final response.
enum Answer {
    Now(Vec<Pdu>),
    Matches { each: Vec<Vec<Pdu>>, done: Vec<Pdu> },
}

/// What a response needs to know of its request and association.
#[derive(Clone, Copy)]
struct Reply<'a> {
    request: &'a Request,
    transfer_syntax: &'a str,
    max_pdu: u32,
}

impl Reply<'_> {
    /// The PDUs of a response on the request's presentation context.
    fn pdus(
        &self,
        command: InMemDicomObject,
        dataset: Option<&InMemDicomObject>,
    ) -> Result<Vec<Pdu>, String> {
        dimse::response_pdus(
            self.request.context_id,
            &command,
            dataset.map(|d| (d, self.transfer_syntax)),
            self.max_pdu,
        )
        .map_err(|e| e.to_string())
    }
}

/// How one request is answered.
async fn answer(reply: Reply<'_>, store: &WorklistStore, calling: &str) -> Result<Answer, String> {
    if reply.request.command_field().map_err(|e| e.to_string())? == command::C_FIND_RQ {
        return find(reply, store, calling).await;
    }
    answer_now(reply, store, calling).await.map(Answer::Now)
}

/// The PDUs that answer a request other than C-FIND, sent at once.
async fn answer_now(
    reply: Reply<'_>,
    store: &WorklistStore,
    calling: &str,
) -> Result<Vec<Pdu>, String> {
    let Reply {
        request,
        transfer_syntax,
        ..
    } = reply;
    let field = request.command_field().map_err(|e| e.to_string())?;
    let pdus = |command: InMemDicomObject, dataset: Option<&InMemDicomObject>| {
        reply.pdus(command, dataset)
    };
    match field {
        command::C_ECHO_RQ => pdus(
            dimse::response(command::C_ECHO_RSP, request, status::SUCCESS, None, false),
            None,
        ),
        command::N_CREATE_RQ | command::N_SET_RQ => {
            let creating = field == command::N_CREATE_RQ;
            let answer_field = if creating {
                command::N_CREATE_RSP
            } else {
                command::N_SET_RSP
            };
            // An SCU may leave the new instance's UID to the SCP (PS3.4 F.7.2.1.1).
            let instance = match request.sop_instance() {
                Some(uid) => uid,
                None if creating => format!("2.25.{}", uuid::Uuid::new_v4().as_u128()),
                None => {
                    return pdus(
                        dimse::response(
                            answer_field,
                            request,
                            MppsRefusal::MissingAttribute("RequestedSOPInstanceUID".into())
                                .status_code(),
                            Some("N-SET names no procedure step"),
                            false,
                        ),
                        None,
                    )
                }
            };
            let respond = |code: u16, why: Option<&str>| {
                pdus(
                    dimse::response_about(answer_field, request, code, why, false, Some(&instance)),
                    None,
                )
            };
            let dataset = match request
                .dataset
                .as_deref()
                .map(|bytes| dimse::read_dataset(bytes, transfer_syntax))
            {
                Some(Ok(dataset)) => dataset,
                Some(Err(error)) => return respond(0x0110, Some(&error.to_string())),
                None => {
                    let refusal =
                        MppsRefusal::MissingAttribute("the N-CREATE/N-SET dataset".into());
                    return respond(refusal.status_code(), Some(&refusal.to_string()));
                }
            };
            let update = step_update(creating, &instance, &dataset, calling);
            match store.perform(&update).await {
                Ok(Ok(status)) => {
                    tracing::info!(mpps_uid = %instance, status = status.dicom(), "worklist: procedure step recorded");
                    respond(status::SUCCESS, None)
                }
                Ok(Err(refusal)) => {
                    tracing::warn!(mpps_uid = %instance, %refusal, "worklist: procedure step refused");
                    respond(refusal.status_code(), Some(&refusal.to_string()))
                }
                Err(error) => {
                    tracing::error!(%error, "worklist: recording a procedure step failed");
                    respond(0x0110, Some("the gateway could not record the step"))
                }
            }
        }
        // A C-CANCEL that comes after its C-FIND's last response has nothing left to stop, and a
        // C-CANCEL gets no response of its own (PS3.7 9.3.2.3).
        command::C_CANCEL_RQ => Ok(Vec::new()),
        other => {
            tracing::warn!(
                command_field = other,
                "worklist: an operation this SCP does not offer"
            );
            pdus(
                dimse::response(
                    other | 0x8000,
                    request,
                    status::UNRECOGNISED_OPERATION,
                    Some("this worklist offers C-ECHO, C-FIND, N-CREATE and N-SET"),
                    false,
                ),
                None,
            )
        }
    }
}

/// C-FIND: one pending response per match, with the keys asked for, then success.
async fn find(reply: Reply<'_>, store: &WorklistStore, calling: &str) -> Result<Answer, String> {
    let Reply {
        request,
        transfer_syntax,
        ..
    } = reply;
    let pdus = |command: InMemDicomObject, dataset: Option<&InMemDicomObject>| {
        reply.pdus(command, dataset)
    };
    let failure = |code: u16, why: &str| {
        pdus(
            dimse::response(command::C_FIND_RSP, request, code, Some(why), false),
            None,
        )
        .map(Answer::Now)
    };
    let Some(bytes) = request.dataset.as_deref() else {
        return failure(
            status::IDENTIFIER_DOES_NOT_MATCH,
            "C-FIND without an identifier",
        );
    };
    let identifier = match dimse::read_dataset(bytes, transfer_syntax) {
        Ok(identifier) => identifier,
        Err(error) => return failure(status::IDENTIFIER_DOES_NOT_MATCH, &error.to_string()),
    };
    let query = query_of(&identifier);
    store.note_query(chrono::Utc::now());
    let items = match store.open_items(query.date_bounds()).await {
        Ok(items) => items,
        Err(error) => {
            tracing::error!(%error, "worklist: C-FIND: reading the worklist failed");
            return failure(status::UNABLE_TO_PROCESS, "the worklist cannot be read");
        }
    };
    let mut each = Vec::new();
    for item in items {
        match query.matches(&item) {
            Ok(true) => {
                each.push(pdus(
                    dimse::response(command::C_FIND_RSP, request, status::PENDING, None, true),
                    Some(&answer_for(&identifier, &item)),
                )?);
            }
            Ok(false) => {}
            Err(error) => return failure(status::IDENTIFIER_DOES_NOT_MATCH, &error.to_string()),
        }
    }
    tracing::info!(calling_ae_title = %calling, matches = each.len(), "worklist: C-FIND answered");
    let done = pdus(
        dimse::response(command::C_FIND_RSP, request, status::SUCCESS, None, false),
        None,
    )?;
    Ok(Answer::Matches { each, done })
}

/// What an N-CREATE or N-SET says of its step.
fn step_update(
    creating: bool,
    instance: &str,
    dataset: &InMemDicomObject,
    calling: &str,
) -> StepUpdate {
    let requested_status = key(dataset, tags::PERFORMED_PROCEDURE_STEP_STATUS);
    let ended = requested_status
        .as_deref()
        .and_then(ProcedureStatus::from_dicom)
        .is_some_and(ProcedureStatus::is_final);
    let (date, time) = if ended {
        (
            tags::PERFORMED_PROCEDURE_STEP_END_DATE,
            tags::PERFORMED_PROCEDURE_STEP_END_TIME,
        )
    } else {
        (
            tags::PERFORMED_PROCEDURE_STEP_START_DATE,
            tags::PERFORMED_PROCEDURE_STEP_START_TIME,
        )
    };
    let at = local_instant(key(dataset, date), key(dataset, time)).unwrap_or_else(Utc::now);
    let scheduled = dataset
        .get(tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE)
        .and_then(|element| element.items())
        .and_then(|items| items.first());
    let reason = dataset
        .get(tags::PERFORMED_PROCEDURE_STEP_DISCONTINUATION_REASON_CODE_SEQUENCE)
        .and_then(|element| element.items())
        .and_then(|items| items.first())
        .and_then(|item| key(item, tags::CODE_MEANING));
    StepUpdate {
        instance: instance.to_string(),
        kind: if creating {
            StepKind::Create {
                accession_number: scheduled.and_then(|item| key(item, tags::ACCESSION_NUMBER)),
                study_instance_uid: scheduled.and_then(|item| key(item, tags::STUDY_INSTANCE_UID)),
            }
        } else {
            StepKind::Set
        },
        requested_status,
        station_ae_title: key(dataset, tags::PERFORMED_STATION_AE_TITLE),
        calling_ae_title: calling.trim().to_string(),
        at,
        reason,
    }
}

/// A DICOM local date (DA) and time (TM) as an instant, read as UK wall-clock time.
fn local_instant(date: Option<String>, time: Option<String>) -> Option<chrono::DateTime<Utc>> {
    let date = chrono::NaiveDate::parse_from_str(&date?, "%Y%m%d").ok()?;
    let time = time.unwrap_or_default();
    let digits: String = time
        .split('.')
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let padded = format!("{digits:0<6}");
    let time = chrono::NaiveTime::parse_from_str(&padded[..6], "%H%M%S").ok()?;
    Some(screening_core::london::to_utc(date.and_time(time)))
}

/// A key's value, with DICOM's padding taken off; `None` when absent or empty (universal match).
fn key(dataset: &InMemDicomObject, tag: Tag) -> Option<String> {
    dataset
        .get(tag)
        .and_then(|element| element.to_str().ok())
        .map(|text| text.trim_end_matches(['\0', ' ']).trim_start().to_string())
        .filter(|text| !text.is_empty())
}

/// The first item of the ScheduledProcedureStepSequence the modality sent, if any.
fn step_keys(identifier: &InMemDicomObject) -> Option<&InMemDicomObject> {
    identifier
        .get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .and_then(|element| element.items())
        .and_then(|items| items.first())
}

fn query_of(identifier: &InMemDicomObject) -> WorklistQuery {
    let step = step_keys(identifier);
    let step_key = |tag| step.and_then(|step| key(step, tag));
    WorklistQuery {
        patient_id: key(identifier, tags::PATIENT_ID),
        patient_name: key(identifier, tags::PATIENT_NAME),
        accession_number: key(identifier, tags::ACCESSION_NUMBER),
        modality: step_key(tags::MODALITY),
        station_ae_title: step_key(tags::SCHEDULED_STATION_AE_TITLE),
        start_date: step_key(tags::SCHEDULED_PROCEDURE_STEP_START_DATE),
        start_time: step_key(tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
    }
}

fn text(tag: Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
    if value.is_empty() {
        DataElement::new(tag, vr, PrimitiveValue::Empty)
    } else {
        DataElement::new(tag, vr, PrimitiveValue::from(value))
    }
}

/// The procedure code as a code sequence item (SNOMED CT, coding scheme `SCT`).
fn procedure_code(item: &WorklistItem) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        text(tags::CODE_VALUE, VR::SH, &item.procedure_code),
        text(tags::CODING_SCHEME_DESIGNATOR, VR::SH, "SCT"),
        text(tags::CODE_MEANING, VR::LO, &item.description),
    ])
}

/// One match: every key the modality asked for, with the item's value or empty.
fn answer_for(identifier: &InMemDicomObject, item: &WorklistItem) -> InMemDicomObject {
    let mut answer = InMemDicomObject::new_empty();
    answer.put(text(tags::SPECIFIC_CHARACTER_SET, VR::CS, CHARACTER_SET));
    for asked in identifier.iter() {
        let tag = asked.tag();
        let element = match tag {
            tags::SPECIFIC_CHARACTER_SET => continue,
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE => {
                let step = step_keys(identifier)
                    .cloned()
                    .unwrap_or_else(InMemDicomObject::new_empty);
                DataElement::new(
                    tag,
                    VR::SQ,
                    DataSetSequence::from(vec![step_answer(&step, item)]),
                )
            }
            tags::REQUESTED_PROCEDURE_CODE_SEQUENCE => DataElement::new(
                tag,
                VR::SQ,
                DataSetSequence::from(vec![procedure_code(item)]),
            ),
            tags::ACCESSION_NUMBER => text(tag, VR::SH, &item.accession_number),
            tags::PATIENT_NAME => text(tag, VR::PN, &item.patient_name),
            tags::PATIENT_ID => text(tag, VR::LO, &item.patient_id),
            tags::ISSUER_OF_PATIENT_ID => text(tag, VR::LO, NHS_ISSUER),
            tags::PATIENT_BIRTH_DATE => text(tag, VR::DA, &item.birth_date),
            tags::PATIENT_SEX => text(tag, VR::CS, &item.sex),
            tags::STUDY_INSTANCE_UID => text(tag, VR::UI, &item.study_instance_uid),
            tags::REQUESTED_PROCEDURE_ID => text(tag, VR::SH, &item.requested_procedure_id),
            tags::REQUESTED_PROCEDURE_DESCRIPTION => text(tag, VR::LO, &item.description),
            _ => empty_like(asked),
        };
        answer.put(element);
    }
    answer
}

fn step_answer(asked: &InMemDicomObject, item: &WorklistItem) -> InMemDicomObject {
    let mut step = InMemDicomObject::new_empty();
    for key in asked.iter() {
        let tag = key.tag();
        let element = match tag {
            tags::MODALITY => text(tag, VR::CS, MAMMOGRAPHY),
            tags::SCHEDULED_STATION_AE_TITLE => text(tag, VR::AE, &item.station_ae_title),
            tags::SCHEDULED_PROCEDURE_STEP_START_DATE => text(tag, VR::DA, &item.start_date),
            tags::SCHEDULED_PROCEDURE_STEP_START_TIME => text(tag, VR::TM, &item.start_time),
            tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION => text(tag, VR::LO, &item.description),
            tags::SCHEDULED_PROCEDURE_STEP_ID => text(tag, VR::SH, &item.step_id),
            tags::SCHEDULED_PROCEDURE_STEP_STATUS => text(tag, VR::CS, "SCHEDULED"),
            tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE => DataElement::new(
                tag,
                VR::SQ,
                DataSetSequence::from(vec![procedure_code(item)]),
            ),
            _ => empty_like(key),
        };
        step.put(element);
    }
    step
}

/// A key this worklist has no value for: returned empty, with the VR the modality used.
fn empty_like(asked: &DataElement<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    if asked.vr() == VR::SQ {
        DataElement::new(
            asked.tag(),
            VR::SQ,
            DataSetSequence::<InMemDicomObject>::empty(),
        )
    } else {
        DataElement::new(asked.tag(), asked.vr(), PrimitiveValue::Empty)
    }
}
