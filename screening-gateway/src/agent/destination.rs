//! Forwarding a message to its destination, chosen by the destination URI's scheme:
//! `http(s)://` POSTs the payload, `file:///folder` writes one file per message id atomically,
//! `log:` writes a structured line with the NHS number masked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use screening_core::prelude::*;

use screening_core::worklist::WorklistOrder;

use super::http_text::{body_excerpt, error_chain};
use crate::worklist::WorklistStore;

/// How long a destination may take to answer one POST.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Forwards messages; holds the HTTP client so connections are reused, and the worklist when the
/// gateway serves one.
#[derive(Clone)]
pub struct Forwarder {
    http: reqwest::Client,
    worklist: Option<(WorklistStore, String)>,
}

impl Default for Forwarder {
    fn default() -> Self {
        Self::new()
    }
}

impl Forwarder {
    /// A forwarder with its own connection pool.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("the HTTP client builds");
        Self {
            http,
            worklist: None,
        }
    }

    /// A forwarder that puts `mwl:` orders on `worklist`, for `station_ae_title` unless the route
    /// names one (`mwl:MAMMO1`).
    pub fn with_worklist(self, worklist: WorklistStore, station_ae_title: String) -> Self {
        Self {
            worklist: Some((worklist, station_ae_title)),
            ..self
        }
    }

    /// Delivers the message to its destination. The error text names the phase and the cause.
    pub async fn forward(&self, message: &GatewayMessage) -> Result<(), String> {
        let destination = message.destination.as_str();
        match message.destination.scheme().as_str() {
            "http" | "https" => self.post(message, destination).await,
            "file" => {
                // Writing and fsyncing block, so they run off the async workers.
                let (message, destination) = (message.clone(), destination.to_string());
                tokio::task::spawn_blocking(move || write_file(&message, &destination))
                    .await
                    .map_err(|e| format!("forward to destination: the file writer stopped: {e}"))?
            }
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
        let response = self
            .http
            .post(url)
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
            body_excerpt(response).await
        ))
    }
}

/// The folder of a `file:///folder` destination.
fn folder_of(destination: &str) -> PathBuf {
    PathBuf::from(
        destination
            .trim_start_matches("file://")
            .trim_start_matches("FILE://"),
    )
}

/// Writes `<folder>/<message id>.json` via a temporary file and a rename, so a reader never sees a
/// half-written order and a repeat overwrites the same file.
fn write_file(message: &GatewayMessage, destination: &str) -> Result<(), String> {
    let folder = folder_of(destination);
    let fail = |what: &str, path: &Path, error: std::io::Error| {
        format!("forward to destination: {what} {}: {error}", path.display())
    };
    std::fs::create_dir_all(&folder).map_err(|e| fail("creating folder", &folder, e))?;
    let extension = if message.message_type.content_type().ends_with("json") {
        "json"
    } else {
        "txt"
    };
    let target = folder.join(format!("{}.{extension}", message.message_id));
    let temporary = folder.join(format!(".{}.tmp", message.message_id));
    {
        use std::io::Write;
        let mut file =
            std::fs::File::create(&temporary).map_err(|e| fail("creating", &temporary, e))?;
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
        }
    }

    #[test]
    fn the_nhs_number_is_found_and_masked() {
        assert_eq!(
            masked_nhs_number(&message("log:")).as_deref(),
            Some("*******919")
        );
    }

    #[tokio::test]
    async fn a_file_destination_gets_one_complete_file_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("orders");
        let msg = message(&format!("file://{}", folder.display()));
        Forwarder::new().forward(&msg).await.unwrap();
        Forwarder::new().forward(&msg).await.unwrap();
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
    async fn an_unreachable_http_destination_names_the_connect_phase() {
        let error = Forwarder::new()
            .forward(&message("http://127.0.0.1:1/orders"))
            .await
            .unwrap_err();
        assert!(
            error.starts_with("forward to destination: connect:"),
            "{error}"
        );
    }
}
