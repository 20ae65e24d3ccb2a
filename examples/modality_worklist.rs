//! From "Send to modality" to "Complete", in one process, on loopback: the hub (SQLite) → the
//! gateway agent (long-polling) with its DICOM Modality Worklist → a mammography machine, played by
//! a DICOM client on dicom-ul, that queries the worklist (C-FIND) and reports the examination
//! (MPPS N-CREATE IN PROGRESS, then N-SET COMPLETED).
//!
//! ```text
//! cargo run --example modality_worklist
//! ```
//!
//! It prints the timeline through to the appointment's Complete state, as clinic staff would see
//! it change on the clinic page.

use std::time::{Duration, Instant};

use screening::core::prelude::*;
use screening::core::worklist::accession_number;
use screening::gateway::testing::{serve_worklist, start_agent, LocalHub};
use screening::gateway::worklist::modality::{self, Modality};
use screening::gateway::worklist::WorklistSettings;

fn main() {
    screening::gateway::logging::run_main(run())
}

async fn run() {
    let began = Instant::now();
    let at = |what: &str| println!("{:>8.1} ms  {what}", began.elapsed().as_secs_f64() * 1e3);

    // 1. The hub with the demo clinic; the demo gateway's FHIR route goes to its worklist.
    let hub = LocalHub::start().await;
    hub.route_to("mwl:").await;
    println!("hub            {}", hub.hub_url);

    // 2. The gateway agent, long-polling, serving its worklist on a loopback port.
    let folder = tempfile::tempdir().expect("a temporary folder");
    let mut config = hub.agent_config(&folder.path().join("agent.db"));
    let port = serve_worklist(
        &mut config,
        WorklistSettings {
            station_ae_title: "MAMMO1".into(),
            ..WorklistSettings::default()
        },
    );
    let agent = start_agent(config).await;
    println!("worklist       SCREENING_MWL at 127.0.0.1:{port}\n");

    // 3. Clinic staff press "Send to modality".
    let sent = hub.send(0).await;
    at("sent to modality (appointment and message committed together)");
    hub.until_status(sent.id, MessageStatus::Confirmed).await;
    at("the gateway put the order on its worklist and confirmed");

    // 4. The mammography machine asks the worklist for this morning's list.
    let mut machine = Modality::connect(&format!("127.0.0.1:{port}"), "MAMMO1", "SCREENING_MWL")
        .await
        .expect("the worklist accepts the machine");
    let slot = hub
        .demo
        .slots
        .iter()
        .zip(&hub.demo.appointments)
        .find(|(_, appointment)| appointment.id == sent.appointment_id)
        .map(|(slot, _)| slot.starts_at)
        .expect("the appointment's slot");
    let day = screening::core::london::local(slot)
        .format("%Y%m%d")
        .to_string();
    let answer = machine
        .find(&modality::todays_query(&day, "MAMMO1"))
        .await
        .expect("C-FIND");
    at(&format!(
        "C-FIND for {day} on MAMMO1: {} match(es), status {:#06x}",
        answer.matches.len(),
        answer.status
    ));
    let found = answer
        .matches
        .iter()
        .map(modality::summary)
        .find(|found| found.accession_number == accession_number(sent.appointment_id))
        .expect("the participant is on the worklist");
    println!(
        "            {}  NHS {}  accession {}  at {}",
        found.patient_name,
        format_args!("*******{}", &found.patient_id[found.patient_id.len() - 3..]),
        found.accession_number,
        found.starts
    );

    // 5. The radiographer starts, then completes, the examination.
    let step = format!("2.25.{}", uuid::Uuid::new_v4().as_u128());
    let now = screening::core::london::local(chrono::Utc::now());
    let (date, time) = (
        now.format("%Y%m%d").to_string(),
        now.format("%H%M%S").to_string(),
    );
    let started = machine
        .create_step(
            &step,
            &modality::step_started(
                &found.accession_number,
                &found.study_instance_uid,
                "MAMMO1",
                &date,
                &time,
            ),
        )
        .await
        .expect("N-CREATE");
    at(&format!("MPPS N-CREATE IN PROGRESS: status {started:#06x}"));
    until(&hub, sent.appointment_id, AppointmentState::InProgress).await;
    at("the clinic page shows \"In progress\" (started on MAMMO1)");

    let completed = machine
        .set_step(&step, &modality::step_ended("COMPLETED", &date, &time))
        .await
        .expect("N-SET");
    at(&format!("MPPS N-SET COMPLETED: status {completed:#06x}"));
    until(&hub, sent.appointment_id, AppointmentState::Complete).await;
    at("the appointment is Complete");
    machine.release().await.ok();

    println!("\naudit trail:");
    for event in hub
        .store
        .appointment_events(sent.appointment_id)
        .await
        .expect("events")
    {
        println!("  {} → {}  by {}", event.from, event.to, event.by);
    }
    agent.stop.send(true).ok();
}

async fn until(hub: &LocalHub, appointment: AppointmentId, state: AppointmentState) {
    for _ in 0..400 {
        let context = hub
            .store
            .send_context(appointment)
            .await
            .expect("the appointment");
        if context.appointment.state == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the appointment never became {state}");
}
