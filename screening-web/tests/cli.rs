//! The `screening-web` binary: help, clear errors with a non-zero exit, adding accounts, and
//! serving with the first admin from the environment.

mod common;

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
        "--demo",
        "--drain-seconds",
        "--log-format",
        "RUST_LOG",
        "add-user",
        "SCREENING_ADMIN_PASSWORD",
    ] {
        assert!(text.contains(option), "{option} missing from --help");
    }
}

#[test]
fn a_bad_argument_is_a_clear_error_with_exit_code_2() {
    for (args, expected) in [
        (vec!["--frobnicate"], "unexpected argument '--frobnicate'"),
        (
            vec!["--port", "eighty"],
            "invalid value 'eighty' for '--port <PORT>'",
        ),
        (vec!["--log", "info,[[["], "the log filter"),
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
fn the_account_verbs_disable_enable_promote_reset_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("web.db").display());
    let run = |args: &[&str]| {
        let output = binary()
            .args(args)
            .args(["--database", &database])
            .env("SCREENING_USER_PASSWORD", "a-long-enough-password")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).to_string(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };
    let (code, _, stderr) = run(&["add-user", "--username", "ward.clerk", "--role", "staff"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, _) = run(&["disable-user", "--username", "ward.clerk"]);
    assert_eq!((code, stdout.trim()), (Some(0), "disabled ward.clerk"));
    let (_, listed, _) = run(&["list-users"]);
    assert!(listed.contains("ward.clerk\tstaff\tdisabled"), "{listed}");
    let (code, _, _) = run(&["enable-user", "--username", "ward.clerk"]);
    assert_eq!(code, Some(0));
    let (code, _, _) = run(&["set-role", "--username", "ward.clerk", "--role", "admin"]);
    assert_eq!(code, Some(0));
    let (code, _, stderr) = run(&["reset-password", "--username", "ward.clerk"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (_, listed, _) = run(&["list-users"]);
    assert!(listed.contains("ward.clerk\tadmin\tactive"), "{listed}");
    // An unknown account is a clear error and a non-zero exit.
    let (code, _, stderr) = run(&["disable-user", "--username", "nobody.here"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("no account has the username nobody.here"),
        "{stderr}"
    );
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
    assert!(String::from_utf8_lossy(&output.stderr).contains("created the first admin"));

    let short = binary()
        .args(["--database", &database, "--listen", "127.0.0.1:0"])
        .env("SCREENING_ADMIN_USERNAME", "second.admin")
        .env("SCREENING_ADMIN_PASSWORD", "short")
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
}

/// The server's URL, read from its first line of standard output.
fn served_url(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("Screening web app: ")
        .unwrap_or_else(|| panic!("{line}"))
        .trim_end_matches('/')
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_the_drain_time_with_a_clinic_page_open() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("web.db").display());
    let mut child = binary()
        .args(["--database", &database, "--listen", "127.0.0.1:0", "--demo"])
        .args(["--drain-seconds", "3"])
        .env("SCREENING_ADMIN_PASSWORD", "first-admin-password")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = served_url(&mut child);
    let visitor = common::Visitor {
        base: base.clone(),
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    let signed_in = visitor
        .sign_in("admin", "first-admin-password", "/clinics")
        .await;
    assert_eq!(signed_in.status, reqwest::StatusCode::SEE_OTHER);
    let clinics = visitor.get("/clinics").await.body;
    let clinic = clinics
        .split("href=\"/clinics/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the demo clinic is listed")
        .to_string();
    let stream = visitor
        .client
        .get(format!("{base}/clinics/{clinic}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), reqwest::StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    // Nothing has been sent yet, so the stream stays open with nothing to say.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = std::time::Instant::now();
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stopped after {:?}",
        started.elapsed()
    );
    drop(stream);
}
