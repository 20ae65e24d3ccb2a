//! Seeds an SQLite database with the demo clinic, presses "Send to modality" for the first
//! participant who can be sent, and prints the message and its FHIR payload.
//!
//! ```text
//! cargo run --example send_to_modality                       # ./screening.db
//! cargo run --example send_to_modality -- sqlite://other.db  # or DATABASE_URL=postgres://…
//! ```

use screening::core::prelude::*;
use screening::store::{connect, now_utc};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| "sqlite://screening.db".into());
    let store = connect(&url).await?;
    let now = now_utc();
    let demo = store
        .seed_demo(screening_core::london::today(now), now)
        .await?;
    println!(
        "Seeded {} with clinic {:?} on {} at {} ({} appointments)",
        screening::store::redact_password(&url),
        demo.clinic.name,
        demo.clinic.date,
        demo.setting.name,
        demo.appointments.len()
    );

    let appointments = store.clinic_appointments(demo.clinic.id).await?;
    let Some(next) = appointments.iter().find(|a| {
        a.appointment
            .state
            .after(AppointmentAction::SendToModality)
            .is_some()
    }) else {
        println!("Every appointment in today's clinic has been sent already; delete the database to start again.");
        return Ok(());
    };
    println!(
        "Sending {} ({}) at {} to the modality…",
        next.participant.nhs_number.masked(),
        next.appointment.state,
        next.slot.starts_at.format("%H:%M")
    );
    let request = ActionRequest::new(
        AppointmentAction::SendToModality,
        now,
        MessageId::generate(),
        Actor("demo".into()),
    );
    let outcome = act_on_appointment(store.as_ref(), next.appointment.id, &request).await?;
    let message = outcome.message.expect("sending writes a message");

    println!(
        "\nAppointment: {} -> {}",
        outcome.event.from, outcome.event.to
    );
    println!("Message:");
    println!("  id           {}", message.id);
    println!("  type         {}", message.message_type);
    println!("  gateway      {}", message.gateway_id);
    println!("  destination  {}", message.destination);
    println!("  status       {}", message.status());
    println!("  created_at   {}", message.created_at);
    let payload: serde_json::Value = serde_json::from_str(&message.payload)?;
    println!(
        "\nFHIR payload:\n{}",
        serde_json::to_string_pretty(&payload)?
    );
    Ok(())
}
