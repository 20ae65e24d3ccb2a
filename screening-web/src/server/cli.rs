//! The `screening-web` command: serve the app, or add a staff account.

use std::net::SocketAddr;
use std::sync::Arc;

use screening_core::prelude::*;
use screening_gateway::hub::{Hub, HubConfig};
use screening_gateway::relay::dispatcher::{spawn_dispatchers, DispatcherConfig};
use screening_store::{now_utc, ScreeningStore};

use super::auth::save_account;
use super::{router, AppState, WebConfig};

/// `--help`.
pub const HELP: &str = "\
screening-web: the NHS breast-screening clinic web app (clinics, Send to modality, admin), with the
gateway hub API mounted beside it.

USAGE
  screening-web [serve] [OPTIONS]
  screening-web add-user --username NAME --role staff|admin [--name \"Display name\"] [--database URL]
      The password is read from SCREENING_USER_PASSWORD, or else from the first line of standard input.

OPTIONS (serve)
  --database URL    sqlite://path.db or postgres://user@host/db   [env DATABASE_URL; default sqlite://screening.db]
  --listen ADDR     address to listen on                         [env SCREENING_WEB_LISTEN; default 127.0.0.1:3000]
  --port N          port on 127.0.0.1 (shorthand for --listen)   [env PORT]
  --public-url URL  the address people use; https:// marks cookies Secure [env SCREENING_PUBLIC_URL]
  --no-demo         do not seed today's demo clinic
  --help            this text

ENVIRONMENT
  SCREENING_ADMIN_PASSWORD   creates the first admin at start-up if no account has its username
                             (at least 12 characters; there is no default password)
  SCREENING_ADMIN_USERNAME   that admin's username [default admin]
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Print the help.
    Help,
    /// Run the server.
    Serve(ServeOptions),
    /// Create or update a staff account.
    AddUser {
        /// The database.
        database: String,
        /// Their username.
        username: String,
        /// Their role.
        role: StaffRole,
        /// How the app greets them.
        display_name: String,
    },
}

/// How to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// The database URL.
    pub database: String,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The public URL, if known.
    pub public_url: Option<String>,
    /// Seed today's demo clinic.
    pub demo: bool,
}

/// Reads the command line (`args` without the program name) with `env` for defaults.
pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Command, String> {
    let (command, rest) = match args.first().map(String::as_str) {
        Some("serve") => ("serve", &args[1..]),
        Some("add-user") => ("add-user", &args[1..]),
        _ => ("serve", args),
    };
    let mut values: Vec<(String, String)> = Vec::new();
    let mut flags: Vec<String> = Vec::new();
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--no-demo" => flags.push(arg.clone()),
            "--database" | "--listen" | "--port" | "--public-url" | "--username" | "--role"
            | "--name" => {
                let value = iter
                    .next()
                    .ok_or_else(|| format!("{arg} needs a value (see --help)"))?;
                values.push((arg.clone(), value.clone()));
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    let value = |name: &str| {
        values
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.clone())
    };
    let database = value("--database")
        .or_else(|| env("DATABASE_URL"))
        .unwrap_or_else(|| "sqlite://screening.db".into());
    if command == "add-user" {
        let username = value("--username").ok_or("add-user needs --username NAME")?;
        Username::parse(&username).map_err(|e| format!("--username: {e}"))?;
        let role = value("--role")
            .ok_or("add-user needs --role staff|admin")?
            .parse::<StaffRole>()
            .map_err(|e| format!("--role: {e}"))?;
        return Ok(Command::AddUser {
            database,
            username,
            role,
            display_name: value("--name").unwrap_or_default(),
        });
    }
    let listen = match (value("--listen"), value("--port").or_else(|| env("PORT"))) {
        (Some(listen), _) => listen,
        (None, Some(port)) => format!("127.0.0.1:{port}"),
        (None, None) => env("SCREENING_WEB_LISTEN").unwrap_or_else(|| "127.0.0.1:3000".into()),
    };
    let listen = listen.parse::<SocketAddr>().map_err(|_| {
        format!("the listen address {listen:?} is not HOST:PORT (e.g. 127.0.0.1:3000)")
    })?;
    let public_url = value("--public-url").or_else(|| env("SCREENING_PUBLIC_URL"));
    if let Some(url) = &public_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "--public-url {url:?} must start with http:// or https://"
            ));
        }
    }
    Ok(Command::Serve(ServeOptions {
        database,
        listen,
        public_url,
        demo: !flags.iter().any(|f| f == "--no-demo"),
    }))
}

/// Runs a command to completion.
pub async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Help => {
            print!("{HELP}");
            Ok(())
        }
        Command::AddUser {
            database,
            username,
            role,
            display_name,
        } => {
            let password = match std::env::var("SCREENING_USER_PASSWORD") {
                Ok(password) => password,
                Err(_) => {
                    eprintln!("Password for {username} (at least 12 characters):");
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .map_err(|e| format!("reading the password: {e}"))?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let store = connect(&database).await?;
            let user = save_account(store.as_ref(), &username, &display_name, role, &password)
                .await
                .map_err(|e| format!("saving {username}: {e}"))?;
            println!("saved {} ({})", user.username, user.role);
            Ok(())
        }
        Command::Serve(options) => serve(options).await,
    }
}

async fn connect(database: &str) -> Result<Arc<dyn ScreeningStore>, String> {
    screening_store::connect(database)
        .await
        .map_err(|e| e.to_string())
}

async fn serve(options: ServeOptions) -> Result<(), String> {
    let store = connect(&options.database).await?;
    if options.demo {
        let now = now_utc();
        store
            .seed_demo(now.date_naive(), now)
            .await
            .map_err(|e| format!("seeding the demo clinic: {e}"))?;
    }
    let admin_password = std::env::var("SCREENING_ADMIN_PASSWORD").ok();
    if admin_password.is_none() {
        eprintln!(
            "note: no SCREENING_ADMIN_PASSWORD, so no admin is created: sign in with an account \
             made by `screening-web add-user` (see --help)"
        );
    }
    if let Some(password) = admin_password {
        let username = std::env::var("SCREENING_ADMIN_USERNAME").unwrap_or_else(|_| "admin".into());
        let parsed =
            Username::parse(&username).map_err(|e| format!("SCREENING_ADMIN_USERNAME: {e}"))?;
        let exists = store
            .staff_account(&parsed)
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        if exists {
            eprintln!("admin {parsed} exists; SCREENING_ADMIN_PASSWORD left it unchanged (use add-user to reset)");
        } else {
            save_account(
                store.as_ref(),
                &username,
                "Administrator",
                StaffRole::Admin,
                &password,
            )
            .await
            .map_err(|e| format!("SCREENING_ADMIN_PASSWORD: {e}"))?;
            eprintln!("created admin {parsed}");
        }
    }
    let config = WebConfig {
        secure_cookies: options
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://")),
        ..WebConfig::default()
    };
    if !config.site_root.join("pkg/screening_web_bg.wasm").exists() {
        eprintln!(
            "note: no browser bundle in {}: pages work, but status will not update live \
             (run `cargo xtask build-web`)",
            config.site_root.display()
        );
    }
    let hub = Hub::new(store.clone(), HubConfig::default());
    hub.spawn_lease_sweeper();
    let _dispatchers = spawn_dispatchers(store.clone(), DispatcherConfig::default())
        .await
        .map_err(|e| format!("starting the relay dispatchers: {e}"))?;
    let app = router(AppState::new(store, config), &hub);
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", options.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    println!("Screening web app: http://{address}/");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn with_no_arguments_it_serves_sqlite_on_port_3000_with_the_demo() {
        assert_eq!(
            parse(&[], no_env),
            Ok(Command::Serve(ServeOptions {
                database: "sqlite://screening.db".into(),
                listen: "127.0.0.1:3000".parse().unwrap(),
                public_url: None,
                demo: true,
            }))
        );
    }

    #[test]
    fn the_environment_chooses_the_database_and_port() {
        let env = |name: &str| match name {
            "DATABASE_URL" => Some("postgres://postgres@127.0.0.1/test".to_string()),
            "PORT" => Some("8080".to_string()),
            _ => None,
        };
        let Ok(Command::Serve(options)) = parse(&[], env) else {
            panic!("serve expected");
        };
        assert_eq!(options.database, "postgres://postgres@127.0.0.1/test");
        assert_eq!(options.listen, "127.0.0.1:8080".parse().unwrap());
    }

    #[test]
    fn bad_arguments_are_clear_errors() {
        assert!(parse(&args("--port"), no_env)
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse(&args("--port abc"), no_env)
            .unwrap_err()
            .contains("not HOST:PORT"));
        assert!(parse(&args("--frobnicate"), no_env)
            .unwrap_err()
            .contains("unknown argument"));
        assert!(parse(&args("--public-url ftp://x"), no_env)
            .unwrap_err()
            .contains("http"));
        assert!(parse(&args("add-user --role admin"), no_env)
            .unwrap_err()
            .contains("--username"));
        assert!(parse(&args("add-user --username a.b --role root"), no_env)
            .unwrap_err()
            .contains("--role"));
    }

    #[test]
    fn add_user_takes_a_username_and_role() {
        assert_eq!(
            parse(
                &args("add-user --username Lead@nhs.net --role staff"),
                no_env
            ),
            Ok(Command::AddUser {
                database: "sqlite://screening.db".into(),
                username: "Lead@nhs.net".into(),
                role: StaffRole::Staff,
                display_name: String::new(),
            })
        );
    }
}
