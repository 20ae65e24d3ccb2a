//! Security headers on every kind of response, and a CSP nonce that is new each time and is the
//! one the page's hydration script and style carry. (The browser test proves the live island
//! still hydrates under this policy.)

mod common;

use common::{TestApp, ADMIN};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

/// The nonce the CSP names; the header must be there with the whole policy.
fn checked(what: &str, headers: &HeaderMap) -> String {
    let policy = headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"))
        .to_str()
        .unwrap()
        .to_string();
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "'wasm-unsafe-eval'",
    ] {
        assert!(policy.contains(part), "{what}: {policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{what}: {policy}");
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
    ] {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{what}: {name}"
        );
    }
    assert!(
        headers.get("strict-transport-security").is_none(),
        "{what}: no HSTS over plain http"
    );
    policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("{what}: no nonce in {policy}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers_and_pages_their_own_nonce() {
    let app = TestApp::sqlite().await;
    let visitor = app.visitor();
    let page = visitor.get("/sign-in").await;
    assert_eq!(page.status, StatusCode::OK);
    let nonce = checked("page", &page.headers);
    assert!(
        page.body
            .contains(&format!("<script type=\"module\" nonce=\"{nonce}\"")),
        "the hydration script carries the nonce"
    );
    assert!(page.body.contains(&format!("<style nonce=\"{nonce}\">")));
    assert!(!page.body.contains(" style=\""), "no style attributes");
    let again = visitor.get("/sign-in").await;
    assert_ne!(
        checked("page again", &again.headers),
        nonce,
        "new each time"
    );

    let redirect = visitor.get("/clinics").await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    checked("redirect", &redirect.headers);
    let asset = visitor.get("/assets/nhsuk-frontend.min.css").await;
    assert_eq!(asset.status, StatusCode::OK);
    checked("static asset", &asset.headers);
    let missing = visitor.get("/no-such-page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    checked("404", &missing.headers);
    let health = visitor.get("/healthz").await;
    checked("health", &health.headers);
    let hub = reqwest::get(format!(
        "{}/api/v1/gateways/{}/messages",
        app.base, app.demo.gateway.id
    ))
    .await
    .unwrap();
    assert_eq!(hub.status(), StatusCode::UNAUTHORIZED);
    checked("hub API", hub.headers());

    // The live event stream: its headers arrive before any event.
    let admin = app.signed_in(ADMIN).await;
    let page = admin.get(&app.clinic_path()).await;
    checked("clinic page", &page.headers);
    let stream = admin
        .open_stream(&format!("{}/events", app.clinic_path()))
        .await;
    assert_eq!(stream.status(), StatusCode::OK);
    checked("event stream", stream.headers());
    drop(stream);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_sent_when_served_over_https() {
    let app = TestApp::sqlite().await;
    let response = app
        .visitor()
        .client
        .get(format!("{}/sign-in", app.base))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000; includeSubDomains")
    );
    app.stop().await;
}
