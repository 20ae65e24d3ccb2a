//! The agent's settings: a TOML file, overridden by environment variables. The credential comes from
//! a file or the environment, never from the command line (where `ps` would show it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use screening_core::ids::GatewayId;
use serde::Deserialize;

use crate::backoff::Backoff;
use crate::relay::client::RelayEndpoint;

/// The settings `screening-gateway run --help` documents.
pub const SETTINGS_HELP: &str = "\
Settings (TOML key / environment variable, the environment wins):
  hub_url                         SCREENING_HUB_URL                   the hub's base URL, e.g. https://screening.example.nhs.uk (required)
  gateway_id                      SCREENING_GATEWAY_ID                this gateway's id, a UUID (required)
  credential_file                 SCREENING_GATEWAY_CREDENTIAL_FILE   file holding the gateway credential
  (none)                          SCREENING_GATEWAY_CREDENTIAL        the credential itself (one of the two is required)
  inbox_path                      SCREENING_INBOX_PATH                the durable inbox file (default ./gateway-inbox.db)
  [transport] mode                SCREENING_TRANSPORT                 long-poll (default) or poll
  [transport] poll_interval_seconds   SCREENING_POLL_INTERVAL_SECONDS     seconds between polls in poll mode (default 1)
  [transport] long_poll_wait_seconds  SCREENING_LONG_POLL_WAIT_SECONDS    seconds the hub may hold a long-poll (default 50, max 60)
  [retry] max_attempts            SCREENING_MAX_FORWARD_ATTEMPTS      forwarding attempts before a message is reported failed (default 5)
  [retry] base_delay_ms           SCREENING_RETRY_BASE_MS             first retry delay, doubled each time, with jitter (default 500)
  [retry] max_delay_ms            SCREENING_RETRY_MAX_MS              longest retry delay (default 60000)
  heartbeat_seconds               SCREENING_HEARTBEAT_SECONDS         seconds between heartbeats to the hub (default 300)
  [relay] url                     SCREENING_RELAY_URL                 also listen for pushed messages on an Azure Relay Hybrid Connection:
                                                                      wss://NAMESPACE.servicebus.windows.net, or ws://127.0.0.1:PORT for the local relay
  [relay] hybrid_connection       SCREENING_RELAY_HYBRID_CONNECTION   the hybrid connection's name (required with url)
  [relay] key_name                SCREENING_RELAY_KEY_NAME            the SAS rule's name, with the Listen right (required with url)
  [relay] key_file                SCREENING_RELAY_KEY_FILE            file holding the SAS key
  (none)                          SCREENING_RELAY_KEY                 the SAS key itself (one of the two is required with url)
";

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    hub_url: Option<String>,
    gateway_id: Option<String>,
    credential_file: Option<PathBuf>,
    inbox_path: Option<PathBuf>,
    heartbeat_seconds: Option<u64>,
    #[serde(default)]
    transport: TransportSection,
    #[serde(default)]
    retry: RetrySection,
    #[serde(default)]
    relay: RelaySection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelaySection {
    url: Option<String>,
    hybrid_connection: Option<String>,
    key_name: Option<String>,
    key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransportSection {
    mode: Option<String>,
    poll_interval_seconds: Option<u64>,
    long_poll_wait_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetrySection {
    max_attempts: Option<u32>,
    base_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
}

impl AgentConfig {
    /// Reads the optional TOML file, then applies `env` (a lookup such as `std::env::var`).
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let parsed: FileConfig = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("reading {}: {e}", path.display())))?;
                toml::from_str(&text)
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?
            }
            None => FileConfig::default(),
        };
        let number =
            |name: &str, file_value: Option<u64>, default: u64| -> Result<u64, ConfigError> {
                match env(name) {
                    Some(text) => text.trim().parse().map_err(|_| {
                        ConfigError(format!("{name} must be a whole number, got {text:?}"))
                    }),
                    None => Ok(file_value.unwrap_or(default)),
                }
            };

        let hub_url = env("SCREENING_HUB_URL").or(parsed.hub_url).ok_or_else(|| {
            ConfigError("hub_url is missing (set it in the file or SCREENING_HUB_URL)".into())
        })?;
        let hub_url = hub_url.trim().trim_end_matches('/').to_string();
        if !(hub_url.starts_with("http://") || hub_url.starts_with("https://"))
            || hub_url.len() < 10
        {
            return Err(ConfigError(format!(
                "hub_url must be an http(s) URL, got {hub_url:?}"
            )));
        }

        let gateway_text = env("SCREENING_GATEWAY_ID")
            .or(parsed.gateway_id)
            .ok_or_else(|| {
                ConfigError(
                    "gateway_id is missing (set it in the file or SCREENING_GATEWAY_ID)".into(),
                )
            })?;
        let gateway_id = GatewayId::parse(&gateway_text).map_err(|e| ConfigError(e.to_string()))?;

        let credential = match env("SCREENING_GATEWAY_CREDENTIAL") {
            Some(value) => value,
            None => {
                let path = env("SCREENING_GATEWAY_CREDENTIAL_FILE")
                    .map(PathBuf::from)
                    .or(parsed.credential_file)
                    .ok_or_else(|| {
                        ConfigError(
                            "the credential is missing: set credential_file, SCREENING_GATEWAY_CREDENTIAL_FILE \
                             or SCREENING_GATEWAY_CREDENTIAL"
                                .into(),
                        )
                    })?;
                std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError(format!(
                        "reading the credential file {}: {e}",
                        path.display()
                    ))
                })?
            }
        };
        let credential = credential.trim().to_string();
        if credential.is_empty() {
            return Err(ConfigError("the credential is empty".into()));
        }

        let mode = env("SCREENING_TRANSPORT")
            .or(parsed.transport.mode)
            .unwrap_or_else(|| "long-poll".into());
        // Both are checked whichever mode is chosen, so a typo never waits for a mode switch.
        let poll_interval = Duration::from_secs(number(
            "SCREENING_POLL_INTERVAL_SECONDS",
            parsed.transport.poll_interval_seconds,
            1,
        )?)
        .max(Duration::from_millis(100));
        let long_poll_wait = Duration::from_secs(
            number(
                "SCREENING_LONG_POLL_WAIT_SECONDS",
                parsed.transport.long_poll_wait_seconds,
                // Under the 60 s idle timeout common in proxies; ~72 requests an hour when idle.
                50,
            )?
            .clamp(1, 60),
        );
        let fetch = match mode.trim() {
            "poll" => FetchMode::Poll {
                interval: poll_interval,
            },
            "long-poll" => FetchMode::LongPoll {
                wait: long_poll_wait,
            },
            other => {
                return Err(ConfigError(format!(
                    "transport mode must be poll or long-poll, got {other:?}"
                )))
            }
        };

        let max_attempts = number(
            "SCREENING_MAX_FORWARD_ATTEMPTS",
            parsed.retry.max_attempts.map(u64::from),
            5,
        )?;
        let max_attempts = u32::try_from(max_attempts)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ConfigError("max_attempts must be at least 1".into()))?;
        let retry = Backoff {
            base: Duration::from_millis(number(
                "SCREENING_RETRY_BASE_MS",
                parsed.retry.base_delay_ms,
                500,
            )?),
            max: Duration::from_millis(number(
                "SCREENING_RETRY_MAX_MS",
                parsed.retry.max_delay_ms,
                60_000,
            )?),
        };
        let inbox_path = env("SCREENING_INBOX_PATH")
            .map(PathBuf::from)
            .or(parsed.inbox_path)
            .unwrap_or_else(|| PathBuf::from("gateway-inbox.db"));
        let heartbeat_interval = Duration::from_secs(
            number("SCREENING_HEARTBEAT_SECONDS", parsed.heartbeat_seconds, 300)?.max(1),
        );

        let relay = match env("SCREENING_RELAY_URL").or(parsed.relay.url) {
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
                    env("SCREENING_RELAY_HYBRID_CONNECTION").or(parsed.relay.hybrid_connection),
                    "relay hybrid_connection (SCREENING_RELAY_HYBRID_CONNECTION)",
                )?;
                let key_name = required(
                    env("SCREENING_RELAY_KEY_NAME").or(parsed.relay.key_name),
                    "relay key_name (SCREENING_RELAY_KEY_NAME)",
                )?;
                let key = match env("SCREENING_RELAY_KEY") {
                    Some(key) => key,
                    None => {
                        let path = env("SCREENING_RELAY_KEY_FILE")
                            .map(PathBuf::from)
                            .or(parsed.relay.key_file)
                            .ok_or_else(|| {
                                ConfigError("the relay key is missing: set key_file, SCREENING_RELAY_KEY_FILE or SCREENING_RELAY_KEY".into())
                            })?;
                        std::fs::read_to_string(&path).map_err(|e| {
                            ConfigError(format!(
                                "reading the relay key file {}: {e}",
                                path.display()
                            ))
                        })?
                    }
                };
                Some(RelayEndpoint {
                    base_url: url,
                    hybrid_connection,
                    key_name,
                    key: key.trim().to_string(),
                    token_lifetime: Duration::from_secs(3600),
                })
            }
        };

        Ok(Self {
            relay,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const GATEWAY: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";

    #[test]
    fn a_file_with_environment_overrides_loads() {
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
        let config = AgentConfig::load(
            Some(&file),
            env(&[("SCREENING_POLL_INTERVAL_SECONDS", "5")]),
        )
        .unwrap();
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
    fn a_missing_hub_url_is_named() {
        let error = AgentConfig::load(None, env(&[("SCREENING_GATEWAY_ID", GATEWAY)])).unwrap_err();
        assert!(error.to_string().contains("hub_url is missing"), "{error}");
    }

    #[test]
    fn a_missing_credential_is_named() {
        let error = AgentConfig::load(
            None,
            env(&[
                ("SCREENING_HUB_URL", "http://127.0.0.1:1"),
                ("SCREENING_GATEWAY_ID", GATEWAY),
            ]),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("credential is missing"),
            "{error}"
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_setting_named() {
        let base = [
            ("SCREENING_HUB_URL", "http://127.0.0.1:1"),
            ("SCREENING_GATEWAY_ID", GATEWAY),
            ("SCREENING_GATEWAY_CREDENTIAL", "x"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            AgentConfig::load(None, env(&pairs))
                .unwrap_err()
                .to_string()
        };
        assert!(with(("SCREENING_TRANSPORT", "push")).contains("poll or long-poll"));
        assert!(with(("SCREENING_POLL_INTERVAL_SECONDS", "soon"))
            .contains("SCREENING_POLL_INTERVAL_SECONDS"));
        assert!(with(("SCREENING_GATEWAY_ID", "gw-1")).contains("gateway id must be a UUID"));
    }

    #[test]
    fn relay_settings_are_complete_or_refused() {
        let base = [
            ("SCREENING_HUB_URL", "http://127.0.0.1:1"),
            ("SCREENING_GATEWAY_ID", GATEWAY),
            ("SCREENING_GATEWAY_CREDENTIAL", "x"),
            ("SCREENING_RELAY_URL", "ws://127.0.0.1:9400"),
        ];
        let error = AgentConfig::load(None, env(&base)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("SCREENING_RELAY_HYBRID_CONNECTION"),
            "{error}"
        );
        let mut complete = base.to_vec();
        complete.extend([
            ("SCREENING_RELAY_HYBRID_CONNECTION", "leeds"),
            ("SCREENING_RELAY_KEY_NAME", "listen"),
            ("SCREENING_RELAY_KEY", "secret"),
        ]);
        let relay = AgentConfig::load(None, env(&complete))
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
        let error = AgentConfig::load(Some(&file), env(&[])).unwrap_err();
        assert!(error.to_string().contains("hub_ulr"), "{error}");
    }
}
