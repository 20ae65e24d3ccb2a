//! The independent peers of the worklist tests, run as a modality would: DCMTK's `findscu`
//! (Debian `dcmtk`) and pynetdicom's MPPS (`tools/mpps-peer`, a venv that `scripts/test` makes).
//! A peer that is missing makes a test skip with a notice, except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// A peer is missing: the test skips with a notice, except under `CI=true`, where it fails.
pub fn missing(text: &str) {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{text}");
    }
    eprintln!("NOTICE: skipped, {text}");
}

/// Whether DCMTK is installed (see the module's note on missing peers).
pub fn dcmtk_present() -> bool {
    let present = std::process::Command::new("findscu")
        .arg("--version")
        .output()
        .is_ok();
    if !present {
        missing("DCMTK (findscu, echoscu) is not installed: apt-get install dcmtk");
    }
    present
}

/// Runs findscu -W with `keys` in a fresh folder; returns the responses it wrote, in order.
pub async fn findscu(port: u16, keys: &[&str]) -> Vec<dicom_object::DefaultDicomObject> {
    findscu_with(port, &[], keys).await.0
}

/// Runs findscu -W with extra `options` and `keys`; returns the responses it wrote, in order, and
/// what it printed.
pub async fn findscu_with(
    port: u16,
    options: &[&str],
    keys: &[&str],
) -> (Vec<dicom_object::DefaultDicomObject>, String) {
    let out = tempfile::tempdir().unwrap();
    let mut command = Command::new("findscu");
    command
        .current_dir(out.path())
        .args(["-W", "-X", "-aet", "MAMMO1", "-aec", "SCREENING_MWL"])
        .args(options);
    for key in keys {
        command.args(["-k", key]);
    }
    let output = command
        .args(["127.0.0.1", &port.to_string()])
        .output()
        .await
        .expect("findscu runs");
    assert!(
        output.status.success(),
        "findscu failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut files: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    let found = files
        .iter()
        .map(|path| dicom_object::open_file(path).unwrap())
        .collect();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (found, printed)
}

/// The keys a mammography machine asks for in its morning query.
pub const MODALITY_KEYS: &[&str] = &[
    "(0040,0100)[0].Modality=MG",
    "(0040,0100)[0].ScheduledProcedureStepStartTime",
    "(0040,0100)[0].ScheduledStationAETitle",
    "(0040,0100)[0].ScheduledProcedureStepID",
    "(0040,0100)[0].ScheduledProcedureStepDescription",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyInstanceUID",
    "RequestedProcedureID",
    "ReferringPhysicianName",
];

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The MPPS peer's Python, when installed (see the module's note on missing peers).
pub fn mpps_peer() -> Option<PathBuf> {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/mpps-peer");
    let python = tools.join(".venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    let text = format!(
        "pynetdicom is not installed: python3 -m venv {0}/.venv && {0}/.venv/bin/pip install -r {0}/requirements.txt",
        tools.display()
    );
    missing(&text);
    None
}

/// Runs the steps in one association; the status answered to each (None: no response).
pub async fn mpps(python: &Path, port: u16, steps: serde_json::Value) -> Vec<Option<u16>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/mpps-peer/mpps.py");
    let output = Command::new(python)
        .arg(script)
        .args(["127.0.0.1", &port.to_string(), "SCREENING_MWL"])
        .arg(steps.to_string())
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the MPPS peer failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| {
            let answer: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(comment) = answer["comment"].as_str() {
                eprintln!("{}: {comment}", answer["op"]);
            }
            answer["status"].as_u64().map(|code| code as u16)
        })
        .collect()
}

/// Checks Prometheus text with `promtool check metrics` (Debian `prometheus`, the independent
/// checker); a missing promtool is [`missing`].
pub fn promtool_check(text: &str) {
    let present = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok();
    if !present {
        missing("the promtool check: promtool is not installed (apt-get install prometheus)");
        return;
    }
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("promtool's input")
        .write_all(text.as_bytes())
        .expect("promtool reads the text");
    let output = child.wait_with_output().expect("promtool ends");
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
