//! Serving a router over HTTP/1 with hyper's own HTTP/1 connection.
//!
//! `axum::serve` goes through hyper-util's auto (HTTP/1 or HTTP/2) connection, which reads the
//! first bytes to tell the versions apart and hands them back to hyper's HTTP/1 parser as a
//! partial request. That makes hyper grow the connection's read buffer from 8 to 16 KiB, and it
//! keeps it for as long as the connection lives: 8 KiB more for every long-polling gateway
//! (`benches/many_gateways.rs`). The hub and the web app speak HTTP/1 only, so they skip it.

use std::future::Future;

use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use futures_util::FutureExt;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets requests in
/// flight finish (idle kept-alive connections close) and returns once every connection has ended.
/// Each request carries the peer's address as [`ConnectInfo`]`<SocketAddr>`, as axum's
/// `into_make_service_with_connect_info` gives it.
pub async fn serve(
    mut listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // axum's `Listener` retries accept errors itself (and waits a second when out of files).
        let (stream, peer) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        let service = app
            .clone()
            .map_request(move |request: axum::http::Request<_>| {
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        // A combinator, not an async block: a block that awaits the connection it captured holds
        // it twice over, 0.9 KiB more for every connection (`benches/many_gateways.rs`).
        let task = connection.map(move |ended| {
            if let Err(error) = ended {
                tracing::debug!(%error, %peer, "a connection ended with an error");
            }
        });
        tokio::spawn(task);
    }
    drop(listener);
    graceful.shutdown().await;
}
