//! The `screening-web` command: serve the app, or add a staff account. One clap definition gives
//! the parser, `--help` and the environment variables.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use screening_core::prelude::*;
use screening_gateway::hub::{Hub, HubConfig};
use screening_gateway::logging::LogArgs;
use screening_gateway::relay::dispatcher::{spawn_dispatchers, DispatcherConfig};
use screening_store::{now_utc, ScreeningStore, StaffChange};

use super::auth::save_account;
use super::{router, AppState, WebConfig};

/// The NHS breast-screening clinic web app (clinics, Send to modality, admin), with the gateway hub
/// API mounted beside it.
#[derive(Debug, Parser)]
#[command(
    name = "screening-web",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Environment, read at start-up only (never flags, so passwords stay out of `ps`):
  SCREENING_ADMIN_PASSWORD   creates the first admin if no account has its username
                             (at least 12 characters; there is no default password)
  SCREENING_ADMIN_USERNAME   that admin's username [default: admin]
  SCREENING_USER_PASSWORD    add-user's password (else the first line of standard input)
  SCREENING_METRICS_TOKEN    serves Prometheus metrics at /metrics to this bearer token
                             (at least 16 characters; without it there is no /metrics)
  SCREENING_ALERT_WEBHOOK_SECRET  the HMAC key alert webhooks are signed with
                             (at least 16 characters; needed with --alert-webhook-url)"
)]
pub struct Cli {
    /// What to do (serve when none is given).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// How to serve, when no command is given.
    #[command(flatten)]
    pub serve: ServeOptions,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve the web app (the default).
    Serve(ServeOptions),
    /// Create or update a staff account; the password comes from SCREENING_USER_PASSWORD or the
    /// first line of standard input.
    AddUser(AddUserOptions),
    /// List the staff accounts.
    ListUsers(DatabaseOption),
    /// Stop an account signing in; its sessions end at once.
    DisableUser(UserOptions),
    /// Let a disabled account sign in again.
    EnableUser(UserOptions),
    /// Change an account's role.
    SetRole(SetRoleOptions),
    /// Give an account a new password (from SCREENING_USER_PASSWORD or the first line of standard
    /// input); its sessions end at once.
    ResetPassword(UserOptions),
}

/// Only the database.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DatabaseOption {
    /// The database: sqlite://path.db or postgres://user@host/db.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://screening.db")]
    pub database: String,
}

/// One account.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct UserOptions {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseOption,
    /// The account's username.
    #[arg(long, value_parser = username)]
    pub username: String,
}

/// One account and its new role.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SetRoleOptions {
    /// The account.
    #[command(flatten)]
    pub user: UserOptions,
    /// Its role: staff or admin.
    #[arg(long, value_parser = role)]
    pub role: StaffRole,
}

/// How to serve.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ServeOptions {
    /// The database: sqlite://path.db or postgres://user@host/db.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://screening.db")]
    pub database: String,
    /// Address to listen on [default: 127.0.0.1:3000, or 127.0.0.1:PORT].
    #[arg(long, env = "SCREENING_WEB_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Port on 127.0.0.1 (shorthand for --listen).
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// The address people use; https:// marks cookies Secure.
    #[arg(long, env = "SCREENING_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<String>,
    /// Seed today's demo clinic (fake participants and a `log:` gateway). Never for real data.
    #[arg(long)]
    pub demo: bool,
    /// Seconds open connections (live status streams included) get to finish on SIGTERM.
    #[arg(long, env = "SCREENING_DRAIN_SECONDS", default_value_t = 10)]
    pub drain_seconds: u64,
    /// The folder relay key files must be in (`file:` key references); without it, relay keys
    /// come only from environment variables named SCREENING_SECRET_….
    #[arg(long, env = "SCREENING_SECRETS_DIR", value_parser = absolute_path)]
    pub secrets_dir: Option<std::path::PathBuf>,
    /// Seconds a page request may take before it is answered 503 (the gateway API's long polls
    /// have their own bound).
    #[arg(long, env = "SCREENING_REQUEST_TIMEOUT_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout_seconds: u64,
    /// The key that signs the orders gateways receive.
    #[command(flatten)]
    pub signing_key: screening_gateway::signing::SigningKeyFile,
    /// Seconds between echoes to each gateway, through the path its orders take (0: none).
    #[arg(long, env = "SCREENING_ECHO_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(0..=86400))]
    pub echo_seconds: u64,
    /// When alerts open and where they are sent.
    #[command(flatten)]
    pub alerts: AlertOptions,
    /// Days a confirmed message's payload (the participant's details) is kept.
    #[arg(long, env = "SCREENING_RETAIN_PAYLOAD_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub retain_payload_days: u32,
    /// Days finished messages, audit events and resolved alerts are kept.
    #[arg(long, env = "SCREENING_RETAIN_RECORD_DAYS", default_value_t = 730,
          value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub retain_record_days: u32,
}

/// Alerts: each rule's threshold, how often gateways are looked at, and the webhook.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AlertOptions {
    /// Seconds between looks at every gateway (alerts open and resolve on these looks).
    #[arg(long = "alert-check-seconds", env = "SCREENING_ALERT_CHECK_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub check_seconds: u64,
    /// Minutes a gateway may go unheard before "gateway silent" opens. Keep it above the agents'
    /// heartbeat interval (5 minutes by default).
    #[arg(long = "alert-gateway-silent-minutes", env = "SCREENING_ALERT_GATEWAY_SILENT_MINUTES",
          default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10080))]
    pub gateway_silent_minutes: u64,
    /// Minutes a gateway's echoes may fail or go unanswered before "gateway unproven" opens.
    /// Keep it above --echo-seconds.
    #[arg(long = "alert-unproven-minutes", env = "SCREENING_ALERT_UNPROVEN_MINUTES",
          default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=10080))]
    pub unproven_minutes: u64,
    /// Minutes a relay gateway's agent may report its listener disconnected before "relay
    /// listener absent" opens.
    #[arg(long = "alert-listener-absent-minutes", env = "SCREENING_ALERT_LISTENER_ABSENT_MINUTES",
          default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=10080))]
    pub listener_absent_minutes: u64,
    /// Minutes after the day's first slot a worklist may go unqueried before "worklist not
    /// queried" opens.
    #[arg(long = "alert-worklist-grace-minutes", env = "SCREENING_ALERT_WORKLIST_GRACE_MINUTES",
          default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1440))]
    pub worklist_grace_minutes: u64,
    /// Seconds a message may wait for its gateway before "messages waiting" opens.
    #[arg(long = "alert-message-waiting-seconds", env = "SCREENING_ALERT_MESSAGE_WAITING_SECONDS",
          default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=604800))]
    pub message_waiting_seconds: u64,
    /// Failed messages (not yet resent) that open "messages failed".
    #[arg(long = "alert-failed-messages", env = "SCREENING_ALERT_FAILED_MESSAGES",
          default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100000))]
    pub failed_messages: u64,
    /// Where each alert's opening and resolution is POSTed as JSON, signed with HMAC-SHA256 of
    /// SCREENING_ALERT_WEBHOOK_SECRET in the X-Screening-Signature header.
    #[arg(long = "alert-webhook-url", env = "SCREENING_ALERT_WEBHOOK_URL", value_parser = webhook_url)]
    pub webhook_url: Option<String>,
}

impl AlertOptions {
    /// The watcher's settings; the webhook secret comes from the environment only.
    pub fn settings(&self) -> Result<super::alerts::AlertSettings, String> {
        let webhook = match &self.webhook_url {
            None => None,
            Some(url) => {
                let secret = std::env::var("SCREENING_ALERT_WEBHOOK_SECRET").map_err(|_| {
                    "--alert-webhook-url needs SCREENING_ALERT_WEBHOOK_SECRET (at least 16 characters) \
                     to sign what it sends"
                        .to_string()
                })?;
                if secret.chars().count() < 16 {
                    return Err("SCREENING_ALERT_WEBHOOK_SECRET: at least 16 characters".into());
                }
                Some(super::alerts::Webhook {
                    url: url
                        .parse()
                        .map_err(|e| format!("--alert-webhook-url: {e}"))?,
                    secret,
                })
            }
        };
        Ok(super::alerts::AlertSettings {
            thresholds: screening_core::alert::AlertThresholds {
                gateway_silent: chrono::TimeDelta::minutes(self.gateway_silent_minutes as i64),
                oldest_pending: chrono::TimeDelta::seconds(self.message_waiting_seconds as i64),
                failed_messages: self.failed_messages,
                unproven: chrono::TimeDelta::minutes(self.unproven_minutes as i64),
                listener_absent: chrono::TimeDelta::minutes(self.listener_absent_minutes as i64),
                worklist_grace: chrono::TimeDelta::minutes(self.worklist_grace_minutes as i64),
            },
            check_every: Duration::from_secs(self.check_seconds),
            webhook,
            ..super::alerts::AlertSettings::default()
        })
    }
}

fn webhook_url(text: &str) -> Result<String, String> {
    let url: reqwest::Url = text.parse().map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password (the signature authenticates)".into());
    }
    Ok(text.to_string())
}

impl ServeOptions {
    /// Where to listen: --listen, else 127.0.0.1 with --port, else 127.0.0.1:3000.
    pub fn listen_address(&self) -> SocketAddr {
        self.listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], self.port.unwrap_or(3000))))
    }
}

/// `add-user`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AddUserOptions {
    /// The database: sqlite://path.db or postgres://user@host/db.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://screening.db")]
    pub database: String,
    /// Their username.
    #[arg(long, value_parser = username)]
    pub username: String,
    /// Their role: staff or admin.
    #[arg(long, value_parser = role)]
    pub role: StaffRole,
    /// How the app greets them.
    #[arg(long = "name", default_value = "")]
    pub display_name: String,
}

/// The metrics token from the environment: none, or at least 16 characters.
fn metrics_token() -> Result<Option<String>, String> {
    match std::env::var("SCREENING_METRICS_TOKEN") {
        Err(_) => Ok(None),
        Ok(token) if token.chars().count() >= 16 => Ok(Some(token)),
        Ok(_) => Err("SCREENING_METRICS_TOKEN: at least 16 characters".into()),
    }
}

fn absolute_path(text: &str) -> Result<std::path::PathBuf, String> {
    let path = std::path::PathBuf::from(text);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err("must be an absolute path".into())
    }
}

fn public_url(text: &str) -> Result<String, String> {
    if text.starts_with("http://") || text.starts_with("https://") {
        Ok(text.to_string())
    } else {
        Err("must start with http:// or https://".into())
    }
}

fn username(text: &str) -> Result<String, String> {
    Username::parse(text)
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

fn role(text: &str) -> Result<StaffRole, String> {
    text.parse::<StaffRole>().map_err(|e| e.to_string())
}

impl Cli {
    /// The command asked for; serving when none was named.
    pub fn command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

/// Runs a command to completion.
pub async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::AddUser(AddUserOptions {
            database,
            username,
            role,
            display_name,
        }) => {
            let password = read_password(&username)?;
            let store = connect(&database).await?;
            let user = save_account(store.as_ref(), &username, &display_name, role, &password)
                .await
                .map_err(|e| format!("saving {username}: {e}"))?;
            println!("saved {} ({})", user.username, user.role);
            Ok(())
        }
        Command::ListUsers(DatabaseOption { database }) => {
            let store = connect(&database).await?;
            for account in store.staff_accounts().await.map_err(|e| e.to_string())? {
                let status = match account.disabled_at {
                    Some(at) => format!("disabled {}", at.to_rfc3339()),
                    None => "active".into(),
                };
                println!(
                    "{}\t{}\t{}",
                    account.user.username, account.user.role, status
                );
            }
            Ok(())
        }
        Command::DisableUser(user) => change_user(&user, StaffChange::Disable, "disabled").await,
        Command::EnableUser(user) => change_user(&user, StaffChange::Enable, "enabled").await,
        Command::SetRole(SetRoleOptions { user, role }) => {
            change_user(&user, StaffChange::Role(role), "changed the role of").await
        }
        Command::ResetPassword(user) => {
            let password = read_password(&user.username)?;
            if password.chars().count() < super::auth::MIN_PASSWORD_CHARS {
                return Err(format!(
                    "the password must have at least {} characters",
                    super::auth::MIN_PASSWORD_CHARS
                ));
            }
            let hash = super::auth::hash_password(&password).map_err(|e| e.to_string())?;
            change_user(&user, StaffChange::Password(hash), "reset the password of").await
        }
        Command::Serve(options) => serve(options).await,
    }
}

/// The password from SCREENING_USER_PASSWORD, else the first line of standard input.
fn read_password(username: &str) -> Result<String, String> {
    match std::env::var("SCREENING_USER_PASSWORD") {
        Ok(password) => Ok(password),
        Err(_) => {
            eprintln!("Password for {username} (at least 12 characters):");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("reading the password: {e}"))?;
            Ok(line.trim_end_matches(['\r', '\n']).to_string())
        }
    }
}

/// Changes an account from the command line, recorded on the audit page as done there.
async fn change_user(user: &UserOptions, change: StaffChange, done: &str) -> Result<(), String> {
    let store = connect(&user.database.database).await?;
    let username = Username::parse(&user.username).map_err(|e| e.to_string())?;
    store
        .change_staff_account(&username, &change, now_utc())
        .await
        .map_err(|error| match error {
            StoreError::NotFound { .. } => format!("no account has the username {username}"),
            other => other.to_string(),
        })?;
    store
        .record_admin_event(&screening_store::AdminEvent {
            occurred_at: now_utc(),
            actor: "command line".into(),
            action: format!("{done} a staff account"),
            subject: format!("staff {username}"),
        })
        .await
        .map_err(|e| e.to_string())?;
    println!("{done} {username}");
    Ok(())
}

async fn connect(database: &str) -> Result<Arc<dyn ScreeningStore>, String> {
    screening_store::connect(database)
        .await
        .map_err(|e| e.to_string())
}

async fn serve(options: ServeOptions) -> Result<(), String> {
    let alert_settings = options.alerts.settings()?;
    let store = connect(&options.database).await?;
    if options.demo {
        let now = now_utc();
        store
            .seed_demo(screening_core::london::today(now), now)
            .await
            .map_err(|e| format!("seeding the demo clinic: {e}"))?;
    }
    let admin_password = std::env::var("SCREENING_ADMIN_PASSWORD").ok();
    if admin_password.is_none() {
        tracing::warn!(
            "no SCREENING_ADMIN_PASSWORD, so no admin is created: sign in with an account \
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
            tracing::info!(username = %parsed, "the admin exists; SCREENING_ADMIN_PASSWORD left it unchanged (use add-user to reset)");
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
            tracing::info!(username = %parsed, "created the first admin");
        }
    }
    let config = WebConfig {
        secure_cookies: options
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://")),
        metrics_token: metrics_token()?,
        secrets_dir: options.secrets_dir.clone(),
        request_timeout: std::time::Duration::from_secs(options.request_timeout_seconds),
        ..WebConfig::default()
    };
    if !config.site_root.join("pkg/screening_web_bg.wasm").exists() {
        tracing::warn!(
            site_root = %config.site_root.display(),
            "no browser bundle: pages work, but status will not update live (run `cargo xtask build-web`)"
        );
    }
    let signing_key = options
        .signing_key
        .load()
        .map_err(|e| format!("--signing-key: {e}"))?;
    screening_gateway::hub::warn_if_unsigned(signing_key.as_ref());
    let hub = Hub::new(
        store.clone(),
        HubConfig {
            signing_key: signing_key.clone(),
            ..HubConfig::default()
        },
    );
    hub.spawn_lease_sweeper();
    let dispatching = DispatcherConfig {
        secrets_dir: options.secrets_dir.clone(),
        signing_key,
        ..DispatcherConfig::default()
    };
    let _dispatchers = spawn_dispatchers(store.clone(), dispatching)
        .await
        .map_err(|e| format!("starting the relay dispatchers: {e}"))?;
    let state = AppState::new(store.clone(), config);
    let _alerts = super::alerts::spawn(store.clone(), alert_settings, state.shutting_down());
    let _echoes = (options.echo_seconds > 0).then(|| {
        super::echo::spawn(
            store.clone(),
            Duration::from_secs(options.echo_seconds),
            state.shutting_down(),
        )
    });
    let retention = screening_store::RetentionPolicy {
        payloads: chrono::TimeDelta::days(i64::from(options.retain_payload_days)),
        records: chrono::TimeDelta::days(i64::from(options.retain_record_days)),
    };
    if retention.records < retention.payloads {
        return Err("--retain-record-days must be at least --retain-payload-days".into());
    }
    let _retention = super::retention::spawn(
        store,
        retention,
        Duration::from_secs(60),
        Duration::from_secs(24 * 60 * 60),
        state.shutting_down(),
    );
    let app = router(state.clone(), &hub);
    let listen = options.listen_address();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("listening on {listen}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%address, "screening web app serving http://{address}/");
    println!("Screening web app: http://{address}/");
    let drain_state = state.clone();
    // The app state's shutdown flag ends the live streams and starts the drain timer alike.
    let draining = state.shutting_down();
    // With the peer address (which the sign-in limits count by), over HTTP/1 (`hub::serve`).
    let server = screening_gateway::hub::serve(listener, app, async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing open requests");
        // Live status streams never end by themselves: end them so connections can close.
        drain_state.begin_shutdown();
    });
    let drain = Duration::from_secs(options.drain_seconds);
    tokio::select! {
        () = server => Ok(()),
        _ = async {
            draining.await;
            tokio::time::sleep(drain).await;
        } => {
            tracing::warn!(drain_seconds = options.drain_seconds, "connections still open after the drain time; exiting");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(text: &str) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("screening-web").chain(text.split_whitespace()))
            .map(Cli::command)
    }

    #[test]
    fn flags_choose_the_database_and_port_and_the_demo_is_opt_in() {
        let Ok(Command::Serve(options)) =
            parse("--database postgres://postgres@127.0.0.1/test --port 8080")
        else {
            panic!("serve expected");
        };
        assert_eq!(options.database, "postgres://postgres@127.0.0.1/test");
        assert_eq!(options.listen_address(), "127.0.0.1:8080".parse().unwrap());
        assert!(!options.demo);
        let Ok(Command::Serve(options)) = parse("serve --demo --listen 0.0.0.0:80") else {
            panic!("serve expected");
        };
        assert!(options.demo);
        assert_eq!(options.listen_address(), "0.0.0.0:80".parse().unwrap());
    }

    #[test]
    fn bad_arguments_are_clear_errors() {
        let error = |text: &str| parse(text).unwrap_err().to_string();
        assert!(error("--port").contains("a value is required"));
        assert!(error("--port abc").contains("--port"));
        assert!(error("--frobnicate").contains("unexpected argument"));
        assert!(error("--public-url ftp://x").contains("http"));
        assert!(error("add-user --role admin").contains("--username"));
        assert!(error("add-user --username a.b --role root").contains("--role"));
        assert!(error("--alert-webhook-url ftp://hooks.example/").contains("http"));
        assert!(error("--alert-webhook-url https://user:pw@hooks.example/").contains("password"));
        assert!(error("--alert-check-seconds 0").contains("--alert-check-seconds"));
    }

    #[test]
    fn add_user_takes_a_username_and_role() {
        assert_eq!(
            parse("add-user --username Lead@nhs.net --role staff --database sqlite://x.db")
                .unwrap(),
            Command::AddUser(AddUserOptions {
                database: "sqlite://x.db".into(),
                username: "Lead@nhs.net".into(),
                role: StaffRole::Staff,
                display_name: String::new(),
            })
        );
    }
}
