//! Gateways, their transports and their routes (message type → destination).
//!
//! Destinations are configured here, centrally, per gateway; the gateway at the edge only follows them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{GatewayId, SettingId};
use crate::message::MessageType;

/// Where a gateway forwards a message: `http(s)://…` (POST), `file:///folder` (one file per message),
/// `log:` (a structured log line with the NHS number masked) or `mwl:` (the gateway's own DICOM
/// Modality Worklist, which the mammography machines query).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Destination(String);

/// Why a destination URI is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// Empty, or no `scheme:` at the start.
    #[error(
        "a destination is a URI such as https://host/path, file:///folder, log: or mwl:; got {0:?}"
    )]
    NotAUri(String),
    /// A scheme the gateway cannot forward to.
    #[error("destination scheme {0:?} is not supported; use http, https, file, log or mwl")]
    UnsupportedScheme(String),
    /// `http(s)://` without a host, or `file:` without an absolute path.
    #[error("destination {0:?} is incomplete: http(s) needs a host, file needs an absolute path (file:///folder)")]
    Incomplete(String),
}

impl Destination {
    /// Parses and checks a destination URI.
    pub fn parse(input: &str) -> Result<Self, DestinationError> {
        let uri = input.trim();
        let shown = || uri.chars().take(200).collect::<String>();
        let (scheme, rest) = uri
            .split_once(':')
            .filter(|(scheme, _)| {
                !scheme.is_empty()
                    && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            })
            .ok_or_else(|| DestinationError::NotAUri(shown()))?;
        match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" => {
                let host = rest.strip_prefix("//").unwrap_or("");
                if host.is_empty() || host.starts_with('/') {
                    return Err(DestinationError::Incomplete(shown()));
                }
            }
            "file" => {
                if !rest.starts_with("///") || rest.len() <= 3 {
                    return Err(DestinationError::Incomplete(shown()));
                }
            }
            "log" | "mwl" => {}
            _ => return Err(DestinationError::UnsupportedScheme(scheme.to_string())),
        }
        Ok(Self(uri.to_string()))
    }

    /// The URI as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scheme in lower case (`https`, `file`, `log`).
    pub fn scheme(&self) -> String {
        self.0
            .split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
            .unwrap_or_default()
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Destination {
    type Err = DestinationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Destination {
    type Error = DestinationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Destination> for String {
    fn from(value: Destination) -> Self {
        value.0
    }
}

/// Where a secret is kept, never the secret itself: `env:NAME` or `file:/absolute/path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SecretRef {
    /// An environment variable of the process that needs the secret.
    Env(String),
    /// A file readable by the process that needs the secret.
    File(String),
}

/// The secret reference is not `env:NAME` or `file:/path`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a key reference is env:VARIABLE_NAME or file:/absolute/path, got {0:?}")]
pub struct SecretRefError(pub String);

impl FromStr for SecretRef {
    type Err = SecretRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || SecretRefError(s.chars().take(200).collect());
        match s.split_once(':') {
            Some(("env", name))
                if !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                Ok(SecretRef::Env(name.to_string()))
            }
            Some(("file", path)) if path.starts_with('/') => Ok(SecretRef::File(path.to_string())),
            _ => Err(error()),
        }
    }
}

/// A secret reference the hub may not read: outside its fence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutsideTheFence(pub String);

impl SecretRef {
    /// The prefix of every environment variable a reference may name, so a gateway's settings can
    /// never make the hub read (and send) its other variables, such as `DATABASE_URL`.
    pub const ENV_PREFIX: &'static str = "SCREENING_SECRET_";

    /// Whether the hub may read this reference: an environment variable named with
    /// [`SecretRef::ENV_PREFIX`], or a file inside `secrets_dir` (by the path's words, with no
    /// `..`; whoever reads the file checks again once links are followed).
    pub fn check_fence(
        &self,
        secrets_dir: Option<&std::path::Path>,
    ) -> Result<(), OutsideTheFence> {
        match self {
            SecretRef::Env(name) if name.starts_with(Self::ENV_PREFIX) => Ok(()),
            SecretRef::Env(name) => Err(OutsideTheFence(format!(
                "a key reference may name only environment variables that start with {}, not {name}",
                Self::ENV_PREFIX
            ))),
            SecretRef::File(path) => {
                let path = std::path::Path::new(path);
                let Some(dir) = secrets_dir else {
                    return Err(OutsideTheFence(
                        "file: key references need the hub's secrets directory (--secrets-dir)"
                            .into(),
                    ));
                };
                let climbs = path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir));
                if climbs || !path.starts_with(dir) {
                    return Err(OutsideTheFence(format!(
                        "a key file must be inside the secrets directory {}",
                        dir.display()
                    )));
                }
                Ok(())
            }
        }
    }
}

impl TryFrom<String> for SecretRef {
    type Error = SecretRefError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<SecretRef> for String {
    fn from(value: SecretRef) -> Self {
        value.to_string()
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::File(path) => write!(f, "file:{path}"),
        }
    }
}

/// An Azure Relay Hybrid Connection that the gateway listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayTransport {
    /// The namespace host, e.g. `contoso.servicebus.windows.net` or `127.0.0.1:9400` for the local relay.
    pub namespace: String,
    /// The hybrid connection's name (its path).
    pub hybrid_connection: String,
    /// The SAS rule's key name.
    pub key_name: String,
    /// Where the hub finds the SAS key.
    pub key_ref: SecretRef,
}

/// How messages reach a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transport {
    /// The gateway polls (or long-polls) the hub over HTTPS.
    Polling,
    /// The hub pushes through an Azure Relay Hybrid Connection on which the gateway listens.
    Relay(RelayTransport),
}

impl Transport {
    /// `polling` or `relay`, as stored.
    pub const fn kind(&self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::Relay(_) => "relay",
        }
    }
}

/// Messages of `message_type` go to `destination`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The kind of message.
    pub message_type: MessageType,
    /// Where the gateway forwards it.
    pub destination: Destination,
}

/// A gateway process inside a hospital network and its central configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gateway {
    /// Our identifier.
    pub id: GatewayId,
    /// Display name.
    pub name: String,
    /// The setting whose modalities it serves.
    pub setting_id: SettingId,
    /// How messages reach it.
    pub transport: Transport,
    /// One destination per message type.
    pub routes: Vec<Route>,
}

/// The gateway has no route for a message type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gateway {gateway_name:?} has no route for message type {message_type}; add one in the gateway's settings")]
pub struct NoRoute {
    /// The gateway's id.
    pub gateway_id: GatewayId,
    /// The gateway's name, for the message.
    pub gateway_name: String,
    /// The type that has no route.
    pub message_type: MessageType,
}

impl Gateway {
    /// The destination for `message_type`, or a typed error naming the gap.
    pub fn destination_for(&self, message_type: &MessageType) -> Result<&Destination, NoRoute> {
        self.routes
            .iter()
            .find(|route| &route.message_type == message_type)
            .map(|route| &route.destination)
            .ok_or_else(|| NoRoute {
                gateway_id: self.id,
                gateway_name: self.name.clone(),
                message_type: message_type.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_supported_destination_forms_parse() {
        for uri in [
            "https://pacs.example.nhs.uk/fhir/ServiceRequest",
            "http://127.0.0.1:8080/orders",
            "file:///var/spool/orders",
            "log:",
        ] {
            assert!(Destination::parse(uri).is_ok(), "{uri}");
        }
        assert_eq!(Destination::parse("HTTPS://x").unwrap().scheme(), "https");
    }

    #[test]
    fn a_destination_without_a_scheme_is_not_a_uri() {
        assert!(matches!(
            Destination::parse("pacs.local/orders"),
            Err(DestinationError::NotAUri(_))
        ));
        assert!(matches!(
            Destination::parse(""),
            Err(DestinationError::NotAUri(_))
        ));
    }

    #[test]
    fn an_unknown_scheme_is_named_in_the_error() {
        assert_eq!(
            Destination::parse("ftp://host/x"),
            Err(DestinationError::UnsupportedScheme("ftp".into()))
        );
    }

    #[test]
    fn http_without_a_host_and_relative_files_are_incomplete() {
        assert!(matches!(
            Destination::parse("https://"),
            Err(DestinationError::Incomplete(_))
        ));
        assert!(matches!(
            Destination::parse("file:orders"),
            Err(DestinationError::Incomplete(_))
        ));
    }

    #[test]
    fn a_secret_reference_names_where_the_key_is_not_the_key() {
        assert_eq!(
            "env:RELAY_KEY".parse(),
            Ok(SecretRef::Env("RELAY_KEY".into()))
        );
        assert_eq!(
            "file:/etc/relay.key".parse(),
            Ok(SecretRef::File("/etc/relay.key".into()))
        );
        assert!("MDEyMzQ1Njc4OWFi".parse::<SecretRef>().is_err());
        assert!("file:relative".parse::<SecretRef>().is_err());
    }

    #[test]
    fn the_hub_reads_only_fenced_secrets() {
        let dir = std::path::Path::new("/run/secrets/screening");
        let inside = |text: &str, dir| text.parse::<SecretRef>().unwrap().check_fence(dir);
        assert!(inside("env:SCREENING_SECRET_LEEDS_SEND_KEY", None).is_ok());
        assert!(inside("env:DATABASE_URL", Some(dir))
            .unwrap_err()
            .to_string()
            .contains("start with SCREENING_SECRET_"));
        assert!(inside("env:SCREENING_ADMIN_PASSWORD", Some(dir)).is_err());
        assert!(inside("file:/run/secrets/screening/leeds.key", Some(dir)).is_ok());
        assert!(inside("file:/run/secrets/screening/leeds.key", None).is_err());
        assert!(inside("file:/etc/shadow", Some(dir)).is_err());
        assert!(inside("file:/run/secrets/screening/../../../etc/shadow", Some(dir)).is_err());
        assert!(inside("file:/run/secrets/screening-other/k", Some(dir)).is_err());
    }
}
