//! The local relay over TLS (`wss://`) when given a certificate and key.

use std::path::{Path, PathBuf};
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

/// A test CA and a server certificate for 127.0.0.1 it signs (webpki refuses a CA as the server's
/// own): `(ca.pem, cert.pem, key.pem)` in `dir`.
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let script = r#"set -e
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout key.pem -out server.csr
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out cert.pem
    "#;
    let status = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("sh and openssl run");
    assert!(status.success(), "openssl made the certificates");
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// A WebSocket connector that trusts the test CA.
fn trusting(authority: &Path) -> Connector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(authority).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Connector::Rustls(Arc::new(config))
}

/// Opens a listener's control channel over wss://.
async fn listen_over_wss(
    base: &str,
    connector: &Connector,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let token = relay_endpoint(base, "listen", RELAY_LISTEN_KEY).token();
    tokio_tungstenite::connect_async_tls_with_config(
        request(format!("{base}/$hc/leeds?sb-hc-action=listen"), Some(token)),
        None,
        false,
        Some(connector.clone()),
    )
    .await
    .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_relay_serves_wss_with_a_certificate_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, certificate, key) = make_certificates(dir.path());

    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let relay = LocalRelay::new(local_relay_config()).serving_wss();
    let tls = TlsListener::new(tcp, &certificate, &key).unwrap();
    let router = relay.router();
    tokio::spawn(async move { axum::serve(tls, router).await.unwrap() });

    let connector = trusting(&authority);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_its_handshake_does_not_hold_up_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, certificate, key) = make_certificates(dir.path());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let tls = TlsListener::new(tcp, &certificate, &key).unwrap();
    let router = LocalRelay::new(local_relay_config()).serving_wss().router();
    tokio::spawn(async move { axum::serve(tls, router).await.unwrap() });

    // Connects and never says hello: the handshake timeout is 10 s.
    let _stalled = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let base = format!("wss://127.0.0.1:{port}");
    tokio::time::timeout(
        Duration::from_secs(3),
        listen_over_wss(&base, &trusting(&authority)),
    )
    .await
    .expect("served while another client stalls")
    .expect("a listener connects over wss");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_command_serves_wss_with_tls_cert_and_tls_key() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, certificate, key) = make_certificates(dir.path());
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_screening-gateway"))
        .args(["relay", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--hybrid-connection", "leeds"])
        .args(["--rule", &format!("listen:listen:{RELAY_LISTEN_KEY}")])
        .arg("--tls-cert")
        .arg(&certificate)
        .arg("--tls-key")
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("wss://127.0.0.1:{port}");
    let connector = trusting(&authority);
    let mut connected = Err("never tried".to_string());
    for _ in 0..100 {
        connected = listen_over_wss(&base, &connector)
            .await
            .map_err(|e| e.to_string());
        if connected.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    connected.expect("a listener connects to the relay command over wss");
    child.kill().await.unwrap();
}
