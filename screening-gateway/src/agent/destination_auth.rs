//! How the agent proves who it is to a destination, configured at the agent (never by the hub):
//! a bearer token read from a file, and/or a client certificate for mutual TLS, for the
//! destinations under one URL prefix. A RIS order endpoint can then tell this gateway from anyone
//! else on the hospital network. Credentials go only to URLs under their prefix.
//!
//! ```toml
//! [[destination_auth]]
//! prefix = "https://ris.example.nhs.uk/fhir/"
//! bearer_token_file = "/etc/screening/ris.token"          # mode 600
//! client_certificate_file = "/etc/screening/gateway.pem"  # mutual TLS: chain, then
//! client_key_file = "/etc/screening/gateway.key"          # its key (mode 600)
//! ca_file = "/etc/screening/hospital-ca.pem"              # a private CA the server's cert is from
//! ```

use std::path::{Path, PathBuf};

use reqwest::Url;
use serde::Deserialize;

use super::allow::{under, AllowList};
use crate::signing::read_private_file;

/// One `[[destination_auth]]` table, as the configuration file gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationAuthSettings {
    /// The destinations these credentials are for: http(s) URLs under this prefix.
    pub prefix: String,
    /// A file holding the bearer token sent as `Authorization: Bearer …`; read at every send, so a
    /// rotated token is used without a restart.
    pub bearer_token_file: Option<PathBuf>,
    /// PEM certificate chain presented for mutual TLS (with `client_key_file`).
    pub client_certificate_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key_file: Option<PathBuf>,
    /// PEM certificate(s) of a private CA to trust for these destinations, besides the public roots.
    pub ca_file: Option<PathBuf>,
}

/// Checked credentials for the destinations under `prefix`.
#[derive(Clone)]
pub struct DestinationAuth {
    /// The destinations they apply to.
    pub prefix: Url,
    /// Where the bearer token is read from at each send.
    pub bearer_token_file: Option<PathBuf>,
    /// The client certificate and key, for mutual TLS.
    pub identity: Option<reqwest::Identity>,
    /// Extra trusted roots.
    pub authorities: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for DestinationAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationAuth")
            .field("prefix", &self.prefix.as_str())
            .field("bearer_token_file", &self.bearer_token_file)
            .field("client_certificate", &self.identity.is_some())
            .field("authorities", &self.authorities.len())
            .finish()
    }
}

impl DestinationAuth {
    /// Reads and checks one table's files now, so a missing file or a key others can read stops
    /// the agent at start rather than failing its first order. Its prefix must be one `allow`
    /// permits: credentials for a destination the agent may not use are a mistake.
    pub fn from_settings(
        settings: &DestinationAuthSettings,
        allow: &AllowList,
    ) -> Result<Self, String> {
        let prefix = Url::parse(settings.prefix.trim())
            .map_err(|e| format!("prefix {:?}: {e}", settings.prefix))?;
        if !matches!(prefix.scheme(), "http" | "https") || prefix.host().is_none() {
            return Err(format!(
                "prefix {:?}: an http:// or https:// URL with a host",
                settings.prefix
            ));
        }
        if !allow
            .url_prefixes
            .iter()
            .any(|allowed| under(&prefix, allowed))
        {
            return Err(format!(
                "prefix {:?} is not under any [allow] destinations prefix",
                settings.prefix
            ));
        }
        if let Some(path) = &settings.bearer_token_file {
            read_bearer_token(path)?;
        }
        let identity = match (&settings.client_certificate_file, &settings.client_key_file) {
            (None, None) => None,
            (Some(certificate), Some(key)) => Some(read_identity(certificate, key)?),
            _ => {
                return Err(format!(
                    "prefix {:?}: client_certificate_file and client_key_file go together",
                    settings.prefix
                ))
            }
        };
        if prefix.scheme() == "http" && identity.is_some() {
            return Err(format!(
                "prefix {:?}: a client certificate needs an https:// prefix",
                settings.prefix
            ));
        }
        let authorities = match &settings.ca_file {
            None => Vec::new(),
            Some(path) => {
                let pem =
                    std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?
            }
        };
        if settings.bearer_token_file.is_none() && identity.is_none() && authorities.is_empty() {
            return Err(format!(
                "prefix {:?}: name a bearer_token_file, a client certificate or a ca_file",
                settings.prefix
            ));
        }
        Ok(Self {
            prefix,
            bearer_token_file: settings.bearer_token_file.clone(),
            identity,
            authorities,
        })
    }

    /// Whether these credentials are for `url`.
    pub fn applies_to(&self, url: &Url) -> bool {
        under(url, &self.prefix)
    }
}

/// The token in `path`, trimmed: one line, owner-only, usable as a header value.
pub fn read_bearer_token(path: &Path) -> Result<String, String> {
    let what = format!("bearer_token_file {}", path.display());
    let token = read_private_file(path, &what)?.trim().to_string();
    if token.is_empty() {
        return Err(format!("{what}: empty"));
    }
    if token.contains(['\r', '\n']) || reqwest::header::HeaderValue::from_str(&token).is_err() {
        return Err(format!(
            "{what}: not one line of printable text (a token goes in an HTTP header)"
        ));
    }
    Ok(token)
}

fn read_identity(certificate: &Path, key: &Path) -> Result<reqwest::Identity, String> {
    let mut pem = std::fs::read(certificate)
        .map_err(|e| format!("client_certificate_file {}: {e}", certificate.display()))?;
    let what = format!("client_key_file {}", key.display());
    pem.push(b'\n');
    pem.extend_from_slice(read_private_file(key, &what)?.as_bytes());
    reqwest::Identity::from_pem(&pem).map_err(|e| {
        format!(
            "client_certificate_file {} with {what}: {e}",
            certificate.display()
        )
    })
}
