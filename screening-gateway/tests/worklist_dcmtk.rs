//! The worklist against DCMTK, the independent DICOM peer (Debian `dcmtk`): `echoscu` verifies,
//! `findscu -W` queries as a modality does, and what findscu wrote (`-X`) is read back with
//! dicom-object and checked attribute by attribute, including UTF-8 names and UK local times.
//!
//! Without DCMTK the tests skip with a notice, except under `CI=true`, where they fail
//! (`.ci/run` installs it).

use chrono::Utc;
use dicom_dictionary_std::tags;
use screening_core::ids::*;
use screening_core::message::MessageStatus;
use screening_core::worklist::{accession_number, WorklistOrder};
use screening_gateway::testing::peers::{dcmtk_present, findscu, findscu_with, MODALITY_KEYS};
use screening_gateway::testing::{
    serve_worklist, start_agent, start_worklist, worklist_order as order, LocalHub,
};
use screening_gateway::worklist::{Stored, WorklistSettings};
use tokio::process::Command;
use uuid::Uuid;

fn text(object: &dicom_object::InMemDicomObject, tag: dicom_core::Tag) -> String {
    object
        .element(tag)
        .unwrap_or_else(|_| panic!("{tag} is in the response"))
        .to_str()
        .unwrap()
        .trim_end_matches(['\0', ' '])
        .to_string()
}

#[tokio::test]
async fn echoscu_verifies_and_a_wrong_called_ae_title_is_rejected() {
    if !dcmtk_present() {
        return;
    }
    let worklist = start_worklist(Vec::new()).await;
    let port = worklist.port.to_string();
    let echo = |called: &'static str| {
        let port = port.clone();
        async move {
            Command::new("echoscu")
                .args(["-aet", "MAMMO1", "-aec", called, "127.0.0.1", &port])
                .output()
                .await
                .unwrap()
        }
    };
    let ok = echo("SCREENING_MWL").await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = echo("SOMEONE_ELSE").await;
    assert!(
        !refused.status.success(),
        "a wrong called AE title is refused"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Called AE Title Not Recognized"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[tokio::test]
async fn a_calling_ae_title_off_the_allow_list_is_rejected() {
    if !dcmtk_present() {
        return;
    }
    let worklist = start_worklist(vec!["MAMMO2".into()]).await;
    let output = Command::new("echoscu")
        .args(["-aet", "MAMMO1", "-aec", "SCREENING_MWL", "127.0.0.1"])
        .arg(worklist.port.to_string())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("Calling AE Title Not Recognized"));
}

#[tokio::test]
async fn findscu_finds_todays_participant_with_every_key_it_asked_for() {
    if !dcmtk_present() {
        return;
    }
    let worklist = start_worklist(Vec::new()).await;
    // 08:30 UTC in July is 09:30 in the UK (BST); the January one is 09:00 GMT.
    let summer = order("Siân", "O'Brien", "2026-07-14T08:30:00Z", "MAMMO1");
    let winter = order("Zoë", "Ng", "2026-01-14T09:00:00Z", "");
    for order in [&summer, &winter] {
        assert_eq!(
            worklist.store.store(order, Utc::now()).await.unwrap(),
            Stored::Scheduled
        );
    }
    // Redelivery changes nothing.
    assert_eq!(
        worklist.store.store(&summer, Utc::now()).await.unwrap(),
        Stored::AlreadyThere
    );
    let WorklistOrder::Schedule(expected) = &summer else {
        unreachable!()
    };

    let mut keys = MODALITY_KEYS.to_vec();
    keys.push("(0040,0100)[0].ScheduledProcedureStepStartDate=20260714");
    let responses = findscu(worklist.port, &keys).await;
    assert_eq!(responses.len(), 1, "one match for 14 July");
    let found = &responses[0];
    assert_eq!(text(found, tags::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
    assert_eq!(text(found, tags::PATIENT_NAME), "O'BRIEN^Siân");
    assert_eq!(text(found, tags::PATIENT_ID), "9434765919");
    assert_eq!(text(found, tags::ISSUER_OF_PATIENT_ID), "NHS");
    assert_eq!(text(found, tags::PATIENT_BIRTH_DATE), "19610730");
    assert_eq!(text(found, tags::PATIENT_SEX), "F");
    assert_eq!(
        text(found, tags::ACCESSION_NUMBER),
        expected.accession_number
    );
    assert!(expected.accession_number.len() <= 16);
    assert_eq!(
        text(found, tags::STUDY_INSTANCE_UID),
        format!("2.25.{}", expected.message_id.as_uuid().as_u128())
    );
    assert_eq!(
        text(found, tags::REQUESTED_PROCEDURE_ID),
        expected.accession_number
    );
    // Asked for, no value here: returned empty, not left out.
    assert_eq!(text(found, tags::REFERRING_PHYSICIAN_NAME), "");
    let step = &found
        .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(text(step, tags::MODALITY), "MG");
    assert_eq!(
        text(step, tags::SCHEDULED_PROCEDURE_STEP_START_DATE),
        "20260714"
    );
    assert_eq!(
        text(step, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
        "093000"
    );
    assert_eq!(text(step, tags::SCHEDULED_STATION_AE_TITLE), "MAMMO1");
    assert_eq!(
        text(step, tags::SCHEDULED_PROCEDURE_STEP_ID),
        expected.step_id
    );
    assert_eq!(
        text(step, tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION),
        "Screening mammography"
    );

    // GMT date, a name search with a wildcard, any station.
    let mut keys = MODALITY_KEYS.to_vec();
    keys.retain(|key| *key != "PatientName");
    keys.push("PatientName=ng*");
    keys.push("(0040,0100)[0].ScheduledProcedureStepStartDate=20260101-20260131");
    let responses = findscu(worklist.port, &keys).await;
    assert_eq!(responses.len(), 1);
    assert_eq!(text(&responses[0], tags::PATIENT_NAME), "NG^Zoë");
    let step = &responses[0]
        .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(
        text(step, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
        "090000"
    );

    // Another modality: the MAMMO1 item is not for it, the item for any station is.
    let mut keys = MODALITY_KEYS.to_vec();
    keys.retain(|key| !key.contains("ScheduledStationAETitle"));
    keys.push("(0040,0100)[0].ScheduledStationAETitle=MAMMO2");
    let responses = findscu(worklist.port, &keys).await;
    assert_eq!(responses.len(), 1);
    assert_eq!(text(&responses[0], tags::PATIENT_NAME), "NG^Zoë");

    // A query that matches nothing answers with no match, and a bad date key is refused.
    let mut keys = MODALITY_KEYS.to_vec();
    keys.push("(0040,0100)[0].ScheduledProcedureStepStartDate=20300101");
    assert!(findscu(worklist.port, &keys).await.is_empty());
}

#[tokio::test]
async fn a_resend_replaces_the_item_and_a_revoke_takes_it_off() {
    if !dcmtk_present() {
        return;
    }
    let worklist = start_worklist(Vec::new()).await;
    let first = order("Janet", "Williams", "2026-07-14T08:30:00Z", "");
    let WorklistOrder::Schedule(item) = &first else {
        unreachable!()
    };
    worklist.store.store(&first, Utc::now()).await.unwrap();
    // The same appointment sent again: a new message with the same accession number.
    let mut resent = (**item).clone();
    resent.message_id = MessageId::generate();
    resent.start_time = "100000".into();
    let resent = WorklistOrder::Schedule(Box::new(resent));
    worklist.store.store(&resent, Utc::now()).await.unwrap();
    let responses = findscu(worklist.port, MODALITY_KEYS).await;
    assert_eq!(responses.len(), 1, "the resend replaced the first item");
    let step = &responses[0]
        .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(
        text(step, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
        "100000"
    );
    let revoke = WorklistOrder::Revoke {
        accession_number: accession_number(AppointmentId::from_uuid(Uuid::nil())),
    };
    assert_eq!(
        worklist.store.store(&revoke, Utc::now()).await.unwrap(),
        Stored::Revoked { count: 0 },
        "another appointment's revoke touches nothing"
    );
    let revoke = WorklistOrder::Revoke {
        accession_number: item.accession_number.clone(),
    };
    assert_eq!(
        worklist.store.store(&revoke, Utc::now()).await.unwrap(),
        Stored::Revoked { count: 1 }
    );
    assert!(findscu(worklist.port, MODALITY_KEYS).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_sent_from_the_hub_is_found_by_findscu_replaced_on_resend_and_survives_a_restart()
{
    if !dcmtk_present() {
        return;
    }
    let hub = LocalHub::start().await;
    hub.route_to("mwl:").await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = hub.agent_config(&dir.path().join("agent.db"));
    let port = serve_worklist(
        &mut config,
        WorklistSettings {
            station_ae_title: "MAMMO1".into(),
            ..WorklistSettings::default()
        },
    );
    let agent = start_agent(config.clone()).await;

    let sent = hub.send(0).await;
    hub.until_status(sent.id, MessageStatus::Confirmed).await;
    let participant = hub
        .demo
        .participants
        .iter()
        .find(|p| p.id == sent.participant_id)
        .unwrap()
        .clone();
    let patient_key = format!("PatientID={}", participant.nhs_number.digits());
    let mut keys = MODALITY_KEYS.to_vec();
    keys.retain(|key| *key != "PatientID");
    keys.push(&patient_key);
    let found = findscu(port, &keys).await;
    assert_eq!(found.len(), 1, "the order is on the worklist once");
    assert_eq!(
        text(&found[0], tags::PATIENT_NAME),
        format!(
            "{}^{}",
            participant.last_name.to_uppercase(),
            participant.first_name
        )
    );
    assert_eq!(
        text(&found[0], tags::STUDY_INSTANCE_UID),
        format!("2.25.{}", sent.id.as_uuid().as_u128())
    );
    let step = &found[0]
        .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(text(step, tags::SCHEDULED_STATION_AE_TITLE), "MAMMO1");

    // A resend replaces the item: still one, now the new message's study.
    let resent = hub.resend(0).await;
    hub.until_status(resent.id, MessageStatus::Confirmed).await;
    let found = findscu(port, &keys).await;
    assert_eq!(found.len(), 1, "replaced, not added");
    assert_eq!(
        text(&found[0], tags::STUDY_INSTANCE_UID),
        format!("2.25.{}", resent.id.as_uuid().as_u128())
    );

    // Restarted, the agent serves the same worklist from its file.
    agent.stop.send(true).unwrap();
    agent.task.await.unwrap();
    let restarted = start_agent(config).await;
    let found = findscu(port, &keys).await;
    assert_eq!(found.len(), 1, "the item survives a restart");
    restarted.stop.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mwl_order_on_a_gateway_without_a_worklist_fails_with_the_reason() {
    let hub = LocalHub::start().await;
    hub.route_to("mwl:").await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = hub.agent_config(&dir.path().join("agent.db"));
    config.max_attempts = 1;
    let agent = start_agent(config).await;
    let sent = hub.send(0).await;
    let failed = hub.until_status(sent.id, MessageStatus::Failed).await;
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("serves no worklist"),
        "{:?}",
        failed.last_error
    );
    agent.stop.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_sent_appointment_takes_it_off_the_worklist() {
    if !dcmtk_present() {
        return;
    }
    let hub = LocalHub::start().await;
    hub.route_to("mwl:").await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = hub.agent_config(&dir.path().join("agent.db"));
    let port = serve_worklist(&mut config, WorklistSettings::default());
    let agent = start_agent(config).await;
    let sent = hub.send(0).await;
    hub.until_status(sent.id, MessageStatus::Confirmed).await;
    let accession = keys_matching(sent.appointment_id);
    let keys: Vec<&str> = accession.iter().map(String::as_str).collect();
    assert_eq!(findscu(port, &keys).await.len(), 1);

    let cancel = screening_core::send::ActionRequest::new(
        screening_core::appointment::AppointmentAction::Cancel,
        Utc::now(),
        MessageId::generate(),
        screening_core::appointment::Actor("clinic.staff".into()),
    );
    let outcome =
        screening_core::send::act_on_appointment(hub.store.as_ref(), sent.appointment_id, &cancel)
            .await
            .unwrap();
    let revoke = outcome
        .message
        .expect("cancelling a sent appointment writes a revoke");
    hub.until_status(revoke.id, MessageStatus::Confirmed).await;
    assert!(
        findscu(port, &keys).await.is_empty(),
        "the revoked order is off the worklist"
    );
    agent.stop.send(true).unwrap();
}

/// The modality's keys, matching one appointment's accession number.
fn keys_matching(appointment: AppointmentId) -> Vec<String> {
    MODALITY_KEYS
        .iter()
        .filter(|key| **key != "AccessionNumber")
        .map(|key| key.to_string())
        .chain([format!("AccessionNumber={}", accession_number(appointment))])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_pushed_through_the_relay_is_on_the_worklist() {
    if !dcmtk_present() {
        return;
    }
    let hub = LocalHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (relay, relay_url) = screening_gateway::testing::start_local_relay().await;
    hub.push_through_relay(
        &relay_url,
        screening_gateway::testing::RELAY_SEND_KEY,
        "mwl:MAMMO2",
    )
    .await;
    let mut config = hub.relay_agent_config(&dir.path().join("agent.db"), &relay_url);
    let port = serve_worklist(&mut config, WorklistSettings::default());
    let agent = start_agent(config).await;
    screening_gateway::testing::until_listening(&relay).await;

    let sent = hub.send(0).await;
    hub.until_status(sent.id, MessageStatus::Confirmed).await;
    let accession = keys_matching(sent.appointment_id);
    let keys: Vec<&str> = accession.iter().map(String::as_str).collect();
    let found = findscu(port, &keys).await;
    assert_eq!(
        found.len(),
        1,
        "pushed, not polled (the agent polls hourly)"
    );
    let step = &found[0]
        .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(
        text(step, tags::SCHEDULED_STATION_AE_TITLE),
        "MAMMO2",
        "the route names the station"
    );
    agent.stop.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findscu_cancelling_after_three_matches_gets_the_cancel_status_and_no_more() {
    if !dcmtk_present() {
        return;
    }
    let worklist = start_worklist(Vec::new()).await;
    for _ in 0..2_000 {
        let scheduled = order("Janet", "Williams", "2026-07-14T08:30:00Z", "");
        worklist.store.store(&scheduled, Utc::now()).await.unwrap();
    }
    let (found, printed) =
        findscu_with(worklist.port, &["--cancel", "3", "-v"], MODALITY_KEYS).await;
    // The worklist's bounded send buffer paces its matches by findscu's reading, so the cancel
    // is read a few hundred matches in (170 to 370 here), not after all of them.
    assert!(
        found.len() < 1_000,
        "matching stopped promptly: {} of 2,000 sent",
        found.len()
    );
    assert!(
        printed.contains("Received Final Find Response (Cancel"),
        "{printed}"
    );
    // The worklist serves the next query in full.
    assert_eq!(findscu(worklist.port, MODALITY_KEYS).await.len(), 2_000);
}
