//! Text for errors from an HTTP peer: the start of what the hub said, only the coded issues or the
//! size of what a destination said, or why a body could not be read — never an empty string that
//! hides the failure.

/// How much of the hub's refusing body goes into an error.
pub(crate) const EXCERPT_CHARS: usize = 200;

/// What a destination's refusal may say about itself without risk of patient data: a RIS often
/// echoes the order (name, NHS number) in its error, so the body is never copied. A FHIR
/// `OperationOutcome` gives its issues' severity and code (words from a fixed FHIR value set);
/// any other body only its size.
pub(crate) async fn destination_reason(response: reqwest::Response) -> String {
    match response.bytes().await {
        Ok(body) => reason_without_patient_data(&body),
        Err(error) => unreadable(&error),
    }
}

fn reason_without_patient_data(body: &[u8]) -> String {
    if body.is_empty() {
        return "no body".into();
    }
    let outcome = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .filter(|json| json["resourceType"] == "OperationOutcome");
    let issues: Vec<String> = outcome
        .iter()
        .flat_map(|json| json["issue"].as_array().into_iter().flatten())
        .take(5)
        .map(|issue| {
            // Only the coded words, and only if they look like codes.
            let code = |key: &str| {
                issue[key]
                    .as_str()
                    .filter(|word| {
                        word.len() <= 32 && word.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    })
                    .unwrap_or("?")
                    .to_string()
            };
            format!("{} {}", code("severity"), code("code"))
        })
        .collect();
    if issues.is_empty() {
        format!(
            "a body of {} bytes, not kept (it may hold patient data)",
            body.len()
        )
    } else {
        format!("OperationOutcome: {}", issues.join(", "))
    }
}

/// The start of a body, trimmed.
pub(crate) fn excerpt(body: &str) -> String {
    body.chars()
        .take(EXCERPT_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Says that a body could not be read, and why.
pub(crate) fn unreadable(error: &reqwest::Error) -> String {
    format!("(the body could not be read: {})", error_chain(error))
}

/// An error and its causes, `outer: inner: innermost`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A peer that answers one request with a 503 that promises 100 bytes of body and closes after 9;
/// returns its base URL.
#[cfg(test)]
pub(crate) async fn short_body_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await;
        let _ = socket
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 100\r\n\r\nrefused: ")
            .await;
    });
    format!("http://{address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destinations_body_is_never_copied_only_its_coded_issues() {
        let echoed = br#"Patient SMITH, Jane (943 476 5919) already has an open order"#;
        let reason = reason_without_patient_data(echoed);
        assert_eq!(
            reason,
            "a body of 60 bytes, not kept (it may hold patient data)"
        );
        let outcome = serde_json::json!({
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error", "code": "duplicate", "diagnostics": "Jane SMITH 9434765919"},
                {"severity": "warning", "code": "Jane SMITH"}
            ]
        });
        let reason = reason_without_patient_data(outcome.to_string().as_bytes());
        assert_eq!(reason, "OperationOutcome: error duplicate, warning ?");
        assert_eq!(reason_without_patient_data(b""), "no body");
    }

    #[tokio::test]
    async fn an_unreadable_body_says_so_instead_of_becoming_empty() {
        let url = short_body_server().await;
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.status().as_u16(), 503);
        let text = destination_reason(response).await;
        assert!(
            text.starts_with("(the body could not be read: "),
            "got {text:?}"
        );
    }
}
