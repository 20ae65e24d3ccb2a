//! From the clinic page to the mammography machine and back, with every part real: staff press
//! Send to modality in the web app, the gateway agent long-polls the app's hub and puts the order
//! on its DICOM worklist, DCMTK's findscu finds the participant as a modality does, pynetdicom
//! reports MPPS IN PROGRESS and COMPLETED, and the clinic page says "Started at …" and then
//! "Completed …" with the appointment Complete.
//!
//! The peers (Debian `dcmtk`, `tools/mpps-peer`) skip the test with a notice when missing, except
//! under `CI=true`, where they fail it.

mod common;

use std::time::Duration;

use common::{read_until, row_of, TestApp, STAFF};
use reqwest::StatusCode;
use screening_core::prelude::*;
use screening_core::worklist::accession_number;
use screening_gateway::auth::{generate_credential, hash_credential};
use screening_gateway::testing::peers::{dcmtk_present, findscu, mpps, mpps_peer};
use screening_gateway::testing::{agent_config, serve_worklist, start_agent};
use screening_gateway::worklist::modality;
use screening_gateway::worklist::WorklistSettings;
use screening_store::now_utc;

/// Reloads the clinic page until the appointment's row contains `words` (up to 20 s).
async fn until_row_says(app: &TestApp, visitor: &common::Visitor, id: AppointmentId, words: &str) {
    for _ in 0..400 {
        let page = visitor.get(&app.clinic_path()).await.body;
        if row_of(&page, id).contains(words) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = visitor.get(&app.clinic_path()).await.body;
    panic!("the row never said {words:?}: {}", row_of(&page, id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_modality_reaches_the_worklist_and_the_modalitys_progress_reaches_the_clinic_page()
{
    let python = mpps_peer();
    if !dcmtk_present() || python.is_none() {
        return;
    }
    let python = python.unwrap();
    let app = TestApp::sqlite().await;
    let gateway = Gateway {
        routes: vec![Route {
            message_type: MessageType::fhir(),
            destination: Destination::parse("mwl:MAMMO1").unwrap(),
        }],
        ..app.demo.gateway.clone()
    };
    app.store.save_gateway(&gateway, now_utc()).await.unwrap();
    let credential = generate_credential();
    app.store
        .set_gateway_credential_hash(gateway.id, &hash_credential(&credential))
        .await
        .unwrap();
    let folder = tempfile::tempdir().unwrap();
    let mut config = agent_config(
        &app.base,
        gateway.id,
        &credential,
        &folder.path().join("agent.db"),
    );
    let port = serve_worklist(&mut config, WorklistSettings::default());
    let agent = start_agent(config).await;

    let visitor = app.signed_in(STAFF).await;
    let appointment = app.sendable().clone();
    assert_eq!(
        app.send(&visitor, &appointment).await.status,
        StatusCode::SEE_OTHER
    );
    until_row_says(&app, &visitor, appointment.id, "data-status=\"confirmed\"").await;

    let accession = accession_number(appointment.id);
    let found = findscu(
        port,
        &[
            "(0040,0100)[0].Modality=MG",
            "(0040,0100)[0].ScheduledStationAETitle=MAMMO1",
            "PatientName",
            "PatientID",
            "StudyInstanceUID",
            &format!("AccessionNumber={accession}"),
        ],
    )
    .await;
    assert_eq!(found.len(), 1, "the participant is on the worklist");
    let participant = app.participant_of(&appointment);
    let summary = modality::summary(&found[0]);
    assert_eq!(summary.patient_id, participant.nhs_number.digits());
    assert_eq!(
        summary.patient_name,
        format!(
            "{}^{}",
            participant.last_name.to_uppercase(),
            participant.first_name
        )
    );

    let today = screening_core::london::local(now_utc());
    let (date, time) = (
        today.format("%Y%m%d").to_string(),
        today.format("%H%M%S").to_string(),
    );
    let started = serde_json::json!([
        {"op": "create", "uid": "1.2.826.0.3.77", "accession": accession,
         "study": summary.study_instance_uid, "status": "IN PROGRESS", "station": "MAMMO1",
         "date": date, "time": time},
    ]);
    // The clinic page open in a browser hears it live, on the same stream as the message status.
    let mut live = visitor
        .open_stream(&format!("{}/events", app.clinic_path()))
        .await;
    let mut heard = String::new();
    read_until(&mut live, &mut heard, "\"status\":\"confirmed\"").await;
    assert_eq!(mpps(&python, port, started).await, [Some(0)]);
    let hh_mm = today.format("%H:%M").to_string();
    read_until(
        &mut live,
        &mut heard,
        &format!("Started at {hh_mm} on MAMMO1"),
    )
    .await;
    until_row_says(
        &app,
        &visitor,
        appointment.id,
        &format!("Started at {hh_mm} on MAMMO1"),
    )
    .await;
    assert_eq!(
        app.state_of(appointment.id).await,
        AppointmentState::InProgress
    );

    let completed = serde_json::json!([
        {"op": "set", "uid": "1.2.826.0.3.77", "status": "COMPLETED", "date": date, "time": time},
    ]);
    assert_eq!(mpps(&python, port, completed).await, [Some(0)]);
    until_row_says(&app, &visitor, appointment.id, "Completed").await;
    assert_eq!(
        app.state_of(appointment.id).await,
        AppointmentState::Complete
    );
    agent.stop.send(true).unwrap();
    app.stop().await;
}
