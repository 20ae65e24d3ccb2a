//! The `screening-web` binary: help, clear errors with a non-zero exit, adding accounts, and
//! serving with the first admin from the environment.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_screening-web"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("PORT")
        .env_remove("SCREENING_ADMIN_PASSWORD")
        .env_remove("SCREENING_USER_PASSWORD");
    command
}

#[test]
fn help_lists_every_option_and_exits_0() {
    let output = binary().arg("--help").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--database",
        "--listen",
        "--port",
        "--public-url",
        "--no-demo",
        "add-user",
        "SCREENING_ADMIN_PASSWORD",
    ] {
        assert!(text.contains(option), "{option} missing from --help");
    }
}

#[test]
fn a_bad_argument_is_a_clear_error_with_exit_code_2() {
    for (args, expected) in [
        (vec!["--frobnicate"], "unknown argument"),
        (vec!["--port", "eighty"], "not HOST:PORT"),
        (
            vec!["add-user", "--username", "x y z", "--role", "staff"],
            "--username",
        ),
    ] {
        let output = binary().args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn add_user_saves_an_account_and_refuses_a_short_password() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("web.db").display());
    let add = |password: &str| {
        let mut child = binary()
            .args([
                "add-user",
                "--database",
                &database,
                "--username",
                "Clinic.Lead",
                "--role",
                "admin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let short = add("short");
    assert_eq!(short.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    let saved = add("a-long-enough-password");
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    assert!(String::from_utf8_lossy(&saved.stdout).contains("saved clinic.lead (admin)"));
}

#[test]
fn serving_with_an_admin_password_creates_the_admin_and_prints_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("web.db").display());
    let mut child = binary()
        .args(["--database", &database, "--listen", "127.0.0.1:0"])
        .env("SCREENING_ADMIN_PASSWORD", "first-admin-password")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = sender.send(line);
        }
    });
    let line = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the server prints its URL");
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        line.starts_with("Screening web app: http://127.0.0.1:"),
        "{line}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("created admin admin"));

    let short = binary()
        .args(["--database", &database, "--listen", "127.0.0.1:0"])
        .env("SCREENING_ADMIN_USERNAME", "second.admin")
        .env("SCREENING_ADMIN_PASSWORD", "short")
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
}
