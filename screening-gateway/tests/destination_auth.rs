//! Credentials the agent presents to destinations: a bearer token from a file and a client
//! certificate for mutual TLS, each only to the URLs under its prefix; and redirects, which would
//! carry an order past the allow-list, are not followed.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use screening_core::prelude::*;
use screening_gateway::agent::{AgentConfig, AgentSettings, Forwarder};
use screening_gateway::relay::local::TlsListener;
use screening_gateway::testing::{serve, OrderEndpoint};
use tokio_rustls::rustls;

fn order(destination: &str) -> GatewayMessage {
    GatewayMessage {
        message_id: MessageId::generate(),
        message_type: MessageType::fhir(),
        payload: serde_json::json!({ "resourceType": "ServiceRequest" }),
        destination: Destination::parse(destination).unwrap(),
        signature: None,
    }
}

fn private_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The agent's configuration from `toml` (the settings that matter here) as the agent reads it.
fn load(dir: &Path, toml: &str) -> Result<AgentConfig, String> {
    let file = dir.join("gateway.toml");
    std::fs::write(
        &file,
        format!(
            "hub_url = \"http://127.0.0.1:1\"\ngateway_id = \"67e55044-10b1-426f-9247-bb680e5fe0c8\"\n{toml}"
        ),
    )
    .unwrap();
    let mut settings = AgentSettings::from_file(&file).map_err(|e| e.to_string())?;
    settings.credential = Some("sgw_test".into());
    AgentConfig::from_settings(settings).map_err(|e| e.to_string())
}

fn forwarder(config: &AgentConfig) -> Forwarder {
    Forwarder::new(config.allow.clone())
        .with_destination_auth(&config.destination_auth)
        .unwrap()
}

#[tokio::test]
async fn a_bearer_token_from_a_file_goes_only_to_its_prefix_and_is_reread_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let (ris, ris_url) = OrderEndpoint::start(vec![]).await;
    let (other, other_url) = OrderEndpoint::start(vec![]).await;
    let token = dir.path().join("ris.token");
    private_file(&token, "first-token\n");
    let config = load(
        dir.path(),
        &format!(
            "[allow]\ndestinations = [\"{ris_url}\", \"{other_url}\"]\n\
             [[destination_auth]]\nprefix = \"{ris_url}\"\nbearer_token_file = \"{}\"\n",
            token.display()
        ),
    )
    .unwrap();
    let forwarder = forwarder(&config);

    forwarder.forward(&order(&ris_url)).await.unwrap();
    forwarder.forward(&order(&other_url)).await.unwrap();
    private_file(&token, "second-token");
    forwarder.forward(&order(&ris_url)).await.unwrap();

    let seen: Vec<String> = ris
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.authorization.clone())
        .collect();
    assert_eq!(seen, ["Bearer first-token", "Bearer second-token"]);
    assert_eq!(
        other.received.lock().unwrap()[0].authorization,
        "",
        "the token is not sent outside its prefix"
    );
    assert!(
        !format!("{:?}", config.destination_auth).contains("second-token"),
        "Debug shows no token"
    );
}

#[tokio::test]
async fn a_token_file_that_cannot_be_read_at_send_time_fails_that_send_and_may_succeed_later() {
    let dir = tempfile::tempdir().unwrap();
    let (ris, ris_url) = OrderEndpoint::start(vec![]).await;
    let token = dir.path().join("ris.token");
    private_file(&token, "a-token");
    let config = load(
        dir.path(),
        &format!(
            "[allow]\ndestinations = [\"{ris_url}\"]\n\
             [[destination_auth]]\nprefix = \"{ris_url}\"\nbearer_token_file = \"{}\"\n",
            token.display()
        ),
    )
    .unwrap();
    std::fs::remove_file(&token).unwrap();
    let error = forwarder(&config)
        .forward(&order(&ris_url))
        .await
        .unwrap_err();
    assert!(error.may_succeed_later(), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("forward to destination: bearer_token_file"),
        "{error}"
    );
    assert_eq!(ris.count(), 0, "nothing is sent without the token");
}

#[test]
fn credentials_that_cannot_be_used_stop_the_agent_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let readable = dir.path().join("readable.token");
    std::fs::write(&readable, "t").unwrap();
    let private = dir.path().join("private.token");
    private_file(&private, "t");
    let allow = "[allow]\ndestinations = [\"https://ris.example.nhs.uk/fhir/\"]\n";
    let cases = [
        (
            format!(
                "{allow}[[destination_auth]]\nprefix = \"https://ris.example.nhs.uk/fhir/\"\nbearer_token_file = \"{}\"\n",
                readable.display()
            ),
            "readable by others (mode 644)",
        ),
        (
            format!(
                "{allow}[[destination_auth]]\nprefix = \"https://elsewhere.example/\"\nbearer_token_file = \"{}\"\n",
                private.display()
            ),
            "is not under any [allow] destinations prefix",
        ),
        (
            format!(
                "{allow}[[destination_auth]]\nprefix = \"https://ris.example.nhs.uk/fhir/\"\nclient_certificate_file = \"{}\"\n",
                private.display()
            ),
            "client_certificate_file and client_key_file go together",
        ),
        (
            format!(
                "{allow}[[destination_auth]]\nprefix = \"https://ris.example.nhs.uk/fhir/\"\nbearer_token_file = \"{}\"\n",
                dir.path().join("missing").display()
            ),
            "No such file",
        ),
        (
            format!("{allow}[[destination_auth]]\nprefix = \"https://ris.example.nhs.uk/fhir/\"\n"),
            "name a bearer_token_file, a client certificate or a ca_file",
        ),
        (
            format!("{allow}[[destination_auth]]\nprefix = \"https://ris.example.nhs.uk/fhir/\"\npassword = \"x\"\n"),
            "unknown field `password`",
        ),
    ];
    for (toml, expected) in cases {
        let error = load(dir.path(), &toml).unwrap_err();
        assert!(error.contains(expected), "{expected:?} not in {error}");
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed_past_the_allow_list() {
    let (thief, thief_url) = OrderEndpoint::start(vec![]).await;
    let redirecting = Router::new().route(
        "/fhir/ServiceRequest",
        post(move || {
            let to = thief_url.clone();
            async move { (StatusCode::TEMPORARY_REDIRECT, [("location", to)]).into_response() }
        }),
    );
    let ris_url = format!("{}/fhir/ServiceRequest", serve(redirecting).await);
    let allow =
        screening_gateway::agent::AllowList::new(std::slice::from_ref(&ris_url), None).unwrap();
    let error = Forwarder::new(allow)
        .forward(&order(&ris_url))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("forward to destination: HTTP 307"),
        "{error}"
    );
    assert_eq!(
        thief.count(),
        0,
        "the order never reached the redirect's target"
    );
}

/// A test CA, a server certificate for 127.0.0.1 and a client certificate, all from the CA:
/// `ca.pem`, `server.pem`/`server.key`, `client.pem`/`client.key` in `dir`; and `stranger.pem`/
/// `stranger.key`, a client certificate from a CA the server does not trust.
fn make_certificates(dir: &Path) {
    let script = r#"set -e
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=other-ca -keyout other-ca.key -out other-ca.pem
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.cnf
        printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > client.cnf
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout server.key -out server.csr
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile server.cnf -out server.pem
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=gateway-leeds -keyout client.key -out client.csr
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile client.cnf -out client.pem
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=stranger -keyout stranger.key -out stranger.csr
        openssl x509 -req -in stranger.csr -CA other-ca.pem -CAkey other-ca.key -CAcreateserial -days 1 -extfile client.cnf -out stranger.pem
        chmod 600 client.key stranger.key
    "#;
    let status = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("sh and openssl run");
    assert!(status.success(), "openssl made the certificates");
}

/// An order endpoint over TLS that requires a client certificate from `ca.pem`; returns its URL.
async fn mutual_tls_endpoint(dir: &Path, endpoint: &OrderEndpoint) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_file(dir.join("server.pem")).unwrap()],
            PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap(),
        )
        .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener = TlsListener::with_config(tcp, Arc::new(config)).unwrap();
    let address = axum::serve::Listener::local_addr(&listener).unwrap();
    let router = endpoint.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("https://{address}/fhir/ServiceRequest")
}

fn tls_auth(url: &str, dir: &Path, client: Option<&str>) -> String {
    let mut toml = format!(
        "[allow]\ndestinations = [\"{url}\"]\n[[destination_auth]]\nprefix = \"{url}\"\nca_file = \"{}\"\n",
        dir.join("ca.pem").display()
    );
    if let Some(name) = client {
        toml.push_str(&format!(
            "client_certificate_file = \"{}\"\nclient_key_file = \"{}\"\n",
            dir.join(format!("{name}.pem")).display(),
            dir.join(format!("{name}.key")).display()
        ));
    }
    toml
}

#[tokio::test]
async fn mutual_tls_lets_in_the_gateway_with_its_certificate_and_nobody_else() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let endpoint = OrderEndpoint::new(vec![]);
    let url = mutual_tls_endpoint(dir.path(), &endpoint).await;

    // The server's certificate is trusted through ca_file, but without a client certificate the
    // server ends the handshake: nothing is received.
    let anonymous = load(dir.path(), &tls_auth(&url, dir.path(), None)).unwrap();
    let error = forwarder(&anonymous)
        .forward(&order(&url))
        .await
        .unwrap_err();
    assert!(error.may_succeed_later(), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("forward to destination: send:")
            && error.to_string().contains("CertificateRequired"),
        "{error}"
    );
    let stranger = load(dir.path(), &tls_auth(&url, dir.path(), Some("stranger"))).unwrap();
    forwarder(&stranger)
        .forward(&order(&url))
        .await
        .unwrap_err();
    assert_eq!(
        endpoint.count(),
        0,
        "no order without a trusted client certificate"
    );

    let gateway = load(dir.path(), &tls_auth(&url, dir.path(), Some("client"))).unwrap();
    forwarder(&gateway).forward(&order(&url)).await.unwrap();
    assert_eq!(endpoint.count(), 1);

    // Without ca_file, the server's certificate from a private CA is not trusted.
    let untrusting = Forwarder::new(gateway.allow.clone());
    let error = untrusting.forward(&order(&url)).await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("forward to destination: connect:"),
        "{error}"
    );
    assert_eq!(endpoint.count(), 1);
}
