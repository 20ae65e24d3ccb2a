//! The worklist's MPPS against pynetdicom, the independent peer (`tools/mpps-peer`, a venv made by
//! `scripts/test`): N-CREATE and N-SET as a modality sends them, every refusal with its PS3.4
//! status code, and the reports queued for the hub.
//!
//! Without the peer the tests skip with a notice, except under `CI=true`, where they fail.

use screening_core::procedure::ProcedureStatus;
use screening_core::worklist::{WorklistItem, WorklistOrder};
use std::time::Duration;

use screening_core::prelude::*;
use screening_core::worklist::accession_number;
use screening_gateway::testing::peers::{mpps, mpps_peer};
use screening_gateway::testing::{
    serve_worklist, start_agent, start_worklist, worklist_order, LocalHub, Worklist,
};
use screening_gateway::worklist::WorklistSettings;

async fn scheduled(worklist: &Worklist, first: &str, last: &str) -> WorklistItem {
    let order = worklist_order(first, last, "2026-07-14T08:30:00Z", "MAMMO1");
    worklist
        .store
        .store(&order, chrono::Utc::now())
        .await
        .unwrap();
    match order {
        WorklistOrder::Schedule(item) => *item,
        WorklistOrder::Revoke { .. } => unreachable!(),
    }
}

#[tokio::test]
async fn a_modality_starts_and_completes_and_every_wrong_request_gets_its_status() {
    let Some(python) = mpps_peer() else {
        return;
    };
    let worklist = start_worklist(Vec::new()).await;
    let item = scheduled(&worklist, "Siân", "O'Brien").await;
    let steps = serde_json::json!([
        {"op": "create", "uid": "1.2.826.0.1.1", "accession": item.accession_number,
         "status": "IN PROGRESS", "station": "MAMMO1", "date": "20260714", "time": "093500"},
        {"op": "create", "uid": "1.2.826.0.1.1", "accession": item.accession_number,
         "status": "IN PROGRESS", "station": "MAMMO1"},
        {"op": "set", "uid": "1.2.826.0.1.999", "status": "COMPLETED"},
        {"op": "create", "uid": "1.2.826.0.1.2", "accession": item.accession_number,
         "status": "COMPLETED", "station": "MAMMO1"},
        {"op": "create", "uid": "1.2.826.0.1.3", "accession": item.accession_number,
         "station": "MAMMO1"},
        {"op": "set", "uid": "1.2.826.0.1.1", "status": "IN PROGRESS"},
        {"op": "set", "uid": "1.2.826.0.1.1", "status": "COMPLETED",
         "date": "20260714", "time": "094200"},
        {"op": "set", "uid": "1.2.826.0.1.1", "status": "DISCONTINUED"},
    ]);
    let answers = mpps(&python, worklist.port, steps).await;
    assert_eq!(
        answers,
        [
            Some(0x0000),
            Some(0x0111), // duplicate instance
            Some(0x0112), // no such instance
            Some(0x0106), // a new step must be IN PROGRESS
            Some(0x0120), // no status at all
            Some(0x0000), // interim update
            Some(0x0000),
            Some(0x0110), // a completed step cannot change
        ]
    );

    let reports = worklist.store.unreported().await.unwrap();
    let seen: Vec<_> = reports
        .iter()
        .map(|(_, report)| {
            (
                report.status,
                report.at.to_rfc3339(),
                report.station_ae_title.as_str(),
            )
        })
        .collect();
    // Local (BST) times from the modality, as instants.
    assert_eq!(
        seen,
        [
            (
                ProcedureStatus::InProgress,
                "2026-07-14T08:35:00+00:00".to_string(),
                "MAMMO1"
            ),
            (
                ProcedureStatus::Completed,
                "2026-07-14T08:42:00+00:00".to_string(),
                "MAMMO1"
            ),
        ]
    );
    assert!(reports.iter().all(|(_, r)| r.message_id == item.message_id));
    // Done: off the worklist.
    assert!(worklist.store.open_items(None).await.unwrap().is_empty());
    let (first, _) = &reports[0];
    worklist
        .store
        .mark_reported(*first, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(worklist.store.unreported().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_discontinued_step_carries_the_modalitys_reason_and_a_step_by_study_uid_links() {
    let Some(python) = mpps_peer() else {
        return;
    };
    let worklist = start_worklist(Vec::new()).await;
    let item = scheduled(&worklist, "Zoë", "Ng").await;
    let steps = serde_json::json!([
        {"op": "create", "uid": "1.2.826.0.2.1", "study": item.study_instance_uid,
         "status": "IN PROGRESS", "station": "MAMMO2"},
        {"op": "set", "uid": "1.2.826.0.2.1", "status": "DISCONTINUED",
         "reason": "Patient refused"},
    ]);
    assert_eq!(
        mpps(&python, worklist.port, steps).await,
        [Some(0), Some(0)]
    );
    let reports = worklist.store.unreported().await.unwrap();
    assert_eq!(reports.len(), 2);
    let (_, ended) = &reports[1];
    assert_eq!(ended.status, ProcedureStatus::Discontinued);
    assert_eq!(ended.reason.as_deref(), Some("Patient refused"));
    assert_eq!(ended.station_ae_title, "MAMMO2");
    assert_eq!(ended.message_id, item.message_id);

    // A step for an order this gateway does not hold is accepted (the modality must go on) but
    // reports nothing.
    let steps = serde_json::json!([
        {"op": "create", "uid": "1.2.826.0.2.2", "accession": "UNKNOWN",
         "status": "IN PROGRESS", "station": "MAMMO2"},
    ]);
    assert_eq!(mpps(&python, worklist.port, steps).await, [Some(0)]);
    assert_eq!(worklist.store.unreported().await.unwrap().len(), 2);
}

/// Waits until the appointment reaches `state` (the agent reports in the background).
async fn until_state(hub: &LocalHub, appointment: AppointmentId, state: AppointmentState) {
    for _ in 0..200 {
        let now = hub
            .store
            .send_context(appointment)
            .await
            .unwrap()
            .appointment
            .state;
        if now == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the appointment never became {state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_modalitys_progress_reaches_the_appointment_through_the_gateway() {
    let Some(python) = mpps_peer() else {
        return;
    };
    let hub = LocalHub::start().await;
    hub.route_to("mwl:").await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = hub.agent_config(&dir.path().join("agent.db"));
    let port = serve_worklist(&mut config, WorklistSettings::default());
    let agent = start_agent(config).await;
    let sent = hub.send(0).await;
    hub.until_status(sent.id, MessageStatus::Confirmed).await;
    let accession = accession_number(sent.appointment_id);

    let started = serde_json::json!([
        {"op": "create", "uid": "1.2.826.0.3.1", "accession": accession,
         "status": "IN PROGRESS", "station": "MAMMO1", "date": "20260714", "time": "093500"},
    ]);
    assert_eq!(mpps(&python, port, started).await, [Some(0)]);
    until_state(&hub, sent.appointment_id, AppointmentState::InProgress).await;

    let completed = serde_json::json!([
        {"op": "set", "uid": "1.2.826.0.3.1", "status": "COMPLETED",
         "date": "20260714", "time": "094200"},
    ]);
    assert_eq!(mpps(&python, port, completed).await, [Some(0)]);
    until_state(&hub, sent.appointment_id, AppointmentState::Complete).await;

    let events = hub
        .store
        .appointment_events(sent.appointment_id)
        .await
        .unwrap();
    let by_modality: Vec<_> = events
        .iter()
        .filter(|event| event.action.by_modality())
        .map(|event| (event.action, event.by.0.as_str(), event.at.to_rfc3339()))
        .collect();
    assert_eq!(
        by_modality,
        [
            (
                AppointmentAction::ModalityStarted,
                "modality MAMMO1",
                "2026-07-14T08:35:00+00:00".to_string()
            ),
            (
                AppointmentAction::ModalityCompleted,
                "modality MAMMO1",
                "2026-07-14T08:42:00+00:00".to_string()
            ),
        ]
    );
    agent.stop.send(true).unwrap();
}
