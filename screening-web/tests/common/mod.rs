//! The web app on a random loopback port with a fresh database, demo data and two accounts, and a
//! cookie-keeping HTTP client that behaves like a browser without JavaScript.

#![allow(dead_code)]

use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use screening_core::prelude::*;
use screening_gateway::hub::{Hub, HubConfig};
use screening_store::testing::{Backend, TestStore};
use screening_store::{now_utc, DemoData, ScreeningStore};
use screening_web::server::auth::save_account;
use screening_web::server::{router, AppState, WebConfig};

/// The admin's sign-in.
pub const ADMIN: (&str, &str) = ("admin.user", "admin-password-123");
/// A member of clinic staff's sign-in.
pub const STAFF: (&str, &str) = ("clinic.staff", "staff-password-123");

/// A running app.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its database, for arranging and checking.
    pub store: Arc<dyn ScreeningStore>,
    /// The demo clinic it was seeded with.
    pub demo: DemoData,
    /// The app's shared state (its counters, for checking).
    pub state: AppState,
    test_store: Option<TestStore>,
    server: tokio::task::JoinHandle<()>,
}

impl TestApp {
    /// The app on a temporary SQLite file.
    pub async fn sqlite() -> TestApp {
        Self::on(Backend::Sqlite)
            .await
            .expect("SQLite is always there")
    }

    /// The app on a backend; `None` when PostgreSQL is unreachable outside CI.
    pub async fn on(backend: Backend) -> Option<TestApp> {
        Self::with_config(backend, WebConfig::default()).await
    }

    /// The app with a configuration of the test's choosing.
    pub async fn with_config(backend: Backend, config: WebConfig) -> Option<TestApp> {
        let test_store = TestStore::new(backend).await?;
        let store = test_store.store.clone();
        let now = now_utc();
        let demo = store
            .seed_demo(screening_core::london::today(now), now)
            .await
            .expect("seed");
        for ((username, password), role) in [(ADMIN, StaffRole::Admin), (STAFF, StaffRole::Staff)] {
            save_account(store.as_ref(), username, "", role, password)
                .await
                .expect("account");
        }
        let (base, state, server) = serve(store.clone(), config).await;
        Some(TestApp {
            base,
            store,
            demo,
            state,
            test_store: Some(test_store),
            server,
        })
    }

    /// A new visitor with no cookies.
    pub fn visitor(&self) -> Visitor {
        Visitor {
            base: self.base.clone(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// A visitor signed in as `who`.
    pub async fn signed_in(&self, who: (&str, &str)) -> Visitor {
        let visitor = self.visitor();
        let response = visitor.sign_in(who.0, who.1, "/clinics").await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
        visitor
    }

    /// The path of the demo clinic.
    pub fn clinic_path(&self) -> String {
        format!("/clinics/{}", self.demo.clinic.id)
    }

    /// The first demo appointment the state machine lets us send.
    pub fn sendable(&self) -> &Appointment {
        self.demo
            .appointments
            .iter()
            .find(|a| a.state.after(AppointmentAction::SendToModality).is_some())
            .expect("a sendable demo appointment")
    }

    /// The demo participant booked in `appointment`.
    pub fn participant_of(&self, appointment: &Appointment) -> &Participant {
        self.demo
            .participants
            .iter()
            .find(|p| p.id == appointment.participant_id)
            .expect("a demo participant")
    }

    /// The first demo appointment in `state`.
    pub fn first_in(&self, state: AppointmentState) -> Appointment {
        self.demo
            .appointments
            .iter()
            .find(|a| a.state == state)
            .expect("a demo appointment in that state")
            .clone()
    }

    /// The path an appointment's actions post to.
    pub fn action_path(&self, appointment: AppointmentId) -> String {
        format!("{}/appointments/{appointment}", self.clinic_path())
    }

    /// Presses "Send to modality" for `appointment` on the clinic page, as `visitor`.
    pub async fn send(&self, visitor: &Visitor, appointment: &Appointment) -> Reply {
        visitor
            .submit(
                &self.clinic_path(),
                &self.action_path(appointment.id),
                &[
                    ("action", "send_to_modality"),
                    ("version", &appointment.version.to_string()),
                ],
            )
            .await
    }

    /// Every message in the store (at most 1000).
    pub async fn all_messages(&self) -> Vec<Message> {
        self.store
            .messages(&screening_store::MessageFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|listing| listing.message)
            .collect()
    }

    /// An appointment's state as stored now.
    pub async fn state_of(&self, appointment: AppointmentId) -> AppointmentState {
        self.store
            .send_context(appointment)
            .await
            .unwrap()
            .appointment
            .state
    }

    /// The database's URL (the first instance's).
    pub fn database_url(&self) -> &str {
        &self.test_store.as_ref().expect("the first instance").url
    }

    /// A second instance of the app on the same database (its own connections, its own memory),
    /// as a second server behind a load balancer would be.
    pub async fn another_instance(&self) -> TestApp {
        let url = &self.test_store.as_ref().expect("the first instance").url;
        let store = screening_store::connect(url)
            .await
            .expect("the database opens");
        let (base, state, server) = serve(store.clone(), WebConfig::default()).await;
        TestApp {
            base,
            store,
            demo: self.demo.clone(),
            state,
            test_store: None,
            server,
        }
    }

    /// Stops the server and drops the database (the first instance's).
    pub async fn stop(mut self) {
        self.server.abort();
        if let Some(test_store) = self.test_store.take() {
            test_store.cleanup().await;
        }
    }
}

/// Serves the app over `store` on a loopback port, with peer addresses (the sign-in limits use
/// them); returns its base URL, its state and the server's task.
async fn serve(
    store: Arc<dyn ScreeningStore>,
    config: WebConfig,
) -> (String, AppState, tokio::task::JoinHandle<()>) {
    let hub = Hub::new(store.clone(), HubConfig::default());
    let state = AppState::new(store, config);
    let app = router(state.clone(), &hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // Served as the binary serves it.
    let server = tokio::spawn(screening_gateway::hub::serve(
        listener,
        app,
        std::future::pending(),
    ));
    (base, state, server)
}

/// `action` on `appointment` through `store`, as another instance or the hub would: no page is
/// involved.
pub async fn act_through(
    store: &dyn ScreeningStore,
    appointment: AppointmentId,
    action: AppointmentAction,
) {
    let request = ActionRequest::new(
        action,
        now_utc(),
        MessageId::generate(),
        Actor("elsewhere".into()),
    );
    act_on_appointment(store, appointment, &request)
        .await
        .expect("the action is allowed");
}

/// What came back.
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// The `Location` header.
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect()
    }

    /// The session cookie this reply sets, if any (`screening_session=…; HttpOnly; …`).
    pub fn session_cookie(&self) -> Option<String> {
        session_cookie_in(&self.headers)
    }

    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        csrf_in(&self.body)
    }
}

/// The table row of an appointment in a clinic page.
pub fn row_of(page: &str, appointment: AppointmentId) -> &str {
    let start = page
        .find(&format!("id=\"appointment-{appointment}\""))
        .expect("the appointment's row");
    let end = page[start..].find("</tr>").expect("the row ends");
    &page[start..start + end]
}

/// The CSRF token in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .expect("the page has a form with a CSRF token")
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// A browser without JavaScript: keeps cookies, does not follow redirects (tests look at them).
pub struct Visitor {
    /// The app.
    pub base: String,
    /// The client with its cookie jar.
    pub client: reqwest::Client,
}

impl Visitor {
    /// GET a path.
    pub async fn get(&self, path: &str) -> Reply {
        reply(
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Opens the live event stream at `path` (e.g. a clinic's `/events`), left open for reading.
    pub async fn open_stream(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// POST a form to a path, as it is (the test supplies any CSRF token).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        reply(
            self.client
                .post(format!("{}{path}", self.base))
                .form(fields)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// POST a form with the CSRF token of the page at `form_page`, as a browser submitting it would.
    pub async fn submit(&self, form_page: &str, path: &str, fields: &[(&str, &str)]) -> Reply {
        let token = self.get(form_page).await.csrf();
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    /// Signs in through the form.
    pub async fn sign_in(&self, username: &str, password: &str, return_to: &str) -> Reply {
        self.submit(
            "/sign-in",
            "/sign-in",
            &[
                ("username", username),
                ("password", password),
                ("return_to", return_to),
            ],
        )
        .await
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// The `screening_session` cookie among a response's `Set-Cookie` headers.
pub fn session_cookie_in(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("screening_session="))
        .map(String::from)
}

/// Whether a test that needs outside tools can run: with nothing `missing`, yes; otherwise it
/// prints a notice and skips, except under `CI=true`, where a missing peer fails the test.
pub fn peers_present(what: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return true;
    }
    screening_gateway::testing::peers::missing(&format!("{what} needs: {}", missing.join("; ")));
    false
}

/// Reads the event stream until `needle` has arrived (10 s at most).
pub async fn read_until(stream: &mut reqwest::Response, received: &mut String, needle: &str) {
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !received.contains(needle) {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            received.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle} in {received}"));
}

/// The demo gateway speaking the hub API mounted in the app, with a credential issued for it.
pub struct GatewayClient {
    base: String,
    gateway: screening_core::ids::GatewayId,
    /// The credential issued.
    pub credential: String,
    client: reqwest::Client,
}

impl TestApp {
    /// Issues the demo gateway a credential and speaks for it.
    pub async fn as_gateway(&self) -> GatewayClient {
        let gateway = self.demo.gateway.id;
        let credential = screening_gateway::auth::generate_credential();
        self.store
            .set_gateway_credential_hash(
                gateway,
                &screening_gateway::auth::hash_credential(&credential),
            )
            .await
            .unwrap();
        GatewayClient {
            base: format!("{}/api/v1/gateways/{gateway}", self.base),
            gateway,
            credential,
            client: reqwest::Client::new(),
        }
    }
}

impl GatewayClient {
    /// A long poll that waits up to `wait_seconds`, to send.
    pub fn long_poll(&self, wait_seconds: u64) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}/messages?wait={wait_seconds}", self.base))
            .bearer_auth(&self.credential)
    }

    /// Takes what waits (`GET messages`, no wait): the answer's JSON.
    pub async fn take(&self) -> serde_json::Value {
        let response = self
            .client
            .get(format!("{}/messages", self.base))
            .bearer_auth(&self.credential)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::OK,
            "{}",
            self.gateway
        );
        response.json().await.unwrap()
    }

    /// Confirms message (or echo) `id`.
    pub async fn confirm(&self, id: &str) -> reqwest::StatusCode {
        self.post(
            &format!("messages/{id}/confirmation"),
            &serde_json::json!({}),
        )
        .await
    }

    /// POSTs `body` as JSON to `path` under the gateway's API.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::StatusCode {
        self.client
            .post(format!("{}/{path}", self.base))
            .bearer_auth(&self.credential)
            .json(body)
            .send()
            .await
            .unwrap()
            .status()
    }
}
