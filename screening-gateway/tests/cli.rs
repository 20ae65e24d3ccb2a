//! The `screening-gateway` binary: help, configuration errors, and a clean stop on SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_screening-gateway");

#[test]
fn help_documents_every_setting() {
    let output = Command::new(BINARY)
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for setting in [
        "--hub-url",
        "TOML: hub_url",
        "[transport] mode",
        "SCREENING_RELAY_KEY_FILE",
        "SCREENING_HUB_URL",
        "SCREENING_GATEWAY_ID",
        "SCREENING_GATEWAY_CREDENTIAL_FILE",
        "SCREENING_TRANSPORT",
        "SCREENING_MAX_FORWARD_ATTEMPTS",
        "SCREENING_INBOX_PATH",
    ] {
        assert!(text.contains(setting), "{setting} missing from --help");
    }
}

#[test]
fn a_missing_setting_is_a_clear_error_and_a_non_zero_exit() {
    let output = Command::new(BINARY)
        .arg("run")
        .env_clear()
        .env(
            "SCREENING_GATEWAY_ID",
            "67e55044-10b1-426f-9247-bb680e5fe0c8",
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8(output.stderr).unwrap();
    assert!(text.contains("hub_url is missing"), "{text}");
}

#[test]
fn an_unknown_command_is_refused() {
    let output = Command::new(BINARY).arg("serve").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8(output.stderr)
        .unwrap()
        .contains("unrecognized subcommand 'serve'"));
}

#[test]
fn a_secret_on_the_command_line_is_refused() {
    let output = Command::new(BINARY)
        .args(["run", "--credential", "sgw_visible_in_ps"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8(output.stderr).unwrap();
    assert!(text.contains("SCREENING_GATEWAY_CREDENTIAL"), "{text}");
    assert!(!text.contains("sgw_visible_in_ps"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_agent_cleanly() {
    let h = common::Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(BINARY)
        .arg("run")
        .env("SCREENING_HUB_URL", &h.hub_url)
        .env("SCREENING_GATEWAY_ID", h.demo.gateway.id.to_string())
        .env("SCREENING_GATEWAY_CREDENTIAL", &h.credential)
        .env("SCREENING_INBOX_PATH", dir.path().join("inbox.db"))
        .env("SCREENING_LONG_POLL_WAIT_SECONDS", "30")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it has said hello to the hub (its first heartbeat); then it is long-polling.
    let mut seen = false;
    for _ in 0..100 {
        seen = h
            .store
            .gateway_last_seen(h.demo.gateway.id)
            .await
            .unwrap()
            .0
            .is_some();
        if seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the agent never sent a heartbeat");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_relay_command_refuses_a_malformed_rule_without_echoing_the_key() {
    let output = Command::new(BINARY)
        .args([
            "relay",
            "--hybrid-connection",
            "leeds",
            "--rule",
            "gw:listen+fly:SuperSecretKey",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8(output.stderr).unwrap();
    assert!(text.contains("NAME:RIGHTS:KEY"), "{text}");
    assert!(!text.contains("SuperSecretKey"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_command_serves_the_protocol() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(BINARY)
        .args([
            "relay",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--hybrid-connection",
            "leeds",
        ])
        .args([
            "--rule",
            "gw:listen:bGlzdGVu",
            "--rule",
            "hub:send:c2VuZA==",
        ])
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let endpoint = |key_name: &str, key: &str| screening_gateway::relay::client::RelayEndpoint {
        base_url: format!("ws://127.0.0.1:{port}"),
        hybrid_connection: "leeds".into(),
        key_name: key_name.into(),
        key: key.into(),
        token_lifetime: Duration::from_secs(600),
    };
    let message = screening_core::wire::GatewayMessage {
        message_id: screening_core::ids::MessageId::generate(),
        message_type: screening_core::message::MessageType::fhir(),
        payload: serde_json::json!({}),
        destination: screening_core::gateway::Destination::parse("log:").unwrap(),
        signature: None,
    };
    // Until it is up the sender cannot connect; once up, with no listener, it answers 404.
    let mut answer = None;
    for _ in 0..100 {
        match screening_gateway::relay::client::send_message(
            &endpoint("hub", "c2VuZA=="),
            &message,
            Duration::from_secs(2),
        )
        .await
        {
            Err(screening_gateway::relay::client::RelayError::Connect(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => {
                answer = Some(other);
                break;
            }
        }
    }
    assert!(
        matches!(
            answer,
            Some(Err(screening_gateway::relay::client::RelayError::NotFound(
                _
            )))
        ),
        "{answer:?}"
    );
    child.kill().await.unwrap();
}

#[test]
fn signing_key_generate_writes_a_private_key_only_its_owner_reads_and_its_public_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("hub.pem");
    let output = Command::new(BINARY)
        .args(["signing-key", "generate", "--out"])
        .arg(&private)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8(output.stdout).unwrap();
    assert!(said.starts_with("key id ed25519:"), "{said}");
    let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let public = std::fs::read_to_string(dir.path().join("hub.pem.pub")).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");

    let shown = Command::new(BINARY)
        .args(["signing-key", "public", "--key"])
        .arg(&private)
        .output()
        .unwrap();
    assert!(shown.status.success());
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert!(shown.ends_with(&public), "{shown}");
    assert!(shown.contains(said.lines().next().unwrap().trim_start_matches("key id ")));

    let again = Command::new(BINARY)
        .args(["signing-key", "generate", "--out"])
        .arg(&private)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8(again.stderr).unwrap().contains("exists"));
}

#[test]
fn a_hub_will_not_start_with_a_signing_key_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("hub.pem");
    std::fs::write(
        &private,
        screening_gateway::signing::generate_signing_key().to_pem(),
    )
    .unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = Command::new(BINARY)
        .args(["hub", "--listen", "127.0.0.1:0", "--database"])
        .arg(format!("sqlite://{}", dir.path().join("hub.db").display()))
        .arg("--signing-key")
        .arg(&private)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8(output.stderr).unwrap();
    assert!(
        text.contains("--signing-key: signing key") && text.contains("readable by others"),
        "{text}"
    );
}
