//! `screening-gateway`: the gateway agent (`run`), and a standalone hub for development (`hub`).

use std::path::PathBuf;
use std::process::ExitCode;

use screening_gateway::agent::{config::SETTINGS_HELP, Agent, AgentConfig};
use screening_gateway::hub::{Hub, HubConfig};

const HELP: &str = "\
screening-gateway: carries screening orders from the hub to the modalities inside a hospital.

Usage:
  screening-gateway run [--config FILE]        run the gateway agent
  screening-gateway hub --database URL [--listen ADDR] [--issue-credential GATEWAY_ID]
                                               serve the hub API alone (development); with
                                               --issue-credential, print a new credential for the
                                               gateway and exit (it is stored only hashed)
  screening-gateway relay [--listen ADDR] [--tls-cert PEM --tls-key PEM]
                          (--config FILE | --hybrid-connection NAME... --rule NAME:RIGHTS:KEY...)
                                               serve the local Azure Relay (Hybrid Connections) for
                                               development and tests; RIGHTS are listen, send, manage
                                               joined by '+'. A TOML file has hybrid_connections = [..]
                                               and [[rules]] key_name, key, rights = [\"listen\"].
                                               With a certificate and key it serves wss://
  screening-gateway --help

The agent stops cleanly on SIGTERM or Ctrl-C: work in hand finishes, nothing is lost.
";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("--help" | "-h" | "help") => {
            println!("{HELP}\n{SETTINGS_HELP}");
            return ExitCode::SUCCESS;
        }
        Some("run") => run(&args[1..]).await,
        Some("hub") => hub(&args[1..]).await,
        Some("relay") => relay(&args[1..]).await,
        Some(other) => Err(format!(
            "unknown command {other:?}; see screening-gateway --help"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("screening-gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Reads `--name value` pairs; anything else is an error.
fn options(args: &[String], allowed: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut rest = args.iter();
    while let Some(name) = rest.next() {
        if name == "--help" || name == "-h" {
            return Err(format!("\n{HELP}\n{SETTINGS_HELP}"));
        }
        if !allowed.contains(&name.as_str()) {
            return Err(format!(
                "unknown option {name:?}; see screening-gateway --help"
            ));
        }
        let value = rest.next().ok_or_else(|| format!("{name} needs a value"))?;
        pairs.push((name.clone(), value.clone()));
    }
    Ok(pairs)
}

fn option<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

async fn run(args: &[String]) -> Result<(), String> {
    let pairs = options(args, &["--config"])?;
    let file = option(&pairs, "--config").map(PathBuf::from);
    let config = AgentConfig::load(file.as_deref(), |name| std::env::var(name).ok())
        .map_err(|e| e.to_string())?;
    let agent = Agent::new(config).await.map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop.send(true);
    });
    agent.run(stopped).await.map_err(|e| e.to_string())
}

async fn wait_for_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn hub(args: &[String]) -> Result<(), String> {
    let pairs = options(args, &["--database", "--listen", "--issue-credential"])?;
    let database = option(&pairs, "--database")
        .ok_or("--database URL is required (sqlite://… or postgres://…)")?;
    let store = screening_store::connect(database)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(gateway) = option(&pairs, "--issue-credential") {
        let gateway_id =
            screening_core::ids::GatewayId::parse(gateway).map_err(|e| e.to_string())?;
        let credential = screening_gateway::auth::generate_credential();
        store
            .set_gateway_credential_hash(
                gateway_id,
                &screening_gateway::auth::hash_credential(&credential),
            )
            .await
            .map_err(|e| e.to_string())?;
        println!("{credential}");
        return Ok(());
    }
    let listen = option(&pairs, "--listen").unwrap_or("127.0.0.1:8000");
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("listening on {listen}: {e}"))?;
    let hub = Hub::new(store, HubConfig::default());
    hub.spawn_lease_sweeper();
    eprintln!(
        "hub listening on http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    axum::serve(listener, hub.router())
        .with_graceful_shutdown(wait_for_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn relay(args: &[String]) -> Result<(), String> {
    use screening_gateway::relay::local::{parse_rule, LocalRelay, LocalRelayConfig};
    let pairs = options(
        args,
        &["--listen", "--config", "--hybrid-connection", "--rule"],
    )?;
    let mut config = match option(&pairs, "--config") {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
            toml::from_str::<LocalRelayConfig>(&text).map_err(|e| format!("{path}: {e}"))?
        }
        None => LocalRelayConfig {
            hybrid_connections: Vec::new(),
            rules: Vec::new(),
        },
    };
    for (name, value) in &pairs {
        match name.as_str() {
            "--hybrid-connection" => config.hybrid_connections.push(value.clone()),
            "--rule" => config
                .rules
                .push(parse_rule(value).map_err(|e| e.to_string())?),
            _ => {}
        }
    }
    if config.hybrid_connections.is_empty() || config.rules.is_empty() {
        return Err(
            "the relay needs at least one --hybrid-connection and one --rule (or a --config file)"
                .into(),
        );
    }
    let listen = option(&pairs, "--listen").unwrap_or("127.0.0.1:9400");
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("listening on {listen}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let names = config.hybrid_connections.clone();
    match (option(&pairs, "--tls-cert"), option(&pairs, "--tls-key")) {
        (Some(certificate), Some(key)) => {
            use screening_gateway::relay::local::TlsListener;
            let tls = TlsListener::new(listener, certificate.as_ref(), key.as_ref())
                .map_err(|e| e.to_string())?;
            eprintln!("local relay on wss://{address}/$hc/{{name}} serving {names:?}");
            let relay = LocalRelay::new(config).serving_wss();
            axum::serve(tls, relay.router())
                .with_graceful_shutdown(wait_for_signal())
                .await
                .map_err(|e| e.to_string())
        }
        (None, None) => {
            eprintln!("local relay on ws://{address}/$hc/{{name}} serving {names:?}");
            let relay = LocalRelay::new(config);
            axum::serve(
                listener,
                relay
                    .router()
                    .into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(wait_for_signal())
            .await
            .map_err(|e| e.to_string())
        }
        _ => Err("--tls-cert and --tls-key go together".into()),
    }
}
