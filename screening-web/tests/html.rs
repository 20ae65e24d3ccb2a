//! Every page's markup, as the server sends it, is valid HTML by the W3C's Nu Html Checker
//! (`vnu.jar` from npm `vnu-jar`, run on the machine's Java): the pages of each role, with and
//! without data, and the error pages and forms with their error summaries. axe-core checks
//! accessibility in the browser test; this checks the markup against the HTML standard itself.
//!
//! Needs Java and `npm ci --prefix tools/browser-tests` (`scripts/test` does it). Without them the
//! test skips with a notice, except under `CI=true`, where it fails.

mod common;

use std::path::{Path, PathBuf};

use common::{peers_present, TestApp, ADMIN, STAFF};
use reqwest::StatusCode;

fn vnu_jar() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/browser-tests/node_modules/vnu-jar/build/dist/vnu.jar")
}

/// What is missing to run the checker, if anything.
fn missing_requirements() -> Vec<String> {
    let mut missing = Vec::new();
    if std::process::Command::new("java")
        .arg("-version")
        .output()
        .is_err()
    {
        missing.push("Java (apt-get install default-jre-headless)".to_string());
    }
    if !vnu_jar().exists() {
        missing.push("vnu-jar (npm ci --prefix tools/browser-tests)".to_string());
    }
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_valid_html_by_the_nu_checker() {
    if !peers_present("the HTML check", &missing_requirements()) {
        return;
    }
    let app = TestApp::sqlite().await;
    let mut pages: Vec<(&str, StatusCode, String)> = Vec::new();

    let visitor = app.visitor();
    let reply = visitor.get("/sign-in").await;
    pages.push(("sign-in", reply.status, reply.body));
    let reply = visitor.sign_in(ADMIN.0, "wrong-password", "/clinics").await;
    pages.push(("sign-in-refused", reply.status, reply.body));
    let reply = visitor.get("/no-such-page").await;
    pages.push(("not-found", reply.status, reply.body));

    let staff = app.signed_in(STAFF).await;
    let reply = staff.get("/admin/messages").await;
    pages.push(("admin-forbidden", reply.status, reply.body));

    let admin = app.signed_in(ADMIN).await;
    let reply = admin.get("/clinics").await;
    pages.push(("clinics", reply.status, reply.body));
    let clinic = app.clinic_path();
    let reply = admin.get(&clinic).await;
    pages.push(("clinic", reply.status, reply.body));
    let sendable = app.sendable().clone();
    let sent = app.send(&admin, &sendable).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let reply = admin.get(&clinic).await;
    pages.push(("clinic-after-send", reply.status, reply.body));
    // The same button again, from the page as it was: refused with the page and its error summary.
    let reply = app.send(&admin, &sendable).await;
    pages.push(("clinic-refused", reply.status, reply.body));

    let message = app.all_messages().await.remove(0);
    let report = screening_core::procedure::ProcedureReport {
        message_id: message.id,
        status: screening_core::procedure::ProcedureStatus::Discontinued,
        at: message.created_at,
        station_ae_title: "MAMMO1".into(),
        reason: Some("Patient refused".into()),
    };
    app.store
        .record_procedure(message.gateway_id, &report)
        .await
        .unwrap();
    let reply = admin.get(&clinic).await;
    assert!(reply.body.contains("Discontinued at"));
    pages.push(("clinic-after-modality", reply.status, reply.body));

    let reply = admin.get("/admin/messages").await;
    pages.push(("messages", reply.status, reply.body));
    let reply = admin.get(&format!("/admin/messages/{}", message.id)).await;
    pages.push(("message", reply.status, reply.body));
    let detail = format!("/admin/messages/{}", message.id);
    let reply = admin
        .submit(&detail, &format!("{detail}/payload"), &[])
        .await;
    pages.push(("message-payload", reply.status, reply.body));
    let reply = admin.get("/admin/audit").await;
    pages.push(("audit", reply.status, reply.body));
    // An alert open (the demo gateway has not been heard from in the hour since): the clinic
    // page's warning callout, and the alerts page with its history.
    let settings = screening_web::server::alerts::AlertSettings::default();
    let later = screening_store::now_utc() + chrono::TimeDelta::hours(1);
    screening_web::server::alerts::check_once(app.store.as_ref(), &settings, later)
        .await
        .unwrap();
    let reply = admin.get(&clinic).await;
    assert!(reply.body.contains("data-alert=\"open\""), "no callout");
    pages.push(("clinic-with-alert", reply.status, reply.body));
    let reply = admin.get("/admin/alerts").await;
    assert!(reply.body.contains("has not been heard from"));
    pages.push(("alerts", reply.status, reply.body));
    let reply = admin.get("/admin/staff").await;
    pages.push(("staff", reply.status, reply.body));
    let reply = admin
        .submit(
            "/admin/staff",
            "/admin/staff",
            &[("username", "not a username"), ("password", "short")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    pages.push(("staff-refused", reply.status, reply.body));
    // An echo answered and one replaced unanswered: the proof and the echo history.
    let gateway = app.demo.gateway.id;
    for _ in 0..2 {
        let echo = screening_core::ids::MessageId::generate();
        app.store
            .request_echo(gateway, echo, screening_store::now_utc(), "schedule")
            .await
            .unwrap();
    }
    let reply = admin.get("/admin/gateways").await;
    pages.push(("gateways", reply.status, reply.body));
    let reply = admin
        .get(&format!("/admin/gateways/{gateway}/echoes"))
        .await;
    assert!(
        reply.body.contains("Not proven: await reply"),
        "{}",
        reply.body
    );
    pages.push(("gateway-echoes", reply.status, reply.body));
    let reply = admin.get("/admin/gateways/new").await;
    pages.push(("gateway-new", reply.status, reply.body));
    let reply = admin
        .submit(
            "/admin/gateways/new",
            "/admin/gateways",
            &[("name", ""), ("transport", "relay")],
        )
        .await;
    pages.push(("gateway-new-refused", reply.status, reply.body));
    let reply = admin
        .get(&format!("/admin/gateways/{}", app.demo.gateway.id))
        .await;
    pages.push(("gateway-edit", reply.status, reply.body));

    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, status, body) in &pages {
        assert!(
            body.trim_start().starts_with("<!DOCTYPE html>"),
            "{name} ({status}) is not a whole page: {body:.300}"
        );
        let file = dir.path().join(format!("{name}.html"));
        std::fs::write(&file, body).unwrap();
        files.push(file);
    }
    let statuses: Vec<String> = pages
        .iter()
        .map(|(name, status, _)| format!("{name} {}", status.as_u16()))
        .collect();
    println!("checked: {}", statuses.join(", "));
    assert!(
        pages
            .iter()
            .any(|(_, status, _)| *status == StatusCode::CONFLICT)
            && pages
                .iter()
                .any(|(_, status, _)| *status == StatusCode::FORBIDDEN)
            && pages
                .iter()
                .any(|(_, status, _)| *status == StatusCode::NOT_FOUND),
        "the error pages are among those checked: {statuses:?}"
    );

    let output = std::process::Command::new("java")
        .arg("-jar")
        .arg(vnu_jar())
        .args(["--errors-only", "--format", "text"])
        .args(&files)
        .output()
        .expect("java runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the Nu Html Checker found errors:\n{report}"
    );
    app.stop().await;
}
