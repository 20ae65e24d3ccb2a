//! The agent's own `/metrics` (Prometheus text), `/healthz` and `/readyz`, served on hyper when
//! `[metrics] listen` is set, so a hospital's monitoring can watch the gateway from inside the
//! network. Nothing here carries patient data, and nothing needs a credential: the address
//! belongs on loopback or a management network.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

use super::Inbox;
use crate::worklist::WorklistStore;

/// Messages in the inbox not yet forwarded or reported.
pub const INBOX_DEPTH: &str = "screening_agent_inbox_depth";
/// Forwarding attempts by outcome: `ok`, `retry` (will be tried again), `failed` (given up).
pub const FORWARDED: &str = "screening_agent_forwards_total";
/// Echoes answered, by outcome (`ok`, `failed`).
pub const ECHOES: &str = "screening_agent_echoes_total";
/// 1 when the last call to the hub succeeded.
pub const HUB_REACHABLE: &str = "screening_agent_hub_reachable";
/// 1 while the relay listener's control channel is open (absent without a relay).
pub const RELAY_LISTENER: &str = "screening_agent_relay_listener_connected";
/// Seconds since a modality last queried the worklist (absent without a worklist or a query).
pub const WORKLIST_QUERY_AGE: &str = "screening_agent_worklist_last_query_age_seconds";

/// The process's Prometheus recorder, installed the first time it is asked for. `None` when
/// something else installed a recorder first (an application embedding the agent exports its
/// own way).
pub fn recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    metrics::describe_gauge!(
        INBOX_DEPTH,
        "Messages in the agent's inbox not yet forwarded or reported."
    );
    metrics::describe_counter!(
        FORWARDED,
        "Forwarding attempts by outcome: ok, retry (tried again later) or failed (given up)."
    );
    metrics::describe_counter!(
        ECHOES,
        "The hub's echoes answered, by outcome (ok or failed)."
    );
    metrics::describe_gauge!(
        HUB_REACHABLE,
        "1 when the agent's last call to the hub succeeded."
    );
    metrics::describe_gauge!(
        RELAY_LISTENER,
        "1 while the relay listener's control channel is open."
    );
    metrics::describe_gauge!(
        WORKLIST_QUERY_AGE,
        metrics::Unit::Seconds,
        "Seconds since a modality last queried the worklist."
    );
}

/// Counts a forwarding attempt's outcome.
pub fn forwarded(outcome: &'static str) {
    metrics::counter!(FORWARDED, "outcome" => outcome).increment(1);
}

/// Counts an echo answered.
pub fn echo_answered(ok: bool) {
    metrics::counter!(ECHOES, "outcome" => if ok { "ok" } else { "failed" }).increment(1);
}

/// What the endpoints read.
#[derive(Clone)]
pub struct Observed {
    pub(crate) inbox: Inbox,
    pub(crate) hub_reachable: Arc<AtomicBool>,
    pub(crate) listener: Option<watch::Receiver<bool>>,
    pub(crate) worklist: Option<WorklistStore>,
    pub(crate) handle: Option<PrometheusHandle>,
}

impl Observed {
    /// The gauges, read now, then the text.
    async fn metrics_text(&self) -> Option<String> {
        let handle = self.handle.as_ref()?;
        if let Ok(depth) = self.inbox.depth().await {
            metrics::gauge!(INBOX_DEPTH).set(depth as f64);
        }
        let reachable = self.hub_reachable.load(Ordering::SeqCst);
        metrics::gauge!(HUB_REACHABLE).set(f64::from(u8::from(reachable)));
        if let Some(listener) = &self.listener {
            metrics::gauge!(RELAY_LISTENER).set(f64::from(u8::from(*listener.borrow())));
        }
        if let Some(at) = self.worklist.as_ref().and_then(|w| w.last_query_at()) {
            let age = (chrono::Utc::now() - at).as_seconds_f64().max(0.0);
            metrics::gauge!(WORKLIST_QUERY_AGE).set(age);
        }
        Some(handle.render())
    }

    /// `None` when ready; else what is not, phase first.
    async fn not_ready(&self) -> Option<String> {
        if let Err(error) = self.inbox.depth().await {
            return Some(format!("inbox: {error}"));
        }
        if !self.hub_reachable.load(Ordering::SeqCst) {
            return Some("connect: the hub has not answered the agent's last call".into());
        }
        None
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<String> {
        let path = request.uri().path();
        if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
            return text(
                StatusCode::NOT_FOUND,
                "not found: the agent serves /metrics, /healthz and /readyz\n".into(),
            );
        }
        if request.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into());
        }
        match path {
            "/healthz" => text(StatusCode::OK, "ok\n".into()),
            "/readyz" => match self.not_ready().await {
                None => text(StatusCode::OK, "ready\n".into()),
                Some(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                ),
            },
            _ => match self.metrics_text().await {
                Some(body) => {
                    let mut response = text(StatusCode::OK, body);
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                    response
                }
                None => text(
                    StatusCode::NOT_FOUND,
                    "metrics are exported by the application embedding this agent\n".into(),
                ),
            },
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

/// Serves the endpoints on `listener` until `shutdown` becomes true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    observed: Observed,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "metrics: accepting a connection failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let observed = observed.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let observed = observed.clone();
                async move { Ok::<_, Infallible>(observed.answer(request).await) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "metrics: a connection ended with an error");
            }
        });
    }
}
