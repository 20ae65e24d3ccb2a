//! `screening-gateway`: the gateway agent (`run`); with the `hub` and `local-relay` features, a
//! standalone hub and the local relay for development. See `screening-gateway --help`.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use screening_gateway::logging::LogArgs;

/// Carries screening orders from the hub to the modalities inside a hospital. The agent stops
/// cleanly on SIGTERM or Ctrl-C: work in hand finishes, nothing is lost.
#[derive(Parser)]
#[command(name = "screening-gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway agent.
    #[cfg(feature = "agent")]
    Run(Box<screening_gateway::agent::AgentArgs>),
    /// Serve the hub API alone (development), or issue a gateway credential.
    #[cfg(feature = "hub")]
    Hub(screening_gateway::hub::HubArgs),
    /// Serve the local Azure Relay (Hybrid Connections) for development and tests.
    #[cfg(feature = "local-relay")]
    Relay(screening_gateway::relay::local::LocalRelayArgs),
    /// Make or inspect the hub's order-signing key (Ed25519, PEM files).
    SigningKey(screening_gateway::signing::SigningKeyArgs),
}

fn main() -> ExitCode {
    screening_gateway::logging::run_main(run())
}

async fn run() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    if let Err(error) = cli.log.init() {
        eprintln!("screening-gateway: {error}");
        return ExitCode::from(2);
    }
    let result: Result<(), String> = match cli.command {
        #[cfg(feature = "agent")]
        Command::Run(args) => {
            let refused = matches
                .subcommand_matches("run")
                .map(screening_gateway::agent::config::refuse_secrets_on_command_line);
            if let Some(Err(error)) = refused {
                eprintln!("screening-gateway: {error}");
                return ExitCode::from(2);
            }
            run_agent(*args).await
        }
        #[cfg(feature = "hub")]
        Command::Hub(args) => args.run(shutdown_signal()).await.map_err(|e| e.to_string()),
        #[cfg(feature = "local-relay")]
        Command::Relay(args) => args
            .serve(shutdown_signal())
            .await
            .map_err(|e| e.to_string()),
        Command::SigningKey(args) => args.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!(error = %message, "screening-gateway stopped");
            eprintln!("screening-gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "agent")]
async fn run_agent(args: screening_gateway::agent::AgentArgs) -> Result<(), String> {
    use screening_gateway::agent::Agent;
    let config = args.load().map_err(|e| e.to_string())?;
    let agent = Agent::new(config).await.map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    agent.run(stopped).await.map_err(|e| e.to_string())
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
