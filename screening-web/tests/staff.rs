//! Staff accounts in the app: admins add, disable, re-enable, promote and reset passwords; each
//! change takes effect at once (a disabled account's open session ends), is audited, and an admin
//! cannot lock themselves out. Clinic staff cannot reach the page.

mod common;

use common::{TestApp, ADMIN, STAFF};
use reqwest::StatusCode;

const NEW: (&str, &str) = ("new.radiographer", "radiographer-pass-1");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_staff_accounts_and_each_change_takes_effect_at_once() {
    let app = TestApp::sqlite().await;
    let admin = app.signed_in(ADMIN).await;
    let staff = app.signed_in(STAFF).await;
    assert_eq!(
        staff.get("/admin/staff").await.status,
        StatusCode::FORBIDDEN
    );
    let change = async |username: &str, action: &str| {
        admin
            .submit(
                "/admin/staff",
                &format!("/admin/staff/{username}"),
                &[("action", action)],
            )
            .await
    };

    // The admin's form for a new account for Nia Jones, with `password`.
    let add_nia = async |password: &str| {
        admin
            .submit(
                "/admin/staff",
                "/admin/staff",
                &[
                    ("username", NEW.0),
                    ("display_name", "Nia Jones"),
                    ("role", "staff"),
                    ("password", password),
                ],
            )
            .await
    };

    // Refused: a short password, a bad username; nothing is saved.
    let short = add_nia("short").await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(
        short.body.contains("at least 12 characters"),
        "{}",
        short.body
    );
    assert!(short.body.contains("nhsuk-error-summary"));
    assert_eq!(
        app.visitor()
            .sign_in(NEW.0, "short", "/clinics")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let added = add_nia(NEW.1).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let again = admin
        .submit(
            "/admin/staff",
            "/admin/staff",
            &[
                ("username", NEW.0),
                ("role", "admin"),
                ("password", "another-password-1"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("already has an account"));
    let newcomer = app.signed_in(NEW).await;
    assert_eq!(newcomer.get("/clinics").await.status, StatusCode::OK);
    assert_eq!(
        newcomer.get("/admin/messages").await.status,
        StatusCode::FORBIDDEN
    );
    let listed = admin.get("/admin/staff").await.body;
    assert!(listed.contains("Nia Jones"));

    // Disabled: the open session ends, and signing in fails.
    assert_eq!(change(NEW.0, "disable").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        newcomer.get("/clinics").await.status,
        StatusCode::SEE_OTHER,
        "sent to sign in"
    );
    assert_eq!(
        app.visitor().sign_in(NEW.0, NEW.1, "/clinics").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(admin.get("/admin/staff").await.body.contains("Disabled"));

    // Enabled and promoted: in, with the admin pages.
    assert_eq!(change(NEW.0, "enable").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        change(NEW.0, "make_admin").await.status,
        StatusCode::SEE_OTHER
    );
    let promoted = app.signed_in(NEW).await;
    assert_eq!(promoted.get("/admin/messages").await.status, StatusCode::OK);

    // A new password: the old one fails, the new one works, and the open session ended.
    let reset = admin
        .submit(
            "/admin/staff",
            "/admin/staff/reset-password",
            &[
                ("reset-username", NEW.0),
                ("reset-password", "a-brand-new-pass-2"),
            ],
        )
        .await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER, "{}", reset.body);
    assert_eq!(promoted.get("/clinics").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.visitor().sign_in(NEW.0, NEW.1, "/clinics").await.status,
        StatusCode::UNAUTHORIZED
    );
    app.signed_in((NEW.0, "a-brand-new-pass-2")).await;
    let unknown = admin
        .submit(
            "/admin/staff",
            "/admin/staff/reset-password",
            &[
                ("reset-username", "nobody.here"),
                ("reset-password", "a-brand-new-pass-2"),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown
        .body
        .contains("No account has the username nobody.here"));

    // No lock-out: an admin cannot disable or demote themselves.
    for action in ["disable", "make_staff"] {
        let refused = change(ADMIN.0, action).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{action}");
        assert!(refused.body.contains("cannot disable your own account"));
    }
    assert_eq!(admin.get("/admin/messages").await.status, StatusCode::OK);
    let unknown_action = change(NEW.0, "delete").await;
    assert_eq!(unknown_action.status, StatusCode::BAD_REQUEST);

    // Every change is on the audit page, and no password is anywhere in it.
    let audit = admin.get("/admin/audit").await.body;
    for action in [
        "added a staff account",
        "disabled a staff account",
        "enabled a staff account",
        "changed a staff account's role",
        "reset a staff account's password",
    ] {
        let escaped = action.replace('\'', "&#x27;");
        assert!(
            audit.contains(action) || audit.contains(&escaped),
            "{action} missing from the audit page"
        );
    }
    assert!(!audit.contains(NEW.1) && !audit.contains("a-brand-new-pass-2"));
    app.stop().await;
}
