//! The web server: an axum [`Router`] with the clinic pages, the admin, the live status stream,
//! the static assets, and the hub's gateway API mounted beside them.

pub mod alerts;
pub mod auth;
pub mod cli;
pub mod clinic_tables;
pub mod echo;
pub mod events;
pub mod form;
pub mod format;
mod health;
pub mod html;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod pages;
pub mod retention;
pub mod security;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderName;
use axum::middleware::from_fn_with_state;
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;
use screening_gateway::hub::Hub;
use screening_store::ScreeningStore;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use auth::Authenticator;

/// The largest form accepted (413 beyond).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// How the web server behaves.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Mark cookies `Secure` (set when the public URL is https; a proxy's
    /// `X-Forwarded-Proto: https` does the same per request).
    pub secure_cookies: bool,
    /// The folder with the browser bundle (`pkg/`, written by `cargo xtask build-web`).
    pub site_root: PathBuf,
    /// The folder with the NHS.UK frontend CSS and images.
    pub assets_dir: PathBuf,
    /// The bearer token `/metrics` answers; without one there is no `/metrics`.
    pub metrics_token: Option<String>,
    /// The only folder relay key references (`file:`) may name.
    pub secrets_dir: Option<PathBuf>,
    /// How long a page request may take before it is answered 503.
    pub request_timeout: Duration,
    /// How long a clinic page's table is served from memory before it is read again even though
    /// no change was announced (a safety net for a notification lost between instances).
    pub clinic_table_max_age: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        Self {
            secure_cookies: false,
            site_root: crate_dir.join("site"),
            assets_dir: crate_dir.join("assets/nhsuk-frontend"),
            metrics_token: None,
            secrets_dir: None,
            request_timeout: Duration::from_secs(30),
            clinic_table_max_age: clinic_tables::MAX_AGE,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn ScreeningStore>,
    /// How people sign in.
    pub authenticator: Arc<dyn Authenticator>,
    /// Settings.
    pub config: Arc<WebConfig>,
    /// Becomes true when the server begins to shut down: long-lived streams end on it.
    pub shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    /// The Prometheus recorder, when metrics are on (a metrics token is configured).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Live status streams open, per session (capped).
    pub streams: limits::StreamCounts,
    /// How many times the live status has read the database (once per change to a watched
    /// clinic, for all its open pages): also the `screening_live_status_reads_total` metric.
    pub live_status_reads: Arc<std::sync::atomic::AtomicU64>,
    /// The clinics open pages are watching, each read once per change for all its pages.
    pub clinic_feeds: Arc<events::ClinicFeeds>,
    /// The clinic pages' tables, rendered once per change for every request.
    pub clinic_tables: Arc<clinic_tables::ClinicTables>,
}

impl AppState {
    /// Password sign-in against the store's accounts.
    pub fn new(store: Arc<dyn ScreeningStore>, config: WebConfig) -> Self {
        Self {
            clinic_tables: Arc::new(clinic_tables::ClinicTables::new(
                store.as_ref(),
                config.clinic_table_max_age,
            )),
            authenticator: Arc::new(auth::PasswordAuthenticator::new(store.clone())),
            store,
            metrics: config.metrics_token.is_some().then(metrics::recorder),
            config: Arc::new(config),
            shutdown: Arc::new(tokio::sync::watch::channel(false).0),
            streams: limits::StreamCounts::default(),
            live_status_reads: Arc::default(),
            clinic_feeds: Arc::default(),
        }
    }

    /// Counts a live status stream's read of the database.
    pub(crate) fn live_status_read(&self) {
        self.live_status_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ::metrics::counter!(metrics::LIVE_STATUS_READS).increment(1);
    }

    /// Ends the live status streams, so a graceful shutdown is not held open by clinic pages.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Completes when the server begins to shut down.
    pub fn shutting_down(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut seen = self.shutdown.subscribe();
        async move {
            let _ = seen.wait_for(|stopping| *stopping).await;
        }
    }
}

/// The server functions of [`crate::api`], with the app's state in their context.
async fn server_functions(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    leptos_axum::handle_server_fns_with_context(
        move || leptos::prelude::provide_context(state.clone()),
        request,
    )
    .await
    .into_response()
}

/// The whole application: pages, assets, and the hub's gateway API (its own bearer-token auth).
pub fn router(state: AppState, hub: &Hub) -> Router {
    let timed = state.metrics.is_some();
    let admin = Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/messages") }))
        .route("/admin/messages", get(pages::messages::list))
        .route("/admin/messages/{message_id}", get(pages::messages::detail))
        .route(
            "/admin/messages/{message_id}/resend",
            post(pages::messages::resend),
        )
        .route(
            "/admin/messages/{message_id}/payload",
            post(pages::messages::show_payload),
        )
        .route("/admin/alerts", get(pages::alerts::list))
        .route("/admin/audit", get(pages::audit::list))
        .route(
            "/admin/staff",
            get(pages::staff::list).post(pages::staff::create),
        )
        .route("/admin/staff/{username}", post(pages::staff::change))
        .route(
            "/admin/gateways",
            get(pages::gateways::list).post(pages::gateways::create),
        )
        .route("/admin/gateways/new", get(pages::gateways::new_form))
        .route(
            "/admin/gateways/{gateway_id}",
            get(pages::gateways::edit_form).post(pages::gateways::update),
        )
        .route(
            "/admin/gateways/{gateway_id}/credential",
            post(pages::gateways::issue_credential),
        )
        .route(
            "/admin/gateways/{gateway_id}/echo",
            post(pages::gateways::echo),
        )
        .route(
            "/admin/gateways/{gateway_id}/echoes",
            get(pages::gateways::echoes),
        )
        .route_layer(from_fn_with_state(state.clone(), auth::require_admin));
    let signed_in = Router::new()
        .route("/", get(|| async { Redirect::to("/clinics") }))
        .route("/clinics", get(pages::clinics::list))
        .route("/clinics/{clinic_id}", get(pages::clinics::detail))
        .route(
            "/clinics/{clinic_id}/appointments/{appointment_id}",
            post(pages::clinics::perform_action),
        )
        .route("/clinics/{clinic_id}/events", get(events::clinic_events))
        .route("/api/web/{*server_fn}", get(server_functions))
        .route("/sign-out", post(pages::sign_in::sign_out))
        .merge(admin)
        .route_layer(from_fn_with_state(state.clone(), auth::require_session));
    let pages = Router::new()
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(metrics::scrape))
        .route(
            "/sign-in",
            get(pages::sign_in::form).post(pages::sign_in::sign_in),
        )
        .merge(signed_in)
        .layer(from_fn_with_state(state.clone(), auth::check_csrf))
        .layer(from_fn_with_state(state.clone(), limits::time_limit))
        .nest_service("/assets", ServeDir::new(&state.config.assets_dir))
        .nest_service("/pkg", ServeDir::new(state.config.site_root.join("pkg")))
        .fallback(pages::errors::not_found)
        .with_state(state.clone());
    let security = security::SecurityHeadersLayer::new(&state);
    let mut app = pages.merge(hub.router());
    if timed {
        // Per route, as it labels by the route matched.
        app = app.layer(axum::middleware::from_fn(metrics::time_requests));
    }
    // The layers every request passes, stacked once around the whole router: `Router::layer`
    // would wrap each route in each layer, a boxed future and a cloned service per layer per
    // request, held while a long poll waits (2.8 KiB of heap for each waiting gateway).
    //
    // A span per HTTP request (method, path, request id) with its status and latency. The request
    // id comes from `X-Request-Id` or is made here, and is echoed in the response.
    let request_id = HeaderName::from_static("x-request-id");
    let layered = tower::ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %id
                )
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(security)
        .service(app);
    Router::new().fallback_service(layered)
}
