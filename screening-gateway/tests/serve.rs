//! `hub::serve`, the HTTP/1 server of the hub and the web app, over real loopback HTTP: the peer's
//! address reaches handlers, and shutting down finishes the requests in flight, closes idle
//! kept-alive connections and stops accepting new ones.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use tokio::sync::{mpsc, oneshot};

async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    (listener, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_see_the_peer_address() {
    let (listener, address) = listener().await;
    let app = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    tokio::spawn(screening_gateway::hub::serve(
        listener,
        app,
        std::future::pending(),
    ));
    let response = reqwest::get(format!("http://{address}/peer"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let peer: SocketAddr = response.text().await.unwrap().parse().unwrap();
    assert_eq!(peer.ip(), address.ip());
    assert_ne!(
        peer.port(),
        address.port(),
        "the client's port, not the server's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_finishes_requests_in_flight_then_stops() {
    let (listener, address) = listener().await;
    // The slow handler tells the test it has started, then waits to be released.
    let (started_tx, mut started) = mpsc::channel::<()>(1);
    let (release_tx, release) = oneshot::channel::<()>();
    let release = std::sync::Arc::new(tokio::sync::Mutex::new(Some(release)));
    let app = Router::new()
        .route("/quick", get(|| async { "quick" }))
        .route(
            "/slow",
            get(move || {
                let (started_tx, release) = (started_tx.clone(), release.clone());
                async move {
                    started_tx.send(()).await.unwrap();
                    let release = release.lock().await.take().unwrap();
                    release.await.unwrap();
                    "finished"
                }
            }),
        );
    let (stop_tx, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(screening_gateway::hub::serve(listener, app, async move {
        stop.await.unwrap();
    }));

    // A kept-alive connection left idle must not hold the shutdown up.
    let idle = reqwest::Client::new();
    let quick = idle
        .get(format!("http://{address}/quick"))
        .send()
        .await
        .unwrap();
    assert_eq!(quick.text().await.unwrap(), "quick");

    let in_flight = tokio::spawn(reqwest::get(format!("http://{address}/slow")));
    started.recv().await.unwrap();
    stop_tx.send(()).unwrap();
    // Not accepting any more: the listener is closed. A connection that reached the backlog just
    // as the listener closed is reset rather than refused; only a refusal shows it is gone.
    let refused = async {
        loop {
            match tokio::net::TcpStream::connect(address).await {
                Err(error) if error.kind() != std::io::ErrorKind::ConnectionReset => {
                    return error.kind()
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    let refused = tokio::time::timeout(Duration::from_secs(10), refused)
        .await
        .expect("the listener closes after the shutdown signal");
    assert_eq!(refused, std::io::ErrorKind::ConnectionRefused);
    assert!(
        !server.is_finished(),
        "serve waits for the request in flight"
    );

    release_tx.send(()).unwrap();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns once its connections have ended")
        .unwrap();
}
