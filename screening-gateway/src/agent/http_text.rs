//! Text for errors from an HTTP peer (the hub or a destination): the start of what it said, or why
//! its body could not be read — never an empty string that hides the failure.

/// How much of a refusing peer's body goes into an error.
pub(crate) const EXCERPT_CHARS: usize = 200;

/// The first [`EXCERPT_CHARS`] characters of the body, trimmed; or, when reading it failed (the
/// peer closed early, a timeout), that failure with its causes.
pub(crate) async fn body_excerpt(response: reqwest::Response) -> String {
    match response.text().await {
        Ok(body) => excerpt(&body),
        Err(error) => unreadable(&error),
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

    #[tokio::test]
    async fn an_unreadable_body_says_so_instead_of_becoming_empty() {
        let url = short_body_server().await;
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.status().as_u16(), 503);
        let text = body_excerpt(response).await;
        assert!(
            text.starts_with("(the body could not be read: "),
            "got {text:?}"
        );
    }
}
