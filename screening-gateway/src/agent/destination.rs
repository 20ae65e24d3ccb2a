//! Forwarding a message to its destination, chosen by the destination URI's scheme:
//! `http(s)://` POSTs the payload, `file:///folder` writes one file per message id atomically,
//! `log:` writes a structured line with the NHS number masked.

use std::path::Path;
use std::time::Duration;

use screening_core::prelude::*;

use screening_core::worklist::WorklistOrder;

use super::allow::{folder_of, AllowList};
use super::destination_auth::{read_bearer_token, DestinationAuth};
use super::http_text::{destination_reason, error_chain};
use crate::worklist::WorklistStore;

/// How long a destination may take to answer one POST.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Forwards messages; holds the HTTP client so connections are reused, and the worklist when the
/// gateway serves one.
#[derive(Clone)]
pub struct Forwarder {
    http: reqwest::Client,
    /// Credentials and the client that presents them, for the URLs under each prefix (first
    /// match); other URLs go through `http`, with no credentials.
    authenticated: Vec<(DestinationAuth, reqwest::Client)>,
    worklist: Option<(WorklistStore, String)>,
    allow: AllowList,
}

/// Why a message was not forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// It may work later: the destination was unreachable, slow or answered with an error.
    #[error("{0}")]
    Failed(String),
    /// It never will: this agent's configuration does not allow the destination.
    #[error("{0}")]
    NotAllowed(String),
}

impl ForwardError {
    /// Whether trying again could help.
    pub fn may_succeed_later(&self) -> bool {
        matches!(self, ForwardError::Failed(_))
    }
}

impl Forwarder {
    /// A forwarder with its own connection pool, forwarding only where `allow` permits.
    pub fn new(allow: AllowList) -> Self {
        let http = http_client()
            .build()
            .expect("the HTTP client with no credentials builds");
        Self {
            http,
            authenticated: Vec::new(),
            worklist: None,
            allow,
        }
    }

    /// A forwarder that presents `credentials` to the destinations under their prefixes.
    pub fn with_destination_auth(self, credentials: &[DestinationAuth]) -> Result<Self, String> {
        let authenticated = credentials
            .iter()
            .map(|auth| {
                let mut builder = http_client();
                if let Some(identity) = &auth.identity {
                    builder = builder.identity(identity.clone());
                }
                for authority in &auth.authorities {
                    builder = builder.add_root_certificate(authority.clone());
                }
                let client = builder
                    .build()
                    .map_err(|e| format!("{}: {}", auth.prefix, error_chain(&e)))?;
                Ok((auth.clone(), client))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            authenticated,
            ..self
        })
    }

    /// A forwarder that puts `mwl:` orders on `worklist`, for `station_ae_title` unless the route
    /// names one (`mwl:MAMMO1`).
    pub fn with_worklist(self, worklist: WorklistStore, station_ae_title: String) -> Self {
        Self {
            worklist: Some((worklist, station_ae_title)),
            ..self
        }
    }

    /// Delivers the message to its destination, if this agent's allow-list permits it. The
    /// error text names the phase and the cause.
    pub async fn forward(&self, message: &GatewayMessage) -> Result<(), ForwardError> {
        self.allow
            .check(&message.destination)
            .map_err(ForwardError::NotAllowed)?;
        if message.destination.scheme() == "file" {
            // Writing and fsyncing block, so they run off the async workers.
            let (message, allow) = (message.clone(), self.allow.clone());
            return tokio::task::spawn_blocking(move || write_file(&message, &allow))
                .await
                .map_err(|e| {
                    ForwardError::Failed(format!(
                        "forward to destination: the file writer stopped: {e}"
                    ))
                })?;
        }
        self.forward_allowed(message)
            .await
            .map_err(ForwardError::Failed)
    }

    async fn forward_allowed(&self, message: &GatewayMessage) -> Result<(), String> {
        let destination = message.destination.as_str();
        match message.destination.scheme().as_str() {
            "http" | "https" => self.post(message, destination).await,
            "log" => {
                log_line(message);
                Ok(())
            }
            "mwl" => self.put_on_worklist(message).await,
            other => Err(format!(
                "forward to destination: unsupported scheme {other:?}"
            )),
        }
    }

    /// The `mwl:` destination: the order becomes (or replaces, or revokes) a worklist item.
    async fn put_on_worklist(&self, message: &GatewayMessage) -> Result<(), String> {
        let Some((worklist, configured_station)) = &self.worklist else {
            return Err("forward to destination: this gateway serves no worklist; \
                        set [mwl] listen in its configuration"
                .into());
        };
        if message.message_type != MessageType::fhir() {
            return Err(format!(
                "forward to destination: the worklist takes FHIR orders, not {}",
                message.message_type
            ));
        }
        let route_station = message
            .destination
            .as_str()
            .split_once(':')
            .map(|(_, station)| station.trim())
            .unwrap_or_default();
        let station = if route_station.is_empty() {
            configured_station.as_str()
        } else {
            route_station
        };
        let payload = String::from_utf8_lossy(&message.payload_bytes()).into_owned();
        let order = WorklistOrder::from_service_request(message.message_id, &payload, station)
            .map_err(|e| format!("forward to destination: {e}"))?;
        let stored = worklist
            .store(&order, chrono::Utc::now())
            .await
            .map_err(|e| format!("forward to destination: {e}"))?;
        tracing::info!(outcome = ?stored, "message put on the worklist");
        Ok(())
    }

    async fn post(&self, message: &GatewayMessage, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| format!("forward to destination: not a URL: {e}"))?;
        let (client, token_file) = match self
            .authenticated
            .iter()
            .find(|(auth, _)| auth.applies_to(&parsed))
        {
            Some((auth, client)) => (client, auth.bearer_token_file.as_deref()),
            None => (&self.http, None),
        };
        let mut request = client.post(parsed);
        if let Some(path) = token_file {
            // Read at each send so a rotated token is used at once; a failure may be fixed later.
            let path = path.to_path_buf();
            let token = tokio::task::spawn_blocking(move || read_bearer_token(&path))
                .await
                .map_err(|e| format!("forward to destination: reading the bearer token: {e}"))?
                .map_err(|e| format!("forward to destination: {e}"))?;
            request = request.bearer_auth(token);
        }
        let response = request
            .header(
                reqwest::header::CONTENT_TYPE,
                message.message_type.content_type(),
            )
            .header("X-Message-Id", message.message_id.to_string())
            .body(message.payload_bytes())
            .send()
            .await
            .map_err(|error| {
                let phase = if error.is_connect() {
                    "connect"
                } else if error.is_timeout() {
                    "await reply"
                } else {
                    "send"
                };
                format!("forward to destination: {phase}: {}", error_chain(&error))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(format!(
            "forward to destination: HTTP {}: {}",
            status,
            destination_reason(response).await
        ))
    }
}

/// The settings every destination client shares. Redirects are not followed: a 307 would resend
/// the order to a URL the allow-list never saw.
fn http_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
}

/// Writes `<folder>/<message id>.json` via a temporary file and a rename, so a reader never sees a
/// half-written order and a repeat overwrites the same file; the folder must be inside the spool
/// directory once links are followed.
fn write_file(message: &GatewayMessage, allow: &AllowList) -> Result<(), ForwardError> {
    let folder = folder_of(&message.destination);
    let fail = |what: &str, path: &Path, error: std::io::Error| {
        ForwardError::Failed(format!(
            "forward to destination: {what} {}: {error}",
            path.display()
        ))
    };
    std::fs::create_dir_all(&folder).map_err(|e| fail("creating folder", &folder, e))?;
    allow
        .check_on_disk(&folder)
        .map_err(ForwardError::NotAllowed)?;
    let extension = if message.message_type.content_type().ends_with("json") {
        "json"
    } else {
        "txt"
    };
    let target = folder.join(format!("{}.{extension}", message.message_id));
    let temporary = folder.join(format!(".{}.tmp", message.message_id));
    {
        use std::io::Write;
        // A new file, never one already there: a link left at that name is not followed.
        let _ = std::fs::remove_file(&temporary);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .map_err(|e| fail("creating", &temporary, e))?;
        file.write_all(&message.payload_bytes())
            .map_err(|e| fail("writing", &temporary, e))?;
        file.sync_all()
            .map_err(|e| fail("syncing", &temporary, e))?;
    }
    std::fs::rename(&temporary, &target).map_err(|e| fail("renaming into", &target, e))?;
    Ok(())
}

/// The NHS number in a FHIR payload, masked (`*******919`), if there is one.
pub fn masked_nhs_number(message: &GatewayMessage) -> Option<String> {
    let value = message
        .payload
        .pointer("/subject/identifier/value")?
        .as_str()?;
    NhsNumber::parse(value).ok().map(|number| number.masked())
}

/// The `log:` destination: one log event, the NHS number masked, no name.
fn log_line(message: &GatewayMessage) {
    tracing::info!(
        destination = "log",
        message_id = %message.message_id,
        message_type = %message.message_type,
        nhs_number = masked_nhs_number(message).as_deref().unwrap_or("none"),
        payload_bytes = message.payload_bytes().len(),
        "message written to the log destination"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(destination: &str) -> GatewayMessage {
        GatewayMessage {
            message_id: MessageId::parse("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap(),
            message_type: MessageType::fhir(),
            payload: serde_json::json!({
                "resourceType": "ServiceRequest",
                "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}}
            }),
            destination: Destination::parse(destination).unwrap(),
            signature: None,
        }
    }

    #[test]
    fn the_nhs_number_is_found_and_masked() {
        assert_eq!(
            masked_nhs_number(&message("log:")).as_deref(),
            Some("*******919")
        );
    }

    fn spool(dir: &Path) -> AllowList {
        AllowList::new(&[], Some(dir.to_path_buf())).unwrap()
    }

    #[tokio::test]
    async fn a_file_destination_gets_one_complete_file_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("orders");
        let msg = message(&format!("file://{}", folder.display()));
        let forwarder = Forwarder::new(spool(dir.path()));
        forwarder.forward(&msg).await.unwrap();
        forwarder.forward(&msg).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, ["67e55044-10b1-426f-9247-bb680e5fe0c8.json"]);
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(folder.join(&files[0])).unwrap()).unwrap();
        assert_eq!(written, msg.payload);
    }

    #[tokio::test]
    async fn a_link_inside_the_spool_cannot_lead_a_write_outside_it() {
        let spool_dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let link = spool_dir.path().join("leeds");
        std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
        let forwarder = Forwarder::new(spool(spool_dir.path()));
        let refused = forwarder
            .forward(&message(&format!("file://{}", link.display())))
            .await
            .unwrap_err();
        assert!(!refused.may_succeed_later(), "{refused}");
        assert!(
            refused
                .to_string()
                .contains("leads outside the spool directory"),
            "{refused}"
        );
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);

        // Nor can a link planted at the temporary file's name.
        let folder = spool_dir.path().join("york");
        std::fs::create_dir(&folder).unwrap();
        let victim = elsewhere.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(
            &victim,
            folder.join(".67e55044-10b1-426f-9247-bb680e5fe0c8.tmp"),
        )
        .unwrap();
        forwarder
            .forward(&message(&format!("file://{}", folder.display())))
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    }

    #[tokio::test]
    async fn a_folder_that_climbs_out_of_the_spool_is_refused_before_anything_is_written() {
        let spool_dir = tempfile::tempdir().unwrap();
        let inside = spool_dir.path().join("inside");
        let climbing = format!("file://{}/../../escaped", inside.display());
        let refused = Forwarder::new(spool(&inside))
            .forward(&message(&climbing))
            .await
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with(super::super::allow::NOT_ALLOWED),
            "{refused}"
        );
        assert!(!spool_dir.path().join("escaped").exists());
        assert!(!inside.exists(), "nothing was created");
    }

    #[tokio::test]
    async fn an_unreachable_http_destination_names_the_connect_phase() {
        let allowed = AllowList::new(&["http://127.0.0.1:1/".into()], None).unwrap();
        let error = Forwarder::new(allowed)
            .forward(&message("http://127.0.0.1:1/orders"))
            .await
            .unwrap_err();
        assert!(error.may_succeed_later());
        assert!(
            error
                .to_string()
                .starts_with("forward to destination: connect:"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_destination_off_the_allow_list_is_refused_for_good() {
        let error = Forwarder::new(AllowList::default())
            .forward(&message("http://127.0.0.1:1/orders"))
            .await
            .unwrap_err();
        assert!(!error.may_succeed_later());
        assert!(
            error
                .to_string()
                .starts_with("forward to destination: not allowed by this gateway's configuration"),
            "{error}"
        );
    }
}
