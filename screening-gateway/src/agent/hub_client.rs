//! The agent's HTTP client for the hub's v1 API. Every error names the phase that failed.

use std::time::Duration;

use screening_core::prelude::*;

use screening_core::procedure::ProcedureReport;
use screening_core::wire::{
    ConfirmationBatch, ConfirmationBatchResponse, MessagesResponse, OutcomeResponse,
    ProcedureResponse,
};

use super::http_text::{excerpt, unreadable};

/// Where in the exchange with the hub (or the destination) something failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reaching the hub at all (DNS, TCP, TLS).
    Connect,
    /// The hub refused the credential.
    Authenticate,
    /// Asking for messages.
    Fetch,
    /// Delivering to the destination.
    Forward,
    /// Reporting an outcome (confirmation or failure) to the hub.
    Confirm,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::Authenticate => "authenticate",
            Phase::Fetch => "fetch",
            Phase::Forward => "forward",
            Phase::Confirm => "confirm",
        })
    }
}

/// A failed exchange, with its phase.
#[derive(Debug, thiserror::Error)]
#[error("{phase}: {message}")]
pub struct AgentError {
    /// The phase that failed.
    pub phase: Phase,
    /// What happened.
    pub message: String,
}

/// How the hub answered a report.
#[derive(Debug, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Accepted (or accepted before).
    Accepted,
    /// Refused for good (unknown message, already failed, …); retrying cannot help.
    Refused(String),
}

/// The hub's v1 API for one gateway.
#[derive(Clone)]
pub struct HubClient {
    http: reqwest::Client,
    base: String,
    credential: String,
}

impl HubClient {
    /// A client for `gateway_id` at `hub_url`.
    pub fn new(hub_url: &str, gateway_id: GatewayId, credential: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("the HTTP client builds");
        Self {
            http,
            base: format!("{hub_url}/api/v1/gateways/{gateway_id}"),
            credential: credential.to_string(),
        }
    }

    async fn send(
        &self,
        phase: Phase,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AgentError> {
        let response = request
            .bearer_auth(&self.credential)
            .send()
            .await
            .map_err(|error| AgentError {
                phase: if error.is_connect() {
                    Phase::Connect
                } else {
                    phase
                },
                message: if error.is_timeout() {
                    "await reply: the hub did not answer in time".into()
                } else {
                    error.to_string()
                },
            })?;
        if matches!(response.status().as_u16(), 401 | 403) {
            return Err(AgentError {
                phase: Phase::Authenticate,
                message: format!("HTTP {}: {}", response.status(), error_text(response).await),
            });
        }
        Ok(response)
    }

    /// Takes pending messages, letting the hub hold the request up to `wait`.
    pub async fn fetch(&self, wait: Duration) -> Result<Vec<GatewayMessage>, AgentError> {
        let request = self
            .http
            .get(format!("{}/messages", self.base))
            .query(&[("wait", wait.as_secs())])
            .timeout(wait + Duration::from_secs(30));
        let response = self.send(Phase::Fetch, request).await?;
        if !response.status().is_success() {
            return Err(AgentError {
                phase: Phase::Fetch,
                message: format!("HTTP {}: {}", response.status(), error_text(response).await),
            });
        }
        let body: MessagesResponse = response.json().await.map_err(|e| AgentError {
            phase: Phase::Fetch,
            message: format!("reading the hub's answer: {e}"),
        })?;
        Ok(body.messages)
    }

    /// Reports that the destination accepted a message.
    pub async fn confirm(&self, message_id: MessageId) -> Result<ReportOutcome, AgentError> {
        let request = self
            .http
            .post(format!("{}/messages/{message_id}/confirmation", self.base))
            .timeout(Duration::from_secs(30));
        self.report(request).await
    }

    /// Reports that the destinations accepted several messages, in one request: each one's
    /// outcome, in order. `None` when the hub is older and has no batch route (confirm one at a
    /// time then).
    pub async fn confirm_many(
        &self,
        message_ids: &[MessageId],
    ) -> Result<Option<Vec<ReportOutcome>>, AgentError> {
        let request = self
            .http
            .post(format!("{}/confirmations", self.base))
            .json(&ConfirmationBatch {
                message_ids: message_ids.to_vec(),
            })
            .timeout(Duration::from_secs(30));
        let response = self.send(Phase::Confirm, request).await?;
        let status = response.status();
        if matches!(status.as_u16(), 404 | 405) {
            return Ok(None);
        }
        let failed = |message: String| AgentError {
            phase: Phase::Confirm,
            message,
        };
        if !status.is_success() {
            let text = error_text(response).await;
            return Err(failed(format!("HTTP {status}: {text}")));
        }
        let body: ConfirmationBatchResponse = response
            .json()
            .await
            .map_err(|e| failed(format!("reading the hub's answer: {e}")))?;
        if body.outcomes.len() != message_ids.len() {
            return Err(failed(format!(
                "the hub answered {} outcomes for {} confirmations",
                body.outcomes.len(),
                message_ids.len()
            )));
        }
        Ok(Some(
            body.outcomes
                .into_iter()
                .map(|outcome| match outcome.status {
                    200..=299 => ReportOutcome::Accepted,
                    status => ReportOutcome::Refused(format!(
                        "HTTP {status}: {}",
                        outcome.error.unwrap_or_default()
                    )),
                })
                .collect(),
        ))
    }

    /// Reports that a message could not be forwarded.
    pub async fn fail(
        &self,
        message_id: MessageId,
        reason: &str,
    ) -> Result<ReportOutcome, AgentError> {
        let request = self
            .http
            .post(format!("{}/messages/{message_id}/failure", self.base))
            .json(&FailureReport {
                reason: reason.to_string(),
            })
            .timeout(Duration::from_secs(30));
        self.report(request).await
    }

    /// Tells the hub what the modality did with an order (MPPS, from the worklist). A report the
    /// hub cannot use (unknown message, another gateway's, malformed) is `Refused`.
    pub async fn report_procedure(
        &self,
        report: &ProcedureReport,
    ) -> Result<ReportOutcome, AgentError> {
        let request = self
            .http
            .post(format!(
                "{}/messages/{}/procedure",
                self.base, report.message_id
            ))
            .json(report)
            .timeout(Duration::from_secs(30));
        let response = self.send(Phase::Confirm, request).await?;
        let status = response.status();
        if status.is_success() {
            let _: ProcedureResponse = response.json().await.map_err(|e| AgentError {
                phase: Phase::Confirm,
                message: format!("reading the hub's answer: {e}"),
            })?;
            return Ok(ReportOutcome::Accepted);
        }
        let text = error_text(response).await;
        if matches!(status.as_u16(), 400 | 404 | 409 | 413 | 422) {
            return Ok(ReportOutcome::Refused(format!("HTTP {status}: {text}")));
        }
        Err(AgentError {
            phase: Phase::Confirm,
            message: format!("HTTP {status}: {text}"),
        })
    }

    async fn report(&self, request: reqwest::RequestBuilder) -> Result<ReportOutcome, AgentError> {
        let response = self.send(Phase::Confirm, request).await?;
        let status = response.status();
        if status.is_success() {
            let _: OutcomeResponse = response.json().await.map_err(|e| AgentError {
                phase: Phase::Confirm,
                message: format!("reading the hub's answer: {e}"),
            })?;
            return Ok(ReportOutcome::Accepted);
        }
        let text = error_text(response).await;
        if matches!(status.as_u16(), 404 | 409) {
            return Ok(ReportOutcome::Refused(format!("HTTP {status}: {text}")));
        }
        Err(AgentError {
            phase: Phase::Confirm,
            message: format!("HTTP {status}: {text}"),
        })
    }

    /// Tells the hub the agent is alive.
    pub async fn heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), AgentError> {
        let request = self
            .http
            .post(format!("{}/heartbeat", self.base))
            .json(heartbeat)
            .timeout(Duration::from_secs(30));
        let response = self.send(Phase::Fetch, request).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(AgentError {
                phase: Phase::Fetch,
                message: format!(
                    "heartbeat: HTTP {}: {}",
                    response.status(),
                    error_text(response).await
                ),
            })
        }
    }
}

/// The hub's `{"error": "..."}` message, or the start of whatever it sent (or why it could not
/// be read).
async fn error_text(response: reqwest::Response) -> String {
    let body = match response.text().await {
        Ok(body) => body,
        Err(error) => return unreadable(&error),
    };
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|json| {
            json.get("error")
                .and_then(|e| e.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| excerpt(&body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refusal_whose_body_cannot_be_read_says_so_with_its_phase() {
        let hub = super::super::http_text::short_body_server().await;
        let client = HubClient::new(&hub, GatewayId::from_uuid(uuid::Uuid::nil()), "credential");
        let error = client
            .confirm(MessageId::from_uuid(uuid::Uuid::nil()))
            .await
            .unwrap_err();
        assert_eq!(error.phase, Phase::Confirm);
        assert!(
            error
                .message
                .starts_with("HTTP 503 Service Unavailable: (the body could not be read: "),
            "got {:?}",
            error.message
        );
    }
}
