//! The local relay over TLS (`wss://`) when given a certificate and key.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use screening_gateway::relay::local::{LocalRelay, TlsListener};
use screening_gateway::testing::{
    local_relay_config, relay_endpoint, RELAY_LISTEN_KEY, RELAY_SEND_KEY,
};
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;

fn request(
    url: String,
    token: Option<String>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("ServiceBusAuthorization", token.parse().unwrap());
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_relay_serves_wss_with_a_certificate_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (certificate, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let authority = dir.path().join("ca.pem");
    // A test CA signs a server certificate for 127.0.0.1 (webpki refuses a CA as the server's own).
    let script = r#"set -e
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout key.pem -out server.csr
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out cert.pem
    "#;
    let status = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("sh and openssl run");
    assert!(status.success(), "openssl made the certificates");

    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let relay = LocalRelay::new(local_relay_config()).serving_wss();
    let tls = TlsListener::new(tcp, &certificate, &key).unwrap();
    let router = relay.router();
    tokio::spawn(async move { axum::serve(tls, router).await.unwrap() });

    // A client that trusts our self-signed certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&authority).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = Connector::Rustls(Arc::new(config));
    let base = format!("wss://127.0.0.1:{port}");
    let dial = |request| {
        tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            false,
            Some(connector.clone()),
        )
    };

    let listen_token = relay_endpoint(&base, "listen", RELAY_LISTEN_KEY).token();
    let (mut control, _) = dial(request(
        format!("{base}/$hc/leeds?sb-hc-action=listen"),
        Some(listen_token),
    ))
    .await
    .expect("a listener connects over wss");
    let send_token = relay_endpoint(&base, "send", RELAY_SEND_KEY).token();
    let sender = tokio::spawn(dial(request(
        format!("{base}/$hc/leeds?sb-hc-action=connect"),
        Some(send_token),
    )));

    let accept = loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), control.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            break serde_json::from_str::<serde_json::Value>(&text).unwrap()["accept"].clone();
        }
    };
    let address = accept["address"].as_str().unwrap().to_string();
    assert!(
        address.starts_with(&format!("{base}/$hc/leeds?sb-hc-action=accept")),
        "{address}"
    );
    let (_rendezvous, _) = dial(request(address, None))
        .await
        .expect("the rendezvous over wss");
    sender
        .await
        .unwrap()
        .expect("the sender's handshake completes once accepted");

    let refused = dial(request(
        format!("{base}/$hc/leeds?sb-hc-action=listen"),
        Some("SharedAccessSignature sr=x&sig=y&se=1&skn=listen".into()),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&refused, tokio_tungstenite::tungstenite::Error::Http(response) if response.status() == 401),
        "{refused:?}"
    );
}
