//! Every page and action over real HTTP, on a fresh SQLite database (and the send flow on
//! PostgreSQL): what a clinician and an admin see, and what is refused with nothing changed.

mod common;

use common::{act_through, csrf_in, read_until, row_of, TestApp, ADMIN, STAFF};
use reqwest::StatusCode;
use screening_core::prelude::*;
use screening_core::procedure::{ProcedureReport, ProcedureStatus};
use screening_gateway::auth::verify_credential;
use screening_store::now_utc;
use screening_store::testing::Backend;
use screening_web::server::WebConfig;
use std::time::Duration;

#[tokio::test]
async fn an_anonymous_visitor_is_sent_to_sign_in_and_comes_back_afterwards() {
    let app = TestApp::sqlite().await;
    let visitor = app.visitor();
    let clinic = app.clinic_path();
    let reply = visitor.get(&clinic).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.location(),
        format!("/sign-in?return_to=%2Fclinics%2F{}", app.demo.clinic.id)
    );
    let form = visitor.get(reply.location()).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<h1>Sign in</h1>"));
    let signed_in = visitor.sign_in(ADMIN.0, ADMIN.1, &clinic).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), clinic);
    assert_eq!(visitor.get(&clinic).await.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_refused_with_the_same_error_summary() {
    let app = TestApp::sqlite().await;
    for (username, password) in [(ADMIN.0, "wrong-password-1"), ("nobody.here", ADMIN.1)] {
        let visitor = app.visitor();
        let reply = visitor.sign_in(username, password, "/clinics").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.body.contains("There is a problem"));
        assert!(reply.body.contains("Enter a correct username and password"));
        assert!(reply.session_cookie().is_none());
        assert_eq!(visitor.get("/clinics").await.status, StatusCode::SEE_OTHER);
    }
    let empty = app.visitor().sign_in("", "", "/clinics").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.body.contains("Enter your username"));
    assert!(empty.body.contains("Enter your password"));
    app.stop().await;
}

#[tokio::test]
async fn repeated_failed_sign_ins_lock_the_username_for_a_while() {
    let app = TestApp::sqlite().await;
    for _ in 0..5 {
        let reply = app
            .visitor()
            .sign_in(STAFF.0, "wrong-password-1", "/clinics")
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let locked = app.visitor().sign_in(STAFF.0, STAFF.1, "/clinics").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.body.contains("Too many failed sign-ins"));
    assert!(locked.session_cookie().is_none());
    // Another account is not affected.
    let admin = app.visitor().sign_in(ADMIN.0, ADMIN.1, "/clinics").await;
    assert_eq!(admin.status, StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn sign_in_never_returns_to_another_site() {
    let app = TestApp::sqlite().await;
    for evil in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let reply = app.visitor().sign_in(ADMIN.0, ADMIN.1, evil).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        assert_eq!(reply.location(), "/clinics", "{evil}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_secure_over_tls() {
    let app = TestApp::sqlite().await;
    let visitor = app.visitor();
    let plain = visitor.sign_in(ADMIN.0, ADMIN.1, "/clinics").await;
    let cookie = plain.session_cookie().expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP cannot carry a Secure cookie: {cookie}"
    );

    let tls = app.visitor();
    let token = tls.get("/sign-in").await.csrf();
    let reply = tls
        .client
        .post(format!("{}/sign-in", app.base))
        .header("x-forwarded-proto", "https")
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", ADMIN.0),
            ("password", ADMIN.1),
        ])
        .send()
        .await
        .unwrap();
    let cookie = common::session_cookie_in(reply.headers()).unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    app.stop().await;
}

#[tokio::test]
async fn signing_out_ends_the_session_even_for_a_copied_cookie() {
    let app = TestApp::sqlite().await;
    let visitor = app.visitor();
    let signed_in = visitor.sign_in(STAFF.0, STAFF.1, "/clinics").await;
    let cookie = signed_in.session_cookie().unwrap();
    let copied = cookie.split(';').next().unwrap().to_string();
    let replay = || async {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}/clinics", app.base))
            .header("cookie", &copied)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        replay().await,
        StatusCode::OK,
        "the copied cookie works while signed in"
    );
    let reply = visitor.submit("/clinics", "/sign-out", &[]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/sign-in?signed_out=1");
    assert_eq!(visitor.get("/clinics").await.status, StatusCode::SEE_OTHER);
    assert!(visitor
        .get("/sign-in?signed_out=1")
        .await
        .body
        .contains("You have signed out"));
    app.stop().await;
}

#[tokio::test]
async fn a_post_without_a_valid_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::sqlite().await;
    let visitor = app.signed_in(STAFF).await;
    let appointment = app.sendable().clone();
    let path = app.action_path(appointment.id);
    let version = appointment.version.to_string();
    for token in [None, Some("forged-token")] {
        let mut fields = vec![
            ("action", "send_to_modality"),
            ("version", version.as_str()),
        ];
        if let Some(token) = token {
            fields.push(("csrf_token", token));
        }
        let reply = visitor.post(&path, &fields).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(reply.body.contains("This form has expired"));
    }
    // A token from another session does not work either.
    let other = app.signed_in(STAFF).await;
    let foreign = other.get("/clinics").await.csrf();
    let reply = visitor
        .post(
            &path,
            &[
                ("csrf_token", &foreign),
                ("action", "send_to_modality"),
                ("version", &version),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(app.all_messages().await.is_empty());
    assert_eq!(app.state_of(appointment.id).await, appointment.state);
    app.stop().await;
}

#[tokio::test]
async fn the_clinic_list_shows_date_site_and_counts_by_state() {
    let app = TestApp::sqlite().await;
    let visitor = app.signed_in(STAFF).await;
    let reply = visitor.get("/clinics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers.get("cache-control").unwrap(),
        "no-store",
        "pages with patient data are never cached"
    );
    let page = &reply.body;
    assert!(page.contains("nhsuk-header"), "NHS header");
    assert!(page.contains(&app.demo.clinic.name));
    assert!(page.contains(&app.demo.setting.name));
    assert!(page.contains(&app.clinic_path()));
    let date = app.demo.clinic.date.format("%-d %B %Y").to_string();
    assert!(page.contains(&date), "date as the NHS writes it: {date}");
    for state in AppointmentState::ALL {
        let n = app
            .demo
            .appointments
            .iter()
            .filter(|a| a.state == state)
            .count();
        if n > 0 {
            assert!(
                page.contains(&format!("{}: {n}", state.label())),
                "{state:?}"
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_clinic_page_lists_appointments_with_nhs_numbers_tags_and_allowed_actions() {
    let app = TestApp::sqlite().await;
    let visitor = app.signed_in(STAFF).await;
    let reply = visitor.get(&app.clinic_path()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let page = &reply.body;
    for (participant, appointment) in app.demo.participants.iter().zip(&app.demo.appointments) {
        assert!(page.contains(&participant.first_name) && page.contains(&participant.last_name));
        assert!(
            page.contains(&participant.nhs_number.to_string()),
            "formatted 999 123 4567"
        );
        assert!(page.contains(&participant.date_of_birth.format("%-d %B %Y").to_string()));
        let row = row_of(page, appointment.id);
        assert!(row.contains(&format!("data-state=\"{}\"", appointment.state.code())));
        assert!(row.contains("nhsuk-tag"));
        for action in AppointmentAction::ALL {
            let button = format!("value=\"{}\"", action.code());
            assert_eq!(
                row.contains(&button),
                appointment.state.after(action).is_some(),
                "{action:?} in state {:?}",
                appointment.state
            );
        }
        assert!(row.contains("Not sent"));
        assert!(
            row.contains(&format!("id=\"status-{}\"", appointment.id)),
            "the live cell"
        );
        assert_eq!(row.matches("<form").count(), 1, "one form per row");
    }
    assert!(
        page.contains("data-component=\"LiveUpdates"),
        "the live status island"
    );
    app.stop().await;
}

#[tokio::test]
async fn send_to_modality_commits_the_message_and_comes_back_with_its_status() {
    let app = TestApp::sqlite().await;
    let visitor = app.signed_in(STAFF).await;
    let appointment = app.sendable().clone();
    let reply = app.send(&visitor, &appointment).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(
        reply.location(),
        format!("{}#appointment-{}", app.clinic_path(), appointment.id)
    );
    let messages = app.all_messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].appointment_id, appointment.id);
    assert_eq!(messages[0].status(), MessageStatus::Pending);
    assert_eq!(
        app.state_of(appointment.id).await,
        AppointmentState::SentToModality
    );
    let events = app.store.appointment_events(appointment.id).await.unwrap();
    assert_eq!(
        events.last().unwrap().by,
        Actor(STAFF.0.into()),
        "audited as the user"
    );

    let participant = app.participant_of(&appointment);
    for cookie in reply.set_cookies() {
        for name in [&participant.first_name, &participant.last_name] {
            assert!(
                !cookie.contains(name.as_str()),
                "no name in a cookie: {cookie}"
            );
        }
    }
    let page = visitor.get(&app.clinic_path()).await.body;
    assert!(page.contains("nhsuk-notification-banner--success"));
    assert!(page.contains(&format!(
        "{} {}: Send to modality – the message is on its way",
        participant.first_name, participant.last_name
    )));
    let row = row_of(&page, appointment.id);
    assert!(row.contains("data-status=\"pending\""));
    assert!(row.contains("value=\"resend\""));
    assert!(!row.contains("value=\"send_to_modality\""));
    // The banner shows once.
    assert!(!visitor
        .get(&app.clinic_path())
        .await
        .body
        .contains("notification-banner--success"));
    app.stop().await;
}

#[tokio::test]
async fn the_clinic_page_says_what_the_modality_did_and_offers_no_modality_buttons() {
    let app = TestApp::sqlite().await;
    let visitor = app.signed_in(STAFF).await;
    let appointment = app.sendable().clone();
    assert_eq!(
        app.send(&visitor, &appointment).await.status,
        StatusCode::SEE_OTHER
    );
    let message = app.all_messages().await.remove(0);
    let started_at = chrono::DateTime::parse_from_rfc3339("2026-07-14T08:35:00Z")
        .unwrap()
        .to_utc();
    let report = ProcedureReport {
        message_id: message.id,
        status: ProcedureStatus::InProgress,
        at: started_at,
        station_ae_title: "MAMMO1".into(),
        reason: None,
    };
    app.store
        .record_procedure(message.gateway_id, &report)
        .await
        .unwrap();
    let page = visitor.get(&app.clinic_path()).await.body;
    let row = row_of(&page, appointment.id);
    // 08:35 UTC in July is 09:35 in the UK.
    assert!(row.contains("Started at 09:35 on MAMMO1"), "{row}");
    assert!(row.contains("data-procedure=\"started\""), "{row}");
    assert!(row.contains("In progress"), "{row}");
    assert!(
        !row.contains("modality_started"),
        "no button for the modality's own actions"
    );
    assert!(
        row.contains("value=\"complete\""),
        "staff can still complete it"
    );
    app.stop().await;
}

#[tokio::test]
async fn pressing_send_twice_shows_an_error_summary_and_changes_nothing() {
    let app = TestApp::sqlite().await;
    let visitor = app.signed_in(STAFF).await;
    let appointment = app.sendable().clone();
    let page = visitor.get(&app.clinic_path()).await;
    let token = page.csrf();
    let version = appointment.version.to_string();
    let fields = [
        ("csrf_token", token.as_str()),
        ("action", "send_to_modality"),
        ("version", version.as_str()),
    ];
    let first = visitor
        .post(&app.action_path(appointment.id), &fields)
        .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let second = visitor
        .post(&app.action_path(appointment.id), &fields)
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert!(second.body.contains("nhsuk-error-summary"));
    assert!(second.body.contains("There is a problem"));
    assert!(second
        .body
        .contains("already been sent to the modality; use Resend"));
    assert_eq!(app.all_messages().await.len(), 1, "no second message");
    app.stop().await;
}

#[tokio::test]
async fn an_action_the_state_machine_forbids_or_does_not_know_is_refused() {
    let app = TestApp::sqlite().await;
    let visitor = app.signed_in(STAFF).await;
    let pending = app.first_in(AppointmentState::Pending);
    let version = pending.version.to_string();
    let path = app.action_path(pending.id);
    let complete = visitor
        .submit(
            &app.clinic_path(),
            &path,
            &[("action", "complete"), ("version", &version)],
        )
        .await;
    assert_eq!(complete.status, StatusCode::CONFLICT);
    assert!(
        complete
            .body
            .contains("Cannot complete an appointment that is pending"),
        "{}",
        complete.body
    );
    let unknown = visitor
        .submit(
            &app.clinic_path(),
            &path,
            &[("action", "explode"), ("version", &version)],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.body.contains("not one this service knows"));
    let no_version = visitor
        .submit(&app.clinic_path(), &path, &[("action", "check_in")])
        .await;
    assert_eq!(no_version.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.state_of(pending.id).await, AppointmentState::Pending);
    assert!(app
        .store
        .appointment_events(pending.id)
        .await
        .unwrap()
        .is_empty());

    // An appointment of another clinic, or no appointment, through this clinic's URL.
    let nowhere = format!(
        "{}/appointments/{}",
        app.clinic_path(),
        uuid::Uuid::new_v4()
    );
    let reply = visitor
        .submit(
            &app.clinic_path(),
            &nowhere,
            &[("action", "check_in"), ("version", "0")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn acting_on_an_out_of_date_page_is_refused_with_nothing_changed() {
    let app = TestApp::sqlite().await;
    let visitor = app.signed_in(STAFF).await;
    let pending = app.first_in(AppointmentState::Pending);
    let old_page = visitor.get(&app.clinic_path()).await;
    let token = old_page.csrf();
    let version = pending.version.to_string();
    let path = app.action_path(pending.id);
    // Someone else marks the participant arrived; then this page's "Check in" (still allowed) is
    // pressed with the old version.
    let arrived = visitor
        .post(
            &path,
            &[
                ("csrf_token", &token),
                ("action", "mark_arrived"),
                ("version", &version),
            ],
        )
        .await;
    assert_eq!(arrived.status, StatusCode::SEE_OTHER);
    let stale = visitor
        .post(
            &path,
            &[
                ("csrf_token", &token),
                ("action", "check_in"),
                ("version", &version),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(
        stale.body.contains("changed since you opened this page"),
        "{}",
        stale.body
    );
    assert_eq!(app.state_of(pending.id).await, AppointmentState::Arrived);
    app.stop().await;
}

#[tokio::test]
async fn unknown_pages_and_ids_get_a_helpful_404() {
    let app = TestApp::sqlite().await;
    let visitor = app.signed_in(STAFF).await;
    for path in [
        "/nowhere".to_string(),
        "/clinics/not-an-id".to_string(),
        format!("/clinics/{}", uuid::Uuid::new_v4()),
    ] {
        let reply = visitor.get(&path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(reply.body.contains("Page not found"), "{path}");
        assert!(reply.body.contains("Go to the list of clinics"), "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn clinic_staff_cannot_reach_the_admin() {
    let app = TestApp::sqlite().await;
    let staff = app.signed_in(STAFF).await;
    for path in ["/admin/messages", "/admin/gateways", "/admin/gateways/new"] {
        let reply = staff.get(path).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert!(reply.body.contains("You do not have access"));
    }
    let before = app.store.gateways().await.unwrap().len();
    let reply = staff
        .submit(
            "/clinics",
            "/admin/gateways",
            &[("name", "Sneaky"), ("transport", "polling")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.gateways().await.unwrap().len(), before);
    assert!(
        !staff.get("/clinics").await.body.contains("/admin/messages"),
        "no admin links for staff"
    );
    let admin = app.signed_in(ADMIN).await;
    assert_eq!(admin.get("/admin/messages").await.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn the_admin_lists_messages_by_status_and_gateway_with_masked_nhs_numbers() {
    let app = TestApp::sqlite().await;
    let admin = app.signed_in(ADMIN).await;
    let appointment = app.sendable().clone();
    app.send(&admin, &appointment).await;
    let message = app.all_messages().await.remove(0);
    let participant = app
        .demo
        .participants
        .iter()
        .find(|p| p.id == message.participant_id)
        .unwrap();
    let list = admin.get("/admin/messages").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains(&participant.nhs_number.masked()));
    assert!(
        !list.body.contains(&participant.nhs_number.to_string()),
        "never the full number"
    );
    assert!(!list.body.contains(&participant.nhs_number.digits()));
    assert!(list.body.contains(&message.id.to_string()[..8]));
    // Summary columns only: the destination is on the message's own page.
    assert!(!list.body.contains(message.destination.as_str()));
    let detail = admin.get(&format!("/admin/messages/{}", message.id)).await;
    assert!(detail.body.contains(message.destination.as_str()));

    let pending = admin.get("/admin/messages?status=pending").await;
    assert!(pending.body.contains(&message.id.to_string()[..8]));
    let confirmed = admin.get("/admin/messages?status=confirmed").await;
    assert!(!confirmed
        .body
        .contains(&format!("/admin/messages/{}", message.id)));
    let by_gateway = admin
        .get(&format!("/admin/messages?gateway={}", app.demo.gateway.id))
        .await;
    assert!(by_gateway
        .body
        .contains(&format!("/admin/messages/{}", message.id)));
    let other_gateway = admin
        .get(&format!("/admin/messages?gateway={}", uuid::Uuid::new_v4()))
        .await;
    assert!(!other_gateway
        .body
        .contains(&format!("/admin/messages/{}", message.id)));

    let bad = admin.get("/admin/messages?status=lost&gateway=nope").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("Choose a status from the list"));
    assert!(bad.body.contains("Choose a gateway from the list"));
    app.stop().await;
}

/// How many message links a list page holds.
fn message_rows(body: &str) -> usize {
    body.matches(" (message details)").count()
}

#[tokio::test]
async fn the_admin_finds_a_message_by_nhs_or_accession_number_and_date_pages_through_the_rest_and_reads_its_history(
) {
    let app = TestApp::sqlite().await;
    let admin = app.signed_in(ADMIN).await;
    let appointment = app.sendable().clone();
    let participant = app.participant_of(&appointment).clone();
    app.send(&admin, &appointment).await;
    let sent = app.all_messages().await.remove(0);
    let sent_link = format!("/admin/messages/{}", sent.id);
    // Sixty older messages for someone else, three days ago.
    let other = app
        .demo
        .appointments
        .iter()
        .find(|a| a.participant_id != participant.id)
        .unwrap()
        .clone();
    let three_days_ago = now_utc() - chrono::TimeDelta::days(3);
    for i in 0..60 {
        let message = Message {
            participant_id: other.participant_id,
            appointment_id: other.id,
            ..app.demo.pending_message(
                MessageId::generate(),
                three_days_ago - chrono::TimeDelta::seconds(i),
            )
        };
        app.store.enqueue(&message).await.unwrap();
    }

    let first = admin.get("/admin/messages").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(message_rows(&first.body), 50);
    assert!(first.body.contains("Messages 1 to 50, newest first."));
    assert!(first.body.contains(&sent_link), "newest first");
    assert!(first.body.contains("href=\"/admin/messages?page=2\""));
    assert!(!first.body.contains("rel=\"prev\""));
    let second = admin.get("/admin/messages?page=2").await;
    assert_eq!(message_rows(&second.body), 11);
    assert!(second.body.contains("Messages 51 to 61, newest first."));
    assert!(second.body.contains("rel=\"prev\""));
    assert!(!second.body.contains("rel=\"next\""));

    let by_nhs = admin
        .get(&format!(
            "/admin/messages?nhs={}",
            participant.nhs_number.digits()
        ))
        .await;
    assert_eq!(by_nhs.status, StatusCode::OK);
    assert_eq!(message_rows(&by_nhs.body), 1);
    assert!(by_nhs.body.contains(&sent_link));
    // As the modality shows it, typed in lower case.
    let accession = screening_core::worklist::accession_number(appointment.id).to_lowercase();
    let by_accession = admin
        .get(&format!("/admin/messages?accession={accession}"))
        .await;
    assert_eq!(message_rows(&by_accession.body), 1);
    assert!(by_accession.body.contains(&sent_link));

    let today = screening_core::london::today(now_utc());
    let yesterday = today.pred_opt().unwrap();
    let from_today = admin.get(&format!("/admin/messages?from={today}")).await;
    assert_eq!(message_rows(&from_today.body), 1);
    let up_to_yesterday = admin.get(&format!("/admin/messages?to={yesterday}")).await;
    assert_eq!(message_rows(&up_to_yesterday.body), 50);
    assert!(!up_to_yesterday.body.contains(&sent_link));
    // The next page keeps the search.
    assert!(up_to_yesterday.body.contains(&format!(
        "href=\"/admin/messages?to={yesterday}&amp;page=2\""
    )));
    let rest = admin
        .get(&format!("/admin/messages?to={yesterday}&page=2"))
        .await;
    assert_eq!(message_rows(&rest.body), 10);

    let bad = admin
        .get("/admin/messages?nhs=123&accession=XX1&from=2026-13-01")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("Enter a whole NHS number"));
    assert!(bad
        .body
        .contains("Enter an accession number as the modality shows it"));
    assert!(bad.body.contains("Enter a date like"));
    assert_eq!(message_rows(&bad.body), 0);
    let bad_page = admin.get("/admin/messages?page=0").await;
    assert_eq!(bad_page.status, StatusCode::BAD_REQUEST);
    assert!(bad_page
        .body
        .contains("The page number must be a whole number from 1."));

    // The history: who sent it, when the gateway took it and when it confirmed.
    let gateway = app.demo.gateway.id;
    let taken = app
        .store
        .take_pending(
            gateway,
            now_utc(),
            now_utc() + chrono::TimeDelta::seconds(60),
            100,
        )
        .await
        .unwrap();
    assert!(taken.iter().any(|m| m.id == sent.id));
    app.store
        .confirm(gateway, sent.id, now_utc())
        .await
        .unwrap();
    let detail = admin.get(&sent_link).await;
    assert_eq!(detail.status, StatusCode::OK);
    let history = &detail.body[detail.body.find("<h2>History</h2>").unwrap()..];
    let created = history.find("Created").unwrap();
    let taken_at = history.find("Taken by the").unwrap();
    let confirmed = history.find("Confirmed by the").unwrap();
    assert!(created < taken_at && taken_at < confirmed, "oldest first");
    assert!(history.contains(&format!("by {}", ADMIN.0)));
    assert!(history.contains("attempt 1"));
    app.stop().await;
}

#[tokio::test]
async fn a_message_shows_its_payload_only_when_asked_and_a_failed_message_can_be_resent() {
    let app = TestApp::sqlite().await;
    let admin = app.signed_in(ADMIN).await;
    let appointment = app.sendable().clone();
    let participant = app.participant_of(&appointment).clone();
    app.send(&admin, &appointment).await;
    let original = app.all_messages().await.remove(0);
    let detail_path = format!("/admin/messages/{}", original.id);
    let detail = admin.get(&detail_path).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("nhsuk-summary-list"));
    // The payload (name, full NHS number) only on an explicit, recorded action.
    let pretty = |body: &str| {
        body.contains("&quot;resourceType&quot;: &quot;ServiceRequest&quot;")
            || body.contains("\"resourceType\": \"ServiceRequest\"")
    };
    assert!(!pretty(&detail.body));
    assert!(!detail.body.contains(&participant.last_name));
    assert!(!detail.body.contains(&participant.nhs_number.digits()));
    assert!(detail.body.contains("Show payload"));
    let forged = admin.post(&format!("{detail_path}/payload"), &[]).await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "no CSRF token, no payload"
    );
    assert!(app.store.admin_events(10).await.unwrap().is_empty());
    let shown = admin
        .submit(&detail_path, &format!("{detail_path}/payload"), &[])
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(pretty(&shown.body));
    let events = app.store.admin_events(10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, ADMIN.0);
    assert_eq!(events[0].action, "showed a message's payload");
    assert_eq!(events[0].subject, format!("message {}", original.id));
    let audit = admin.get("/admin/audit").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(
        audit.body.contains("showed a message&#x27;s payload")
            || audit.body.contains("showed a message's payload")
    );
    assert!(audit.body.contains(&format!("message {}", original.id)));
    let staff = app.signed_in(STAFF).await;
    assert_eq!(
        staff.get("/admin/audit").await.status,
        StatusCode::FORBIDDEN
    );
    assert!(
        !detail.body.contains("/resend\""),
        "only a failed message offers Resend"
    );
    let refused = admin
        .submit(&detail_path, &format!("{detail_path}/resend"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("Only a failed message can be resent"));
    assert_eq!(app.all_messages().await.len(), 1);

    let gateway = app.demo.gateway.id;
    app.store
        .take_pending(
            gateway,
            now_utc(),
            now_utc() + chrono::TimeDelta::seconds(60),
            10,
        )
        .await
        .unwrap();
    app.store
        .fail(
            gateway,
            original.id,
            now_utc(),
            "forward to destination: HTTP 503 from the RIS",
        )
        .await
        .unwrap();
    let failed = admin.get(&detail_path).await;
    assert!(failed
        .body
        .contains("forward to destination: HTTP 503 from the RIS"));
    assert!(failed.body.contains("/resend\""));
    let clinic = admin.get(&app.clinic_path()).await.body;
    assert!(clinic.contains("data-status=\"failed\""));
    assert!(
        clinic.contains("HTTP 503 from the RIS"),
        "the reason beside the appointment"
    );

    let resent = admin
        .submit(&detail_path, &format!("{detail_path}/resend"), &[])
        .await;
    assert_eq!(resent.status, StatusCode::SEE_OTHER, "{}", resent.body);
    let messages = app.all_messages().await;
    assert_eq!(messages.len(), 2);
    let new = messages.iter().find(|m| m.id != original.id).unwrap();
    assert_eq!(new.resend_of, Some(original.id));
    assert_eq!(new.destination, original.destination);
    assert_eq!(resent.location(), format!("/admin/messages/{}", new.id));
    let events = app.store.admin_events(10).await.unwrap();
    assert_eq!(events[0].action, "resent a failed message");
    assert_eq!(
        events[0].subject,
        format!("message {}, resent as {}", original.id, new.id)
    );
    // Resending the old one again is refused: a newer message exists.
    let again = admin
        .submit(&detail_path, &format!("{detail_path}/resend"), &[])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("A newer message was already sent"));
    assert_eq!(
        admin.get("/admin/messages/not-an-id").await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

/// The gateway form's fields for the Bradford relay gateway, with the key reference `key_ref`.
fn bradford_relay<'a>(setting: &'a str, key_ref: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", "Bradford gateway"),
        ("setting", setting),
        ("transport", "relay"),
        ("relay_namespace", "ws://127.0.0.1:9400"),
        ("relay_hybrid_connection", "bradford"),
        ("relay_key_name", "hub-send"),
        ("relay_key_ref", key_ref),
    ]
}

#[tokio::test]
async fn the_admin_sends_an_echo_and_sees_the_gateway_proven_by_its_answer() {
    let app = TestApp::sqlite().await;
    let admin = app.signed_in(ADMIN).await;
    let gateway = app.demo.gateway.id;
    let list = admin.get("/admin/gateways").await;
    assert!(list.body.contains("data-proof=\"not-checked\""));
    let echo_path = format!("/admin/gateways/{gateway}/echo");
    assert_eq!(
        admin.post(&echo_path, &[]).await.status,
        StatusCode::FORBIDDEN,
        "no CSRF token, no echo"
    );
    let sent = admin.submit("/admin/gateways", &echo_path, &[]).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    assert_eq!(sent.location(), "/admin/gateways");
    let waiting = admin.get("/admin/gateways").await;
    assert!(waiting.body.contains("An echo is on its way to the"));
    assert!(waiting.body.contains("data-proof=\"not-proven\""));
    let events = app.store.admin_events(10).await.unwrap();
    assert_eq!(events[0].action, "sent an echo to a gateway");

    // The gateway takes it over the hub API, like an order, and confirms it.
    let as_gateway = app.as_gateway().await;
    let taken = as_gateway.take().await;
    let echo = &taken["messages"][0];
    assert_eq!(echo["type"], "ECHO");
    assert_eq!(echo["destination"], "log:");
    let echo_id = echo["message_id"].as_str().unwrap();
    assert_eq!(as_gateway.confirm(echo_id).await, StatusCode::OK);
    let proven = admin.get("/admin/gateways").await;
    assert!(proven.body.contains("data-proof=\"proven\""));
    assert!(proven.body.contains("Proven working at "));
    assert!(proven.body.contains(" ms)"));
    let history = admin
        .get(&format!("/admin/gateways/{gateway}/echoes"))
        .await;
    assert_eq!(history.status, StatusCode::OK);
    assert!(history.body.contains("Proven (round trip "));
    assert!(
        history.body.contains(&format!(">{}<", ADMIN.0)),
        "who asked"
    );
    assert_eq!(
        admin
            .submit(
                "/admin/gateways",
                &format!("/admin/gateways/{}/echo", uuid::Uuid::new_v4()),
                &[]
            )
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn the_gateway_admin_creates_and_edits_gateways_and_shows_their_backlog() {
    let app = TestApp::sqlite().await;
    let admin = app.signed_in(ADMIN).await;
    let setting = app.demo.setting.id.to_string();
    let before = app.store.gateways().await.unwrap().len();
    let bad = admin
        .submit(
            "/admin/gateways/new",
            "/admin/gateways",
            &[
                ("name", ""),
                ("setting", &setting),
                ("transport", "relay"),
                ("relay_key_ref", "the-key-itself"),
                ("route_type", "FHIR"),
                ("route_destination", "ftp://nowhere"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    for text in [
        "Enter the gateway&#x27;s name",
        "Enter the relay namespace",
        "env:VARIABLE_NAME or file:/absolute/path",
        "nhsuk-error-summary",
    ] {
        assert!(
            bad.body.contains(text) || bad.body.contains(&text.replace("&#x27;", "'")),
            "{text}"
        );
    }
    assert_eq!(
        app.store.gateways().await.unwrap().len(),
        before,
        "nothing saved"
    );

    let created = admin
        .submit(
            "/admin/gateways/new",
            "/admin/gateways",
            &[
                ("name", "Bradford gateway"),
                ("setting", &setting),
                ("transport", "polling"),
                ("route_type", "FHIR"),
                (
                    "route_destination",
                    "https://ris.bradford.example.nhs.uk/fhir",
                ),
                ("route_type", ""),
                ("route_destination", ""),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let gateway = app
        .store
        .gateways()
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.name == "Bradford gateway")
        .unwrap();
    assert_eq!(
        created.location(),
        format!("/admin/gateways/{}", gateway.id)
    );
    assert_eq!(gateway.routes.len(), 1);
    assert_eq!(gateway.transport, Transport::Polling);

    let edit_path = format!("/admin/gateways/{}", gateway.id);
    let edited = admin
        .submit(
            &edit_path,
            &edit_path,
            &[
                bradford_relay(&setting, "env:SCREENING_SECRET_BRADFORD_SEND_KEY"),
                vec![
                    ("route_type", "FHIR"),
                    ("route_destination", "file:///var/spool/bradford"),
                    ("route_type", "WORKLIST"),
                    ("route_destination", "log:"),
                ],
            ]
            .concat(),
        )
        .await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER, "{}", edited.body);
    let gateway = app.store.gateway(gateway.id).await.unwrap();
    assert!(matches!(&gateway.transport, Transport::Relay(r) if r.hybrid_connection == "bradford"));
    assert_eq!(gateway.routes.len(), 2);
    // A key reference can name only where the hub keeps relay keys, never its other secrets.
    for (key_ref, says) in [
        ("env:DATABASE_URL", "start with SCREENING_SECRET_"),
        ("file:/etc/shadow", "secrets directory"),
    ] {
        let fenced = admin
            .submit(
                &edit_path,
                &edit_path,
                &[
                    bradford_relay(&setting, key_ref),
                    vec![("route_type", "FHIR"), ("route_destination", "log:")],
                ]
                .concat(),
            )
            .await;
        assert_eq!(fenced.status, StatusCode::BAD_REQUEST, "{key_ref}");
        assert!(fenced.body.contains(says), "{key_ref}: {}", fenced.body);
    }
    assert!(
        matches!(
            &app.store.gateway(gateway.id).await.unwrap().transport,
            Transport::Relay(r) if r.key_ref.to_string() == "env:SCREENING_SECRET_BRADFORD_SEND_KEY"
        ),
        "nothing changed"
    );
    let duplicate = admin
        .submit(
            &edit_path,
            &edit_path,
            &[
                ("name", "Bradford gateway"),
                ("setting", &setting),
                ("transport", "polling"),
                ("route_type", "FHIR"),
                ("route_destination", "log:"),
                ("route_type", "FHIR"),
                ("route_destination", "log:"),
            ],
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::BAD_REQUEST);
    assert!(duplicate.body.contains("There is already a route for FHIR"));

    // Backlog: two messages waiting for the demo gateway.
    for appointment in app
        .demo
        .appointments
        .iter()
        .filter(|a| a.state.after(AppointmentAction::SendToModality).is_some())
        .take(2)
    {
        app.send(&admin, appointment).await;
    }
    let list = admin.get("/admin/gateways").await;
    assert_eq!(list.status, StatusCode::OK);
    let row_start = list.body.find(&app.demo.gateway.name).unwrap();
    let row = &list.body[row_start..row_start + list.body[row_start..].find("</tr>").unwrap()];
    assert!(row.contains(">2<"), "two pending: {row}");
    assert!(row.contains("less than a minute"), "{row}");
    assert!(row.contains("Never"), "never seen: {row}");
    assert!(list
        .body
        .contains("Azure Relay (ws://127.0.0.1:9400 / bradford)"));
    assert_eq!(
        admin
            .get(&format!("/admin/gateways/{}", uuid::Uuid::new_v4()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // What was saved is on the audit page (refused forms are not).
    let actions: Vec<String> = app
        .store
        .admin_events(50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.actor == ADMIN.0)
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"added a gateway".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"changed a gateway".to_string()),
        "{actions:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_credential_is_shown_once_stored_hashed_and_accepted_by_the_hub_until_rotated() {
    let app = TestApp::sqlite().await;
    let admin = app.signed_in(ADMIN).await;
    let gateway = app.demo.gateway.id;
    let edit_path = format!("/admin/gateways/{gateway}");
    let issued = admin
        .submit(&edit_path, &format!("{edit_path}/credential"), &[])
        .await;
    assert_eq!(issued.status, StatusCode::OK);
    let start = issued.body.find("sgw_").expect("the credential is shown");
    let credential = issued.body[start..start + 68].to_string();
    let hash = app
        .store
        .gateway_credential_hash(gateway)
        .await
        .unwrap()
        .unwrap();
    assert!(verify_credential(&credential, &hash));
    assert_ne!(hash, credential, "stored only as a hash");
    assert!(
        !admin.get(&edit_path).await.body.contains(&credential),
        "shown once"
    );

    let poll = |credential: String| {
        let url = format!("{}/api/v1/gateways/{gateway}/messages?wait=0", app.base);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(credential)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        poll(credential.clone()).await,
        StatusCode::OK,
        "the hub is mounted and accepts it"
    );
    let rotated = admin
        .submit(&edit_path, &format!("{edit_path}/credential"), &[])
        .await;
    let start = rotated.body.find("sgw_").unwrap();
    let new_credential = rotated.body[start..start + 68].to_string();
    assert_ne!(new_credential, credential);
    assert_eq!(
        poll(credential).await,
        StatusCode::UNAUTHORIZED,
        "the old one stops working"
    );
    assert_eq!(poll(new_credential).await, StatusCode::OK);
    // Both issues are on the audit page, never the credential itself.
    let events = app.store.admin_events(10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.actor == ADMIN.0
        && e.action.starts_with("issued a gateway credential")
        && e.subject.contains(&gateway.to_string())));
    let audit = admin.get("/admin/audit").await.body;
    assert!(!audit.contains("sgw_"));
    app.stop().await;
}

#[tokio::test]
async fn the_live_stream_sends_every_status_then_each_change() {
    let app = TestApp::sqlite().await;
    let visitor = app.signed_in(STAFF).await;
    let appointment = app.sendable().clone();
    app.send(&visitor, &appointment).await;
    let anonymous = app
        .visitor()
        .get(&format!("{}/events", app.clinic_path()))
        .await;
    assert_eq!(
        anonymous.status,
        StatusCode::SEE_OTHER,
        "the stream needs a session too"
    );

    let mut stream = visitor
        .open_stream(&format!("{}/events", app.clinic_path()))
        .await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut received = String::new();
    read_until(&mut stream, &mut received, "\"status\":\"pending\"").await;
    let message = app.all_messages().await.remove(0);
    let gateway = app.demo.gateway.id;
    app.store
        .take_pending(
            gateway,
            now_utc(),
            now_utc() + chrono::TimeDelta::seconds(60),
            10,
        )
        .await
        .unwrap();
    app.store
        .confirm(gateway, message.id, now_utc())
        .await
        .unwrap();
    read_until(&mut stream, &mut received, "\"status\":\"confirmed\"").await;
    assert!(received.contains(&format!("\"appointment_id\":\"{}\"", appointment.id)));
    app.stop().await;
}

#[tokio::test]
async fn sending_to_the_modality_works_on_postgres_too() {
    let Some(app) = TestApp::on(Backend::Postgres).await else {
        return;
    };
    let visitor = app.signed_in(STAFF).await;
    let appointment = app.sendable().clone();
    let page = visitor.get(&app.clinic_path()).await;
    assert_eq!(page.status, StatusCode::OK);
    let token = csrf_in(&page.body);
    let reply = visitor
        .post(
            &app.action_path(appointment.id),
            &[
                ("csrf_token", token.as_str()),
                ("action", "send_to_modality"),
                ("version", &appointment.version.to_string()),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(app.all_messages().await.len(), 1);
    let clinics = visitor.get("/clinics").await;
    assert!(clinics.body.contains("Sent to modality: 1"));
    app.stop().await;
}

#[tokio::test]
async fn the_status_server_function_answers_signed_in_staff_only() {
    let app = TestApp::sqlite().await;
    let visitor = app.signed_in(STAFF).await;
    let appointment = app.sendable().clone();
    app.send(&visitor, &appointment).await;
    let path = format!("/api/web/clinic-statuses?clinic_id={}", app.demo.clinic.id);
    let reply = visitor.get(&path).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let views: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let views = views.as_array().unwrap();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0]["appointment_id"], appointment.id.to_string());
    assert_eq!(views[0]["status"], "pending");
    assert_eq!(app.visitor().get(&path).await.status, StatusCode::SEE_OTHER);
    let bad = visitor.get("/api/web/clinic-statuses?clinic_id=nope").await;
    assert!(bad.status.is_client_error() || bad.status.is_server_error());
    app.stop().await;
}

/// The demo appointment that can be marked arrived.
fn arrivable(app: &TestApp) -> Appointment {
    app.demo
        .appointments
        .iter()
        .find(|a| a.state.after(AppointmentAction::MarkArrived).is_some())
        .expect("a demo appointment that can arrive")
        .clone()
}

#[tokio::test]
async fn the_clinic_table_is_read_once_per_change_and_every_page_carries_its_own_token() {
    // Kept for ten minutes unless a change is heard, so only the announcements refresh it here.
    let config = WebConfig {
        clinic_table_max_age: Duration::from_secs(600),
        ..WebConfig::default()
    };
    let app = TestApp::with_config(Backend::Sqlite, config)
        .await
        .expect("SQLite");
    let tables = app.state.clinic_tables.clone();
    let (staff, admin) = (app.signed_in(STAFF).await, app.signed_in(ADMIN).await);
    let path = app.clinic_path();
    let readings = tables.readings();
    let first = staff.get(&path).await.body;
    let second = staff.get(&path).await.body;
    let admins = admin.get(&path).await.body;
    assert_eq!(tables.readings() - readings, 1, "three pages, one reading");
    let table =
        |page: &str| page[page.find("<tbody").unwrap()..page.find("</tbody>").unwrap()].to_string();
    assert!(table(&first) == table(&second), "the same table twice");
    assert_ne!(csrf_in(&first), csrf_in(&admins));
    for page in [&first, &admins] {
        let token = csrf_in(page);
        let forms = page.matches("name=\"csrf_token\"").count();
        assert!(forms > app.demo.appointments.len(), "a form per row");
        assert_eq!(
            page.matches(&format!("name=\"csrf_token\" value=\"{token}\""))
                .count(),
            forms,
            "every form carries this session's own token"
        );
    }
    // A row's form works with the token a served-from-memory page gave.
    let arriving = arrivable(&app);
    let reply = admin
        .post(
            &app.action_path(arriving.id),
            &[
                ("csrf_token", csrf_in(&admins).as_str()),
                ("action", "mark_arrived"),
                ("version", &arriving.version.to_string()),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = admin.get(&path).await.body;
    assert!(page.contains("nhsuk-notification-banner--success"));
    assert!(row_of(&page, arriving.id).contains("data-state=\"arrived\""));
    let page = staff.get(&path).await.body;
    assert!(row_of(&page, arriving.id).contains("data-state=\"arrived\""));

    // Changes made outside these pages show on the next load, with no waiting: an appointment
    // checked in, then a message sent, taken and confirmed by the gateway.
    act_through(app.store.as_ref(), arriving.id, AppointmentAction::CheckIn).await;
    let page = staff.get(&path).await.body;
    assert!(row_of(&page, arriving.id).contains("data-state=\"checked_in\""));
    act_through(
        app.store.as_ref(),
        arriving.id,
        AppointmentAction::SendToModality,
    )
    .await;
    let page = staff.get(&path).await.body;
    assert!(row_of(&page, arriving.id).contains("data-status=\"pending\""));
    let gateway = app.as_gateway().await;
    let taken = gateway.take().await;
    let message_id = taken["messages"][0]["message_id"]
        .as_str()
        .expect("a message");
    let page = staff.get(&path).await.body;
    assert!(row_of(&page, arriving.id).contains("data-status=\"delivered\""));
    assert_eq!(gateway.confirm(message_id).await, reqwest::StatusCode::OK);
    let page = staff.get(&path).await.body;
    assert!(row_of(&page, arriving.id).contains("data-status=\"confirmed\""));
    // And nothing else makes it read again.
    let readings = tables.readings();
    staff.get(&path).await;
    admin.get(&path).await;
    assert_eq!(tables.readings(), readings);
    app.stop().await;
}

#[tokio::test]
async fn a_clinic_page_kept_by_one_instance_shows_a_change_made_through_another() {
    let config = WebConfig {
        clinic_table_max_age: Duration::from_secs(600),
        ..WebConfig::default()
    };
    let Some(app) = TestApp::with_config(Backend::Postgres, config).await else {
        return;
    };
    let other = app.another_instance().await;
    let staff = app.signed_in(STAFF).await;
    let path = app.clinic_path();
    let arriving = arrivable(&app);
    let page = staff.get(&path).await.body;
    assert!(
        row_of(&page, arriving.id).contains(&format!("data-state=\"{}\"", arriving.state.code()))
    );
    // Through the other instance's store: this one hears of it only by NOTIFY.
    act_through(
        other.store.as_ref(),
        arriving.id,
        AppointmentAction::MarkArrived,
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = staff.get(&path).await.body;
        if row_of(&page, arriving.id).contains("data-state=\"arrived\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page still shows the appointment as it was"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    other.stop().await;
    app.stop().await;
}
