//! The clinician's flow in headless Chromium, with JavaScript and without: sign in, open the
//! clinic, press "Send to modality", see the status become confirmed (live with JavaScript, on
//! reload without), find the message in the admin; every page checked with axe-core (WCAG 2.2 AA).
//! A third run blocks the event stream, as a buffering proxy would: the page must fall back to
//! polling the status server function and still show the confirmation without a reload.
//!
//! The browser is driven by `tools/browser-tests/flow.mjs` (playwright-core and Debian's
//! `/usr/bin/chromium`); a task here plays the gateway through the hub's real HTTP API.
//! Needs the browser bundle (`cargo xtask build-web`), Node with `npm ci` done in
//! `tools/browser-tests`, and Chromium: `scripts/test` and `.ci/run` provide them. Without them
//! the test skips with a notice, except under `CI=true`, where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{peers_present, TestApp, ADMIN};
use screening_core::prelude::*;
use screening_gateway::auth::{generate_credential, hash_credential};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What is missing to run a browser, if anything.
fn missing_requirements() -> Vec<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let tools = workspace().join("tools/browser-tests");
    let mut missing = Vec::new();
    if !Path::new(&chromium).exists() {
        missing.push(format!("Chromium at {chromium} (apt-get install chromium)"));
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        missing.push("Node.js".into());
    }
    if !tools.join("node_modules/playwright-core").exists() {
        missing.push("playwright-core (npm ci --prefix tools/browser-tests)".into());
    }
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("site/pkg/screening_web_bg.wasm");
    if !bundle.exists() {
        missing.push("the browser bundle (cargo xtask build-web)".into());
    }
    missing
}

/// Takes each message through the hub's HTTP API and confirms it a moment later, as a gateway.
async fn play_gateway(base: String, gateway: GatewayId, credential: String) {
    let client = reqwest::Client::new();
    loop {
        let Ok(response) = client
            .get(format!("{base}/api/v1/gateways/{gateway}/messages?wait=5"))
            .bearer_auth(&credential)
            .send()
            .await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        for message in body["messages"].as_array().cloned().unwrap_or_default() {
            let id = message["message_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            // Long enough for "delivered" to be seen before "confirmed".
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = client
                .post(format!(
                    "{base}/api/v1/gateways/{gateway}/messages/{id}/confirmation"
                ))
                .bearer_auth(&credential)
                .send()
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_sends_a_participant_and_sees_it_confirmed_in_chromium_with_and_without_javascript(
) {
    if !peers_present("the browser test", &missing_requirements()) {
        return;
    }
    let app = TestApp::sqlite().await;
    let credential = generate_credential();
    app.store
        .set_gateway_credential_hash(app.demo.gateway.id, &hash_credential(&credential))
        .await
        .unwrap();
    let gateway = tokio::spawn(play_gateway(
        app.base.clone(),
        app.demo.gateway.id,
        credential,
    ));
    let shots = std::env::var("SCREENING_SCREENSHOTS").unwrap_or_default();
    for mode in ["js", "js-poll", "nojs"] {
        let run = tokio::process::Command::new("node")
            .arg("flow.mjs")
            .args([app.base.as_str(), ADMIN.0, ADMIN.1, mode, shots.as_str()])
            .current_dir(workspace().join("tools/browser-tests"))
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(180), run)
            .await
            .unwrap_or_else(|_| panic!("the {mode} browser run took over 3 minutes"))
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("{stdout}");
        assert!(
            output.status.success() && stdout.contains(&format!("BROWSER OK {mode}")),
            "browser flow ({mode}) failed:\n{stdout}\n{stderr}"
        );
    }
    gateway.abort();
    let messages = app.all_messages().await;
    assert_eq!(messages.len(), 3, "one message per run");
    assert!(messages
        .iter()
        .all(|m| m.status() == MessageStatus::Confirmed));
    app.stop().await;
}
