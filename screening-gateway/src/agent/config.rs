//! The agent's settings. One definition ([`AgentSettings`]) is the TOML file's keys, the command
//! line's flags, their environment variables and `--help`, so none can drift from the others. The
//! command line and environment win over the file. Secrets (the gateway credential, the relay key)
//! come from a file or the environment, never from the command line (where `ps` would show them).

// The settings' doc comments are also their `--help` text, written for a terminal: TOML section
// names in brackets and plain URLs are meant literally there, not as rustdoc links.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::bare_urls)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use screening_core::ids::GatewayId;
use serde::Deserialize;

use crate::backoff::Backoff;
use crate::relay::client::RelayEndpoint;

/// The agent's settings as a TOML file, flags or environment variables give them.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// The hub's base URL, e.g. https://screening.example.nhs.uk (required). TOML: hub_url.
    #[arg(long, env = "SCREENING_HUB_URL")]
    pub hub_url: Option<String>,
    /// This gateway's id, a UUID (required). TOML: gateway_id.
    #[arg(long, env = "SCREENING_GATEWAY_ID")]
    pub gateway_id: Option<String>,
    /// File holding the gateway credential. TOML: credential_file.
    #[arg(long, env = "SCREENING_GATEWAY_CREDENTIAL_FILE")]
    pub credential_file: Option<PathBuf>,
    /// The gateway credential itself: from the environment only (this or a credential file is
    /// required).
    #[arg(long, env = "SCREENING_GATEWAY_CREDENTIAL", hide_env_values = true)]
    #[serde(skip)]
    pub credential: Option<String>,
    /// The durable inbox file [default: ./gateway-inbox.db]. TOML: inbox_path.
    #[arg(long, env = "SCREENING_INBOX_PATH")]
    pub inbox_path: Option<PathBuf>,
    /// Seconds between heartbeats to the hub [default: 300]. TOML: heartbeat_seconds.
    #[arg(long, env = "SCREENING_HEARTBEAT_SECONDS")]
    pub heartbeat_seconds: Option<u64>,
    /// How messages are fetched. TOML: [transport].
    #[command(flatten)]
    #[serde(default)]
    pub transport: TransportSettings,
    /// Forwarding retries. TOML: [retry].
    #[command(flatten)]
    #[serde(default)]
    pub retry: RetrySettings,
    /// Pushed messages through Azure Relay. TOML: [relay].
    #[command(flatten)]
    #[serde(default)]
    pub relay: RelaySettings,
    /// The DICOM Modality Worklist served to modalities. TOML: [mwl].
    #[command(flatten)]
    #[serde(default)]
    pub mwl: MwlSettings,
    /// What the agent may forward to beyond `log:` and the worklist. TOML: [allow].
    #[command(flatten)]
    #[serde(default)]
    pub allow: AllowSettings,
    /// The agent's own health and metrics over HTTP. TOML: [metrics].
    #[command(flatten)]
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// The hub's keys that orders must be signed with. TOML: [signatures].
    #[command(flatten)]
    #[serde(default)]
    pub signatures: SignatureSettings,
    /// Credentials the agent presents to destinations (file only: [[destination_auth]] tables).
    #[arg(skip)]
    #[serde(default)]
    pub destination_auth: Vec<super::DestinationAuthSettings>,
}

/// `[signatures]`: the hub's public keys this agent trusts. With a key listed, every order must
/// carry a valid signature by one of them (unless `required = false`, which still refuses a bad
/// signature); with none, nothing is checked.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSettings {
    /// Files with the hub's public keys (PEM), comma-separated; while a key rotates, list the old
    /// and the new. TOML: [signatures] hub_key_files = ["/etc/screening/hub-2026-12.pem.pub"].
    #[arg(
        long = "hub-key-files",
        env = "SCREENING_HUB_KEY_FILES",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub hub_key_files: Vec<PathBuf>,
    /// Refuse unsigned orders [default: true when hub keys are listed]. TOML: [signatures]
    /// required.
    #[arg(long = "require-signatures", env = "SCREENING_REQUIRE_SIGNATURES")]
    pub required: Option<bool>,
}

/// `[metrics]`: `/metrics` (Prometheus text), `/healthz` and `/readyz`, served only when
/// `listen` is set. They carry no patient data and need no credential: keep the address on
/// loopback or the hospital's management network.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address for /metrics, /healthz and /readyz, e.g. 127.0.0.1:9464 [default: not served].
    /// TOML: [metrics] listen.
    #[arg(
        id = "metrics_listen",
        long = "metrics-listen",
        env = "SCREENING_AGENT_METRICS_LISTEN"
    )]
    pub listen: Option<String>,
}

/// `[allow]`: the hospital's limits on where this agent sends and writes orders. By default only
/// `log:` and the worklist are allowed; anything else is refused and reported to the hub.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowSettings {
    /// URL prefixes http(s) destinations must fall under, comma-separated [default: none]. TOML:
    /// [allow] destinations = ["https://ris.example.nhs.uk/fhir/"].
    #[arg(
        long = "allow-destinations",
        env = "SCREENING_ALLOW_DESTINATIONS",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub destinations: Vec<String>,
    /// The one folder `file:` destinations may write inside (absolute) [default: none]. TOML:
    /// [allow] spool_dir.
    #[arg(long = "spool-dir", env = "SCREENING_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,
}

/// `[mwl]`: the worklist is served only when `listen` is set.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MwlSettings {
    /// Address the worklist listens on for modalities, e.g. 0.0.0.0:4243 (production often uses
    /// port 104). TOML: [mwl] listen.
    #[arg(long = "mwl-listen", env = "SCREENING_MWL_LISTEN")]
    pub listen: Option<String>,
    /// The worklist's AE title [default: SCREENING_MWL]. TOML: [mwl] ae_title.
    #[arg(long = "mwl-ae-title", env = "SCREENING_MWL_AE_TITLE")]
    pub ae_title: Option<String>,
    /// Calling AE titles allowed to query, comma-separated [default: any]. TOML: [mwl]
    /// allowed_calling_ae_titles = ["MAMMO1", ...].
    #[arg(
        long = "mwl-allowed-calling-ae-titles",
        env = "SCREENING_MWL_ALLOWED_CALLING_AE_TITLES",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub allowed_calling_ae_titles: Vec<String>,
    /// ScheduledStationAETitle put on this gateway's items [default: empty, any modality].
    /// TOML: [mwl] station_ae_title.
    #[arg(long = "mwl-station-ae-title", env = "SCREENING_MWL_STATION_AE_TITLE")]
    pub station_ae_title: Option<String>,
}

/// `[transport]`.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportSettings {
    /// long-poll (default) or poll. TOML: [transport] mode.
    #[arg(long = "transport", env = "SCREENING_TRANSPORT", value_enum)]
    pub mode: Option<TransportMode>,
    /// Seconds between polls in poll mode [default: 1]. TOML: [transport] poll_interval_seconds.
    #[arg(long, env = "SCREENING_POLL_INTERVAL_SECONDS")]
    pub poll_interval_seconds: Option<u64>,
    /// Seconds the hub may hold a long-poll [default: 50, at most 60]. TOML: [transport]
    /// long_poll_wait_seconds.
    #[arg(long, env = "SCREENING_LONG_POLL_WAIT_SECONDS")]
    pub long_poll_wait_seconds: Option<u64>,
}

/// Poll or long-poll, as named in settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportMode {
    /// Ask at a fixed interval, as the proof of concept did.
    Poll,
    /// Let the hub hold each request until a message is pending.
    LongPoll,
}

/// `[retry]`.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    /// Forwarding attempts before a message is reported failed [default: 5]. TOML: [retry]
    /// max_attempts.
    #[arg(long = "max-forward-attempts", env = "SCREENING_MAX_FORWARD_ATTEMPTS")]
    pub max_attempts: Option<u32>,
    /// First retry delay in ms, doubled each time, with jitter [default: 500]. TOML: [retry]
    /// base_delay_ms.
    #[arg(long = "retry-base-ms", env = "SCREENING_RETRY_BASE_MS")]
    pub base_delay_ms: Option<u64>,
    /// Longest retry delay in ms [default: 60000]. TOML: [retry] max_delay_ms.
    #[arg(long = "retry-max-ms", env = "SCREENING_RETRY_MAX_MS")]
    pub max_delay_ms: Option<u64>,
}

/// `[relay]`.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySettings {
    /// Also listen for pushed messages on an Azure Relay Hybrid Connection:
    /// wss://NAMESPACE.servicebus.windows.net, or ws://127.0.0.1:PORT for the local relay. TOML:
    /// [relay] url.
    #[arg(long = "relay-url", env = "SCREENING_RELAY_URL")]
    pub url: Option<String>,
    /// The hybrid connection's name (required with the relay url). TOML: [relay] hybrid_connection.
    #[arg(
        long = "relay-hybrid-connection",
        env = "SCREENING_RELAY_HYBRID_CONNECTION"
    )]
    pub hybrid_connection: Option<String>,
    /// The SAS rule's name, with the Listen right (required with the relay url). TOML: [relay]
    /// key_name.
    #[arg(long = "relay-key-name", env = "SCREENING_RELAY_KEY_NAME")]
    pub key_name: Option<String>,
    /// File holding the SAS key. TOML: [relay] key_file.
    #[arg(long = "relay-key-file", env = "SCREENING_RELAY_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// The SAS key itself: from the environment only (this or a key file is required with the
    /// relay url).
    #[arg(
        long = "relay-key",
        env = "SCREENING_RELAY_KEY",
        hide_env_values = true
    )]
    #[serde(skip)]
    pub key: Option<String>,
}

/// `screening-gateway run`: the agent's settings file and the settings that override it.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// A TOML settings file (keys as named below; the command line and environment win).
    #[arg(long, env = "SCREENING_GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// The settings.
    #[command(flatten)]
    pub settings: AgentSettings,
}

impl AgentArgs {
    /// The checked configuration: the file's settings under the command line's and environment's.
    pub fn load(&self) -> Result<AgentConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => AgentSettings::from_file(path)?,
            None => AgentSettings::default(),
        };
        AgentConfig::from_settings(self.settings.clone().or(file))
    }
}

/// The flags whose values are secrets: refused on the command line, accepted from the environment.
pub const SECRET_FLAGS: [(&str, &str); 2] = [
    (
        "credential",
        "SCREENING_GATEWAY_CREDENTIAL or a credential file",
    ),
    ("key", "SCREENING_RELAY_KEY or a key file"),
];

/// Refuses a secret given on the command line (where `ps` and shell history keep it).
pub fn refuse_secrets_on_command_line(matches: &clap::ArgMatches) -> Result<(), ConfigError> {
    for (id, instead) in SECRET_FLAGS {
        if matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
            return Err(ConfigError(format!(
                "--{} is a secret and is not taken from the command line (ps shows it): use {instead}",
                if id == "key" { "relay-key" } else { id }
            )));
        }
    }
    Ok(())
}

impl AgentSettings {
    /// Reads a TOML settings file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("reading {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// These settings, with `file`'s filling what they leave unset.
    pub fn or(self, file: AgentSettings) -> AgentSettings {
        AgentSettings {
            hub_url: self.hub_url.or(file.hub_url),
            gateway_id: self.gateway_id.or(file.gateway_id),
            credential_file: self.credential_file.or(file.credential_file),
            credential: self.credential.or(file.credential),
            inbox_path: self.inbox_path.or(file.inbox_path),
            heartbeat_seconds: self.heartbeat_seconds.or(file.heartbeat_seconds),
            transport: TransportSettings {
                mode: self.transport.mode.or(file.transport.mode),
                poll_interval_seconds: self
                    .transport
                    .poll_interval_seconds
                    .or(file.transport.poll_interval_seconds),
                long_poll_wait_seconds: self
                    .transport
                    .long_poll_wait_seconds
                    .or(file.transport.long_poll_wait_seconds),
            },
            retry: RetrySettings {
                max_attempts: self.retry.max_attempts.or(file.retry.max_attempts),
                base_delay_ms: self.retry.base_delay_ms.or(file.retry.base_delay_ms),
                max_delay_ms: self.retry.max_delay_ms.or(file.retry.max_delay_ms),
            },
            relay: RelaySettings {
                url: self.relay.url.or(file.relay.url),
                hybrid_connection: self
                    .relay
                    .hybrid_connection
                    .or(file.relay.hybrid_connection),
                key_name: self.relay.key_name.or(file.relay.key_name),
                key_file: self.relay.key_file.or(file.relay.key_file),
                key: self.relay.key.or(file.relay.key),
            },
            mwl: MwlSettings {
                listen: self.mwl.listen.or(file.mwl.listen),
                ae_title: self.mwl.ae_title.or(file.mwl.ae_title),
                allowed_calling_ae_titles: if self.mwl.allowed_calling_ae_titles.is_empty() {
                    file.mwl.allowed_calling_ae_titles
                } else {
                    self.mwl.allowed_calling_ae_titles
                },
                station_ae_title: self.mwl.station_ae_title.or(file.mwl.station_ae_title),
            },
            metrics: MetricsSettings {
                listen: self.metrics.listen.or(file.metrics.listen),
            },
            allow: AllowSettings {
                destinations: if self.allow.destinations.is_empty() {
                    file.allow.destinations
                } else {
                    self.allow.destinations
                },
                spool_dir: self.allow.spool_dir.or(file.allow.spool_dir),
            },
            signatures: SignatureSettings {
                hub_key_files: if self.signatures.hub_key_files.is_empty() {
                    file.signatures.hub_key_files
                } else {
                    self.signatures.hub_key_files
                },
                required: self.signatures.required.or(file.signatures.required),
            },
            destination_auth: if self.destination_auth.is_empty() {
                file.destination_auth
            } else {
                self.destination_auth
            },
        }
    }
}

/// How the agent asks the hub for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    /// Ask every `interval`, as the proof of concept did.
    Poll {
        /// Time between polls.
        interval: Duration,
    },
    /// Ask and let the hub hold the request until a message is pending or `wait` passes.
    LongPoll {
        /// The longest the hub holds a request.
        wait: Duration,
    },
}

/// Everything the agent needs to run.
#[derive(Clone)]
pub struct AgentConfig {
    /// The hub's base URL, without a trailing slash.
    pub hub_url: String,
    /// This gateway.
    pub gateway_id: GatewayId,
    /// The bearer credential.
    pub credential: String,
    /// Poll or long-poll.
    pub fetch: FetchMode,
    /// Forwarding attempts before giving up on a message.
    pub max_attempts: u32,
    /// Delays between forwarding attempts.
    pub retry: Backoff,
    /// Delays between attempts to reach an unreachable hub.
    pub hub_backoff: Backoff,
    /// The durable inbox file.
    pub inbox_path: PathBuf,
    /// Time between heartbeats.
    pub heartbeat_interval: Duration,
    /// The hybrid connection to listen on for pushed messages, if any (alongside polling).
    pub relay: Option<RelayEndpoint>,
    /// The worklist served to modalities, if any (`mwl:` destinations need it).
    pub worklist: Option<WorklistConfig>,
    /// Where the agent may forward beyond `log:` and the worklist.
    pub allow: super::AllowList,
    /// The hub's keys orders are checked against before anything is forwarded.
    pub signatures: screening_core::signing::TrustedHubKeys,
    /// Credentials presented to destinations, each for the URLs under its prefix.
    pub destination_auth: Vec<super::DestinationAuth>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served, if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Where and how the agent serves its DICOM Modality Worklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorklistConfig {
    /// The address modalities connect to.
    pub listen: std::net::SocketAddr,
    /// AE titles.
    pub settings: crate::worklist::WorklistSettings,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("hub_url", &self.hub_url)
            .field("gateway_id", &self.gateway_id)
            .field("credential", &"<hidden>")
            .field("fetch", &self.fetch)
            .field("max_attempts", &self.max_attempts)
            .field("inbox_path", &self.inbox_path)
            .finish_non_exhaustive()
    }
}

/// A setting is missing or invalid.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl AgentConfig {
    /// Checks and completes the settings (a file's, overridden by the command line and environment).
    pub fn from_settings(settings: AgentSettings) -> Result<Self, ConfigError> {
        let hub_url = settings.hub_url.ok_or_else(|| {
            ConfigError(
                "hub_url is missing (set it in the file, --hub-url or SCREENING_HUB_URL)".into(),
            )
        })?;
        let hub_url = hub_url.trim().trim_end_matches('/').to_string();
        if !(hub_url.starts_with("http://") || hub_url.starts_with("https://"))
            || hub_url.len() < 10
        {
            return Err(ConfigError(format!(
                "hub_url must be an http(s) URL, got {hub_url:?}"
            )));
        }

        let gateway_text = settings.gateway_id.ok_or_else(|| {
            ConfigError(
                "gateway_id is missing (set it in the file, --gateway-id or SCREENING_GATEWAY_ID)"
                    .into(),
            )
        })?;
        let gateway_id = GatewayId::parse(&gateway_text).map_err(|e| ConfigError(e.to_string()))?;

        let credential = secret(
            settings.credential,
            settings.credential_file,
            "the credential is missing: set credential_file, SCREENING_GATEWAY_CREDENTIAL_FILE \
             or SCREENING_GATEWAY_CREDENTIAL",
            "the credential file",
        )?;
        if credential.is_empty() {
            return Err(ConfigError("the credential is empty".into()));
        }

        let transport = settings.transport;
        // Both are checked whichever mode is chosen, so a typo never waits for a mode switch.
        let poll_interval = Duration::from_secs(transport.poll_interval_seconds.unwrap_or(1))
            .max(Duration::from_millis(100));
        // Under the 60 s idle timeout common in proxies; ~72 requests an hour when idle.
        let long_poll_wait =
            Duration::from_secs(transport.long_poll_wait_seconds.unwrap_or(50).clamp(1, 60));
        let fetch = match transport.mode.unwrap_or(TransportMode::LongPoll) {
            TransportMode::Poll => FetchMode::Poll {
                interval: poll_interval,
            },
            TransportMode::LongPoll => FetchMode::LongPoll {
                wait: long_poll_wait,
            },
        };

        let max_attempts = settings.retry.max_attempts.unwrap_or(5);
        if max_attempts < 1 {
            return Err(ConfigError("max_attempts must be at least 1".into()));
        }
        let retry = Backoff {
            base: Duration::from_millis(settings.retry.base_delay_ms.unwrap_or(500)),
            max: Duration::from_millis(settings.retry.max_delay_ms.unwrap_or(60_000)),
        };
        let inbox_path = settings
            .inbox_path
            .unwrap_or_else(|| PathBuf::from("gateway-inbox.db"));
        let heartbeat_interval =
            Duration::from_secs(settings.heartbeat_seconds.unwrap_or(300).max(1));

        let relay = match settings.relay.url {
            None => None,
            Some(url) => {
                let url = url.trim().trim_end_matches('/').to_string();
                if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                    return Err(ConfigError(format!(
                        "the relay url must be ws:// or wss://, got {url:?}"
                    )));
                }
                let required = |value: Option<String>, name: &str| {
                    value.ok_or_else(|| {
                        ConfigError(format!("{name} is required when the relay url is set"))
                    })
                };
                let hybrid_connection = required(
                    settings.relay.hybrid_connection,
                    "relay hybrid_connection (SCREENING_RELAY_HYBRID_CONNECTION)",
                )?;
                let key_name = required(
                    settings.relay.key_name,
                    "relay key_name (SCREENING_RELAY_KEY_NAME)",
                )?;
                let key = secret(
                    settings.relay.key,
                    settings.relay.key_file,
                    "the relay key is missing: set key_file, SCREENING_RELAY_KEY_FILE or \
                     SCREENING_RELAY_KEY",
                    "the relay key file",
                )?;
                Some(RelayEndpoint {
                    base_url: url,
                    hybrid_connection,
                    key_name,
                    key,
                    token_lifetime: Duration::from_secs(3600),
                })
            }
        };

        let worklist = worklist_config(settings.mwl)?;
        let metrics_listen = settings
            .metrics
            .listen
            .map(|listen| {
                listen.trim().parse().map_err(|_| {
                    ConfigError(format!(
                        "[metrics] listen must be an address and port such as 127.0.0.1:9464, got {listen:?}"
                    ))
                })
            })
            .transpose()?;
        let allow = super::AllowList::new(&settings.allow.destinations, settings.allow.spool_dir)
            .map_err(|e| ConfigError(format!("[allow] {e}")))?;

        let signatures = signature_config(settings.signatures)?;
        let destination_auth = settings
            .destination_auth
            .iter()
            .map(|table| super::DestinationAuth::from_settings(table, &allow))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError(format!("[[destination_auth]] {e}")))?;

        Ok(Self {
            destination_auth,
            metrics_listen,
            allow,
            signatures,
            relay,
            worklist,
            hub_url,
            gateway_id,
            credential,
            fetch,
            max_attempts,
            retry,
            hub_backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(30),
            },
            inbox_path,
            heartbeat_interval,
        })
    }
}

/// The `[signatures]` section: every key file read, and `required` only with a key to check by.
fn signature_config(
    settings: SignatureSettings,
) -> Result<screening_core::signing::TrustedHubKeys, ConfigError> {
    let keys = crate::signing::read_public_keys(&settings.hub_key_files)
        .map_err(|e| ConfigError(format!("[signatures] {e}")))?;
    let required = settings.required.unwrap_or(!keys.is_empty());
    if required && keys.is_empty() {
        return Err(ConfigError(
            "[signatures] required is true but no hub_key_files are listed".into(),
        ));
    }
    Ok(screening_core::signing::TrustedHubKeys::new(keys, required))
}

/// The `[mwl]` section checked: an AE title is 1 to 16 characters of printable ASCII, no backslash.
fn worklist_config(mwl: MwlSettings) -> Result<Option<WorklistConfig>, ConfigError> {
    let Some(listen) = mwl.listen else {
        return Ok(None);
    };
    let listen = listen.trim().parse().map_err(|_| {
        ConfigError(format!(
            "[mwl] listen must be an address and port such as 0.0.0.0:4243, got {listen:?}"
        ))
    })?;
    let ae_title = |value: &str, name: &str, empty_ok: bool| {
        let value = value.trim();
        let valid = value.len() <= 16
            && value.chars().all(|c| c.is_ascii_graphic() || c == ' ')
            && !value.contains('\\');
        if (value.is_empty() && !empty_ok) || !valid {
            return Err(ConfigError(format!(
                "[mwl] {name} must be an AE title (1 to 16 ASCII characters, no backslash), got {value:?}"
            )));
        }
        Ok(value.to_string())
    };
    let defaults = crate::worklist::WorklistSettings::default();
    Ok(Some(WorklistConfig {
        listen,
        settings: crate::worklist::WorklistSettings {
            ae_title: ae_title(
                mwl.ae_title.as_deref().unwrap_or(&defaults.ae_title),
                "ae_title",
                false,
            )?,
            allowed_calling_ae_titles: mwl
                .allowed_calling_ae_titles
                .iter()
                .map(|title| ae_title(title, "allowed_calling_ae_titles", false))
                .collect::<Result<_, _>>()?,
            station_ae_title: ae_title(
                mwl.station_ae_title.as_deref().unwrap_or(""),
                "station_ae_title",
                true,
            )?,
        },
    }))
}

/// A secret given directly (environment) or in a file, trimmed.
fn secret(
    value: Option<String>,
    file: Option<PathBuf>,
    missing: &str,
    what: &str,
) -> Result<String, ConfigError> {
    let text = match (value, file) {
        (Some(value), _) => value,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| ConfigError(format!("reading {what} {}: {e}", path.display())))?,
        (None, None) => return Err(ConfigError(missing.into())),
    };
    Ok(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: AgentSettings,
    }

    /// Settings from flags alone (as the environment would give them: same definition).
    fn flags(args: &[&str]) -> AgentSettings {
        Cli::try_parse_from(std::iter::once("agent").chain(args.iter().copied()))
            .unwrap()
            .settings
    }

    const GATEWAY: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";

    fn base() -> Vec<&'static str> {
        vec![
            "--hub-url",
            "http://127.0.0.1:1",
            "--gateway-id",
            GATEWAY,
            "--credential",
            "x",
        ]
    }

    #[test]
    fn a_file_with_command_line_overrides_loads() {
        let dir = tempfile::tempdir().unwrap();
        let credential = dir.path().join("credential");
        std::fs::write(&credential, "sgw_secret\n").unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(
            &file,
            format!(
                "hub_url = \"https://hub.example/\"\ngateway_id = \"{GATEWAY}\"\ncredential_file = \"{}\"\n\
                 [transport]\nmode = \"poll\"\npoll_interval_seconds = 2\n[retry]\nmax_attempts = 3\n",
                credential.display()
            ),
        )
        .unwrap();
        let settings =
            flags(&["--poll-interval-seconds", "5"]).or(AgentSettings::from_file(&file).unwrap());
        let config = AgentConfig::from_settings(settings).unwrap();
        assert_eq!(config.hub_url, "https://hub.example");
        assert_eq!(config.credential, "sgw_secret");
        assert_eq!(
            config.fetch,
            FetchMode::Poll {
                interval: Duration::from_secs(5)
            }
        );
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.heartbeat_interval, Duration::from_secs(300));
        assert!(!format!("{config:?}").contains("sgw_secret"));
    }

    #[test]
    fn hub_keys_come_from_files_and_listing_one_requires_signatures() {
        let none = AgentConfig::from_settings(flags(&base())).unwrap();
        assert!(!none.signatures.checks(), "no keys: nothing checked");

        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (
            crate::signing::generate_signing_key(),
            crate::signing::generate_signing_key(),
        );
        let old_file = dir.path().join("old.pem.pub");
        let new_file = dir.path().join("new.pem.pub");
        std::fs::write(&old_file, old.public_key().to_pem()).unwrap();
        std::fs::write(&new_file, new.public_key().to_pem()).unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(
            &file,
            format!(
                "[signatures]\nhub_key_files = [\"{}\", \"{}\"]\n",
                old_file.display(),
                new_file.display()
            ),
        )
        .unwrap();
        let rotating =
            AgentConfig::from_settings(flags(&base()).or(AgentSettings::from_file(&file).unwrap()))
                .unwrap();
        assert!(rotating.signatures.required());
        let mut ids: Vec<_> = rotating.signatures.key_ids().cloned().collect();
        let mut expected = vec![old.id().clone(), new.id().clone()];
        ids.sort();
        expected.sort();
        assert_eq!(ids, expected);

        let mut optional = base();
        let listed = format!("{}", new_file.display());
        optional.extend(["--hub-key-files", &listed, "--require-signatures", "false"]);
        let optional = AgentConfig::from_settings(flags(&optional)).unwrap();
        assert!(optional.signatures.checks() && !optional.signatures.required());

        let mut keyless = base();
        keyless.extend(["--require-signatures", "true"]);
        let error = AgentConfig::from_settings(flags(&keyless)).unwrap_err();
        assert!(error.to_string().contains("no hub_key_files"), "{error}");

        let mut missing = base();
        missing.extend(["--hub-key-files", "/nonexistent/hub.pem.pub"]);
        let error = AgentConfig::from_settings(flags(&missing)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("[signatures] hub key /nonexistent/hub.pem.pub"),
            "{error}"
        );
    }

    #[test]
    fn the_allow_list_comes_from_the_file_or_the_flags_and_nothing_is_allowed_by_default() {
        let nothing = AgentConfig::from_settings(flags(&base())).unwrap();
        assert_eq!(nothing.allow, super::super::AllowList::default());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(
            &file,
            "[allow]\ndestinations = [\"https://ris.example.nhs.uk/fhir/\"]\nspool_dir = \"/var/spool/screening\"\n",
        )
        .unwrap();
        let from_file =
            AgentConfig::from_settings(flags(&base()).or(AgentSettings::from_file(&file).unwrap()))
                .unwrap();
        assert_eq!(from_file.allow.url_prefixes.len(), 1);
        assert_eq!(
            from_file.allow.spool_dir.as_deref(),
            Some(std::path::Path::new("/var/spool/screening"))
        );
        let mut overridden = base();
        overridden.extend([
            "--allow-destinations",
            "https://a.example/x,https://b.example/",
        ]);
        let from_flags = AgentConfig::from_settings(
            flags(&overridden).or(AgentSettings::from_file(&file).unwrap()),
        )
        .unwrap();
        assert_eq!(from_flags.allow.url_prefixes.len(), 2, "the flags win");

        let mut bad = base();
        bad.extend(["--spool-dir", "relative/spool"]);
        let error = AgentConfig::from_settings(flags(&bad)).unwrap_err();
        assert!(
            error.to_string().contains("[allow] spool directory"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_hub_url_is_named() {
        let error = AgentConfig::from_settings(flags(&["--gateway-id", GATEWAY])).unwrap_err();
        assert!(error.to_string().contains("hub_url is missing"), "{error}");
    }

    #[test]
    fn a_missing_credential_is_named() {
        let error = AgentConfig::from_settings(flags(&[
            "--hub-url",
            "http://127.0.0.1:1",
            "--gateway-id",
            GATEWAY,
        ]))
        .unwrap_err();
        assert!(
            error.to_string().contains("credential is missing"),
            "{error}"
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_setting_named() {
        let parse = |extra: &[&str]| {
            let mut args = base();
            args.extend_from_slice(extra);
            Cli::try_parse_from(std::iter::once("agent").chain(args)).map(|cli| cli.settings)
        };
        let error = parse(&["--transport", "push"]).err().unwrap().to_string();
        assert!(
            error.contains("--transport") && error.contains("long-poll"),
            "{error}"
        );
        let error = parse(&["--poll-interval-seconds", "soon"])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("--poll-interval-seconds"), "{error}");
        let error = AgentConfig::from_settings(flags(&[
            "--hub-url",
            "http://127.0.0.1:1",
            "--gateway-id",
            "gw-1",
        ]))
        .unwrap_err()
        .to_string();
        assert!(error.contains("gateway id must be a UUID"), "{error}");
    }

    #[test]
    fn relay_settings_are_complete_or_refused() {
        let mut args = base();
        args.extend(["--relay-url", "ws://127.0.0.1:9400"]);
        let error = AgentConfig::from_settings(flags(&args)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("SCREENING_RELAY_HYBRID_CONNECTION"),
            "{error}"
        );
        args.extend([
            "--relay-hybrid-connection",
            "leeds",
            "--relay-key-name",
            "listen",
            "--relay-key",
            "secret",
        ]);
        let relay = AgentConfig::from_settings(flags(&args))
            .unwrap()
            .relay
            .unwrap();
        assert_eq!(
            (relay.hybrid_connection.as_str(), relay.key.as_str()),
            ("leeds", "secret")
        );
        assert!(!format!("{relay:?}").contains("secret"));
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, "hub_ulr = \"https://x\"\n").unwrap();
        let error = AgentSettings::from_file(&file).unwrap_err();
        assert!(error.to_string().contains("hub_ulr"), "{error}");
    }

    #[test]
    fn secrets_are_not_toml_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, "credential = \"sgw_x\"\n").unwrap();
        assert!(AgentSettings::from_file(&file).is_err());
    }

    #[test]
    fn metrics_are_served_only_with_a_listen_address_from_the_file_or_the_flag() {
        assert!(AgentConfig::from_settings(flags(&base()))
            .unwrap()
            .metrics_listen
            .is_none());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, "[metrics]\nlisten = \"127.0.0.1:9464\"\n").unwrap();
        let settings = flags(&base()).or(AgentSettings::from_file(&file).unwrap());
        assert_eq!(
            AgentConfig::from_settings(settings).unwrap().metrics_listen,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        let mut args = base();
        args.extend_from_slice(&["--metrics-listen", "9464"]);
        let error = AgentConfig::from_settings(flags(&args))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("[metrics] listen must be an address and port"),
            "{error}"
        );
    }

    #[test]
    fn the_worklist_is_served_only_with_a_listen_address_and_checks_its_ae_titles() {
        assert!(AgentConfig::from_settings(flags(&base()))
            .unwrap()
            .worklist
            .is_none());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(
            &file,
            "[mwl]\nlisten = \"127.0.0.1:4243\"\nallowed_calling_ae_titles = [\"MAMMO1\", \"MAMMO2\"]\n\
             station_ae_title = \"MAMMO1\"\n",
        )
        .unwrap();
        let settings = flags(&base()).or(AgentSettings::from_file(&file).unwrap());
        let worklist = AgentConfig::from_settings(settings)
            .unwrap()
            .worklist
            .unwrap();
        assert_eq!(worklist.listen, "127.0.0.1:4243".parse().unwrap());
        assert_eq!(worklist.settings.ae_title, "SCREENING_MWL");
        assert_eq!(
            worklist.settings.allowed_calling_ae_titles,
            ["MAMMO1", "MAMMO2"]
        );
        assert_eq!(worklist.settings.station_ae_title, "MAMMO1");

        let refused = |extra: &[&'static str]| {
            let mut args = base();
            args.extend_from_slice(extra);
            AgentConfig::from_settings(flags(&args))
                .unwrap_err()
                .to_string()
        };
        let error = refused(&["--mwl-listen", "4243"]);
        assert!(error.contains("[mwl] listen"), "{error}");
        let error = refused(&[
            "--mwl-listen",
            "127.0.0.1:4243",
            "--mwl-ae-title",
            "A_TITLE_LONGER_THAN_16",
        ]);
        assert!(error.contains("[mwl] ae_title"), "{error}");
        let error = refused(&[
            "--mwl-listen",
            "127.0.0.1:4243",
            "--mwl-allowed-calling-ae-titles",
            "MAMMO1,",
        ]);
        assert!(error.contains("allowed_calling_ae_titles"), "{error}");
    }
}
