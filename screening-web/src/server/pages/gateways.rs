//! Admin: gateways (transport, last seen, backlog), creating and editing one with its routes, and
//! issuing or rotating its credential (shown once, stored only as a hash).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use leptos::prelude::*;
use screening_core::echo::Proof;
use screening_core::prelude::*;
use screening_gateway::auth::{generate_credential, hash_credential};
use screening_store::now_utc;

use super::errors::PageError;
use super::Page;
use crate::server::form::Form;
use crate::server::format;
use crate::server::html::{
    group_class, CsrfField, ErrorSummary, FieldError, Problem, Section, TextInput,
};
use crate::server::AppState;

/// Blank route rows offered below the existing ones.
const BLANK_ROUTES: usize = 2;

/// `GET /admin/gateways`.
pub async fn list(State(state): State<AppState>, page: Page) -> Result<Response, PageError> {
    let gateways = state.store.gateways().await?;
    let backlogs = state.store.gateway_backlogs().await?;
    let settings = state.store.settings().await?;
    let echoes = state.store.echo_records().await?;
    let now = now_utc();
    let mut rows = Vec::new();
    for gateway in gateways {
        let proof = echoes
            .iter()
            .find(|(id, _)| *id == gateway.id)
            .map(|(_, record)| record.proof(now))
            .unwrap_or(Proof::NotChecked);
        let (proof_class, proof_words) = proof_words(&proof);
        let echo_action = format!("/admin/gateways/{}/echo", gateway.id);
        let echoes_href = format!("/admin/gateways/{}/echoes", gateway.id);
        let echo_label = format!(" ({})", gateway.name);
        let (last_seen, _) = state.store.gateway_last_seen(gateway.id).await?;
        let credential = state.store.gateway_credential_hash(gateway.id).await?;
        let backlog = backlogs.iter().find(|b| b.gateway_id == gateway.id);
        let site = settings
            .iter()
            .find(|s| s.id == gateway.setting_id)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let href = format!("/admin/gateways/{}", gateway.id);
        rows.push(view! {
            <tr class="nhsuk-table__row">
                <td class="nhsuk-table__cell"><a href=href>{gateway.name.clone()}</a></td>
                <td class="nhsuk-table__cell">{site}</td>
                <td class="nhsuk-table__cell">{transport_label(&gateway.transport)}</td>
                <td class="nhsuk-table__cell">
                    {last_seen.map_or_else(|| "Never".to_string(), |at| format!("{} ago", format::age(at, now)))}
                </td>
                <td class="nhsuk-table__cell">{backlog.map_or(0, |b| b.pending)}</td>
                <td class="nhsuk-table__cell">
                    {backlog
                        .and_then(|b| b.oldest_pending_at)
                        .map_or_else(|| "–".to_string(), |at| format::age(at, now))}
                </td>
                <td class="nhsuk-table__cell">{if credential.is_some() { "Issued" } else { "Not issued" }}</td>
                <td class="nhsuk-table__cell">
                    <span class=proof_class data-proof=proof_code(&proof)>{proof_words}</span>
                    " "<a href=echoes_href>"History"<span class="nhsuk-u-visually-hidden">{format!(" of echoes to the {}", gateway.name)}</span></a>
                    <form method="post" action=echo_action>
                        <CsrfField token=page.chrome.csrf.clone()/>
                        <button class="nhsuk-button nhsuk-button--secondary nhsuk-button--small nhsuk-u-margin-bottom-0" type="submit">"Echo now"<span class="nhsuk-u-visually-hidden">{echo_label}</span></button>
                    </form>
                </td>
            </tr>
        });
    }
    Ok(page.render(
        StatusCode::OK,
        "Gateways",
        Section::Gateways,
        view! {
            <h1>"Gateways"</h1>
            <p>"A gateway runs inside a hospital network and forwards messages to the modality's systems."</p>
            <a class="nhsuk-button" href="/admin/gateways/new">"Add a gateway"</a>
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Gateways"</caption>
                <thead class="nhsuk-table__head">
                    <tr class="nhsuk-table__row">
                        <th class="nhsuk-table__header" scope="col">"Name"</th>
                        <th class="nhsuk-table__header" scope="col">"Site"</th>
                        <th class="nhsuk-table__header" scope="col">"Transport"</th>
                        <th class="nhsuk-table__header" scope="col">"Last seen"</th>
                        <th class="nhsuk-table__header" scope="col">"Backlog (pending)"</th>
                        <th class="nhsuk-table__header" scope="col">"Oldest pending"</th>
                        <th class="nhsuk-table__header" scope="col">"Credential"</th>
                        <th class="nhsuk-table__header" scope="col">"Proven by an echo"</th>
                    </tr>
                </thead>
                <tbody class="nhsuk-table__body">{rows}</tbody>
            </table>
        }
        .into_any(),
    ))
}

/// What the admin reads of a gateway's proof: "Proven working at 09:12 (round trip 4 ms)".
fn proof_words(proof: &Proof) -> (&'static str, String) {
    match proof {
        Proof::Proven { at, round_trip_ms } => (
            "",
            format!(
                "Proven working at {} (round trip {round_trip_ms} ms)",
                format::clock(*at)
            ),
        ),
        Proof::NotProven { since, why } => (
            "nhsuk-error-message",
            match since {
                Some(at) => format!("Not proven since {}: {why}", format::clock(*at)),
                None => format!("Not proven yet: {why}"),
            },
        ),
        Proof::NotChecked => ("", "No echo sent yet".into()),
    }
}

fn proof_code(proof: &Proof) -> &'static str {
    match proof {
        Proof::Proven { .. } => "proven",
        Proof::NotProven { .. } => "not-proven",
        Proof::NotChecked => "not-checked",
    }
}

/// `POST /admin/gateways/{gateway_id}/echo`: sends the gateway an echo now, through the path its
/// orders take; the list shows the answer.
pub async fn echo(
    State(state): State<AppState>,
    page: Page,
    Path(gateway_id): Path<String>,
) -> Result<Response, PageError> {
    let Editing { gateway, .. } = editing(&state, &gateway_id).await?;
    state
        .store
        .request_echo(
            gateway.id,
            MessageId::generate(),
            now_utc(),
            page.session.user.username.as_str(),
        )
        .await?;
    page.audit(
        &state,
        "sent an echo to a gateway",
        gateway_subject(&gateway),
    )
    .await?;
    Ok(page.redirect_with_flash(
        "/admin/gateways",
        &format!(
            "An echo is on its way to the {}: reload to see its answer.",
            gateway.name
        ),
    ))
}

/// Echo outcomes a gateway's history page shows.
const ECHOES_SHOWN: u32 = 100;

/// `GET /admin/gateways/{gateway_id}/echoes`: the gateway's echoes, newest first, each with who
/// asked, when it came back and its round trip, or why it did not.
pub async fn echoes(
    State(state): State<AppState>,
    page: Page,
    Path(gateway_id): Path<String>,
) -> Result<Response, PageError> {
    let Editing { gateway, .. } = editing(&state, &gateway_id).await?;
    let events = state.store.echo_events(gateway.id, ECHOES_SHOWN).await?;
    let count = events.len();
    let rows = events
        .into_iter()
        .map(|event| {
            let outcome = match (&event.error, event.round_trip_ms) {
                (Some(error), _) => format!("Not proven: {error}"),
                (None, Some(ms)) => format!("Proven (round trip {ms} ms)"),
                (None, None) => "Proven".to_string(),
            };
            view! {
                <tr class="nhsuk-table__row">
                    <td class="nhsuk-table__cell nhsuk-u-nowrap">{format::date_time(event.requested_at)}</td>
                    <td class="nhsuk-table__cell">{event.requested_by}</td>
                    <td class="nhsuk-table__cell nhsuk-u-nowrap">{event.answered_at.map_or_else(|| "–".to_string(), format::date_time)}</td>
                    <td class="nhsuk-table__cell">{outcome}</td>
                </tr>
            }
        })
        .collect_view();
    let title = format!("Echoes to the {}", gateway.name);
    Ok(page.render(
        StatusCode::OK,
        &title,
        Section::Gateways,
        view! {
            <a class="nhsuk-back-link" href="/admin/gateways">"All gateways"</a>
            <h1>{title.clone()}</h1>
            <p>"Each echo travels the path this gateway's orders take and comes back answered, without being forwarded. Kept for the payload period."</p>
            <p class="nhsuk-body-s">{format!("The newest {count}, newest first.")}</p>
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">{title.clone()}</caption>
                <thead class="nhsuk-table__head">
                    <tr class="nhsuk-table__row">
                        <th class="nhsuk-table__header" scope="col">"Asked for"</th>
                        <th class="nhsuk-table__header" scope="col">"By"</th>
                        <th class="nhsuk-table__header" scope="col">"Answered"</th>
                        <th class="nhsuk-table__header" scope="col">"Outcome"</th>
                    </tr>
                </thead>
                <tbody class="nhsuk-table__body">{rows}</tbody>
            </table>
        }
        .into_any(),
    ))
}

fn transport_label(transport: &Transport) -> String {
    match transport {
        Transport::Polling => "HTTP polling".into(),
        Transport::Relay(relay) => format!(
            "Azure Relay ({} / {})",
            relay.namespace, relay.hybrid_connection
        ),
    }
}

/// What the gateway form holds: as typed (to show again with errors) or as stored.
#[derive(Debug, Clone, Default)]
struct GatewayForm {
    name: String,
    setting: String,
    transport: String,
    namespace: String,
    hybrid_connection: String,
    key_name: String,
    key_ref: String,
    routes: Vec<(String, String)>,
}

impl GatewayForm {
    fn of(gateway: &Gateway) -> Self {
        let mut form = Self {
            name: gateway.name.clone(),
            setting: gateway.setting_id.to_string(),
            transport: gateway.transport.kind().to_string(),
            routes: gateway
                .routes
                .iter()
                .map(|r| (r.message_type.to_string(), r.destination.to_string()))
                .collect(),
            ..Self::default()
        };
        if let Transport::Relay(relay) = &gateway.transport {
            form.namespace = relay.namespace.clone();
            form.hybrid_connection = relay.hybrid_connection.clone();
            form.key_name = relay.key_name.clone();
            form.key_ref = relay.key_ref.to_string();
        }
        form
    }

    fn posted(form: &Form) -> Self {
        let types = form.all("route_type");
        let destinations = form.all("route_destination");
        Self {
            name: form.text("name").to_string(),
            setting: form.text("setting").to_string(),
            transport: form.text("transport").to_string(),
            namespace: form.text("relay_namespace").to_string(),
            hybrid_connection: form.text("relay_hybrid_connection").to_string(),
            key_name: form.text("relay_key_name").to_string(),
            key_ref: form.text("relay_key_ref").to_string(),
            routes: types
                .iter()
                .zip(destinations.iter().chain(std::iter::repeat(&"")))
                .map(|(t, d)| (t.trim().to_string(), d.trim().to_string()))
                .collect(),
        }
    }

    /// The gateway, or every problem with the form.
    fn parse(
        &self,
        id: GatewayId,
        settings: &[Setting],
        secrets_dir: Option<&std::path::Path>,
    ) -> Result<Gateway, Vec<Problem>> {
        let mut problems = Vec::new();
        if self.name.is_empty() {
            problems.push(Problem::field("name", "Enter the gateway's name"));
        } else if self.name.chars().count() > 100 {
            problems.push(Problem::field(
                "name",
                "The name must be 100 characters or fewer",
            ));
        }
        let setting = settings.iter().find(|s| s.id.to_string() == self.setting);
        if setting.is_none() {
            problems.push(Problem::field(
                "setting",
                "Choose the site the gateway serves",
            ));
        }
        let transport = match self.transport.as_str() {
            "polling" => Some(Transport::Polling),
            "relay" => {
                let mut required = |value: &str, id: &str, what: &str| {
                    if value.is_empty() {
                        problems.push(Problem::field(id, format!("Enter the {what}")));
                    }
                };
                required(&self.namespace, "relay_namespace", "relay namespace");
                required(
                    &self.hybrid_connection,
                    "relay_hybrid_connection",
                    "hybrid connection name",
                );
                required(&self.key_name, "relay_key_name", "key name");
                let key_ref = self.key_ref.parse::<SecretRef>().map_err(|e| e.to_string());
                // Only where the hub keeps relay keys: never its other variables or files.
                let key_ref = key_ref.and_then(|key_ref| {
                    key_ref
                        .check_fence(secrets_dir)
                        .map(|()| key_ref)
                        .map_err(|e| e.to_string())
                });
                if let Err(error) = &key_ref {
                    problems.push(Problem::field("relay_key_ref", format::capitalised(error)));
                }
                key_ref.ok().map(|key_ref| {
                    Transport::Relay(RelayTransport {
                        namespace: self.namespace.clone(),
                        hybrid_connection: self.hybrid_connection.clone(),
                        key_name: self.key_name.clone(),
                        key_ref,
                    })
                })
            }
            _ => {
                problems.push(Problem::field(
                    "transport-polling",
                    "Choose how the gateway is reached",
                ));
                None
            }
        };
        let mut routes: Vec<Route> = Vec::new();
        for (index, (message_type, destination)) in self.routes.iter().enumerate() {
            if message_type.is_empty() && destination.is_empty() {
                continue;
            }
            let type_id = format!("route-type-{index}");
            let destination_id = format!("route-destination-{index}");
            let parsed_type = MessageType::parse(message_type);
            if let Err(error) = &parsed_type {
                problems.push(Problem::field(
                    &type_id,
                    format::capitalised(&error.to_string()),
                ));
            }
            let parsed_destination = Destination::parse(destination);
            if let Err(error) = &parsed_destination {
                problems.push(Problem::field(
                    &destination_id,
                    format::capitalised(&error.to_string()),
                ));
            }
            if let (Ok(message_type), Ok(destination)) = (parsed_type, parsed_destination) {
                if routes.iter().any(|r| r.message_type == message_type) {
                    problems.push(Problem::field(
                        &type_id,
                        format!("There is already a route for {message_type}: one destination per message type"),
                    ));
                } else {
                    routes.push(Route {
                        message_type,
                        destination,
                    });
                }
            }
        }
        match (problems.is_empty(), setting, transport) {
            (true, Some(setting), Some(transport)) => Ok(Gateway {
                id,
                name: self.name.clone(),
                setting_id: setting.id,
                transport,
                routes,
            }),
            _ => Err(problems),
        }
    }
}

/// `GET /admin/gateways/new`.
pub async fn new_form(State(state): State<AppState>, page: Page) -> Result<Response, PageError> {
    let settings = state.store.settings().await?;
    let form = GatewayForm {
        transport: "polling".into(),
        routes: vec![("FHIR".into(), String::new())],
        ..GatewayForm::default()
    };
    Ok(render_form(
        &page,
        None,
        &form,
        &settings,
        StatusCode::OK,
        Vec::new(),
        None,
    ))
}

/// `POST /admin/gateways`.
pub async fn create(
    State(state): State<AppState>,
    page: Page,
    Extension(posted): Extension<Form>,
) -> Result<Response, PageError> {
    let settings = state.store.settings().await?;
    let form = GatewayForm::posted(&posted);
    let id = GatewayId::from_uuid(uuid::Uuid::new_v4());
    match form.parse(id, &settings, state.config.secrets_dir.as_deref()) {
        Ok(gateway) => {
            state.store.save_gateway(&gateway, now_utc()).await?;
            page.audit(&state, "added a gateway", gateway_subject(&gateway))
                .await?;
            Ok(page.redirect_with_flash(
                &format!("/admin/gateways/{id}"),
                &format!(
                    "Gateway {} was added. Issue its credential below.",
                    gateway.name
                ),
            ))
        }
        Err(problems) => Ok(render_form(
            &page,
            None,
            &form,
            &settings,
            StatusCode::BAD_REQUEST,
            problems,
            None,
        )),
    }
}

/// A gateway named in the URL, with what its form needs: the sites, and whether it has a credential.
struct Editing {
    gateway: Gateway,
    settings: Vec<Setting>,
    issued: bool,
}

async fn editing(state: &AppState, gateway_id: &str) -> Result<Editing, PageError> {
    let gateway_id = GatewayId::parse(gateway_id).map_err(|_| PageError::NotFound("gateway"))?;
    Ok(Editing {
        gateway: state.store.gateway(gateway_id).await?,
        settings: state.store.settings().await?,
        issued: state
            .store
            .gateway_credential_hash(gateway_id)
            .await?
            .is_some(),
    })
}

/// `GET /admin/gateways/{gateway_id}`.
pub async fn edit_form(
    State(state): State<AppState>,
    page: Page,
    Path(gateway_id): Path<String>,
) -> Result<Response, PageError> {
    let Editing {
        gateway,
        settings,
        issued,
    } = editing(&state, &gateway_id).await?;
    let gateway_id = gateway.id;
    Ok(render_form(
        &page,
        Some((gateway_id, issued)),
        &GatewayForm::of(&gateway),
        &settings,
        StatusCode::OK,
        Vec::new(),
        None,
    ))
}

/// `POST /admin/gateways/{gateway_id}`.
pub async fn update(
    State(state): State<AppState>,
    page: Page,
    Path(gateway_id): Path<String>,
    Extension(posted): Extension<Form>,
) -> Result<Response, PageError> {
    let gateway_id = GatewayId::parse(&gateway_id).map_err(|_| PageError::NotFound("gateway"))?;
    state.store.gateway(gateway_id).await?;
    let settings = state.store.settings().await?;
    let issued = state
        .store
        .gateway_credential_hash(gateway_id)
        .await?
        .is_some();
    let form = GatewayForm::posted(&posted);
    match form.parse(gateway_id, &settings, state.config.secrets_dir.as_deref()) {
        Ok(gateway) => {
            state.store.save_gateway(&gateway, now_utc()).await?;
            page.audit(&state, "changed a gateway", gateway_subject(&gateway))
                .await?;
            Ok(page.redirect_with_flash(
                &format!("/admin/gateways/{gateway_id}"),
                &format!("Gateway {} was saved.", gateway.name),
            ))
        }
        Err(problems) => Ok(render_form(
            &page,
            Some((gateway_id, issued)),
            &form,
            &settings,
            StatusCode::BAD_REQUEST,
            problems,
            None,
        )),
    }
}

/// `POST /admin/gateways/{gateway_id}/credential`: a new credential, shown on this response only.
pub async fn issue_credential(
    State(state): State<AppState>,
    page: Page,
    Path(gateway_id): Path<String>,
) -> Result<Response, PageError> {
    let Editing {
        gateway, settings, ..
    } = editing(&state, &gateway_id).await?;
    let gateway_id = gateway.id;
    let credential = generate_credential();
    state
        .store
        .set_gateway_credential_hash(gateway_id, &hash_credential(&credential))
        .await?;
    page.audit(
        &state,
        "issued a gateway credential (the old one stops working)",
        gateway_subject(&gateway),
    )
    .await?;
    Ok(render_form(
        &page,
        Some((gateway_id, true)),
        &GatewayForm::of(&gateway),
        &settings,
        StatusCode::OK,
        Vec::new(),
        Some(credential),
    ))
}

/// How the audit page names a gateway.
fn gateway_subject(gateway: &Gateway) -> String {
    format!("gateway {} ({})", gateway.name, gateway.id)
}

fn render_form(
    page: &Page,
    existing: Option<(GatewayId, bool)>,
    form: &GatewayForm,
    settings: &[Setting],
    status: StatusCode,
    problems: Vec<Problem>,
    new_credential: Option<String>,
) -> Response {
    let error_for = |id: &str| {
        problems
            .iter()
            .find(|p| p.href == format!("#{id}"))
            .map(|p| p.text.clone())
    };
    let title = if existing.is_some() {
        "Edit gateway"
    } else {
        "Add a gateway"
    };
    let action = existing.map_or_else(
        || "/admin/gateways".to_string(),
        |(id, _)| format!("/admin/gateways/{id}"),
    );
    let csrf = page.chrome.csrf.clone();
    let setting_error = error_for("setting");
    let setting_class = group_class(setting_error.is_some());
    let transport_error = error_for("transport-polling");
    let transport_class = group_class(transport_error.is_some());
    let setting_options = std::iter::once((String::new(), "Choose a site".to_string()))
        .chain(settings.iter().map(|s| (s.id.to_string(), s.name.clone())))
        .map(|(id, name)| {
            let selected = id == form.setting;
            view! { <option value=id selected=selected>{name}</option> }
        })
        .collect_view();
    let mut routes = form.routes.clone();
    routes.extend(std::iter::repeat_n(
        (String::new(), String::new()),
        BLANK_ROUTES,
    ));
    let route_rows = routes
        .into_iter()
        .enumerate()
        .map(|(index, (message_type, destination))| {
            let type_id = format!("route-type-{index}");
            let destination_id = format!("route-destination-{index}");
            let type_error = error_for(&type_id);
            let destination_error = error_for(&destination_id);
            view! {
                <tr class="nhsuk-table__row">
                    <td class="nhsuk-table__cell">
                        <label class="nhsuk-label nhsuk-u-visually-hidden" for=type_id.clone()>{format!("Message type, route {}", index + 1)}</label>
                        <FieldError error=type_error/>
                        <input class="nhsuk-input nhsuk-input--width-10" id=type_id name="route_type" type="text" value=message_type/>
                    </td>
                    <td class="nhsuk-table__cell">
                        <label class="nhsuk-label nhsuk-u-visually-hidden" for=destination_id.clone()>{format!("Destination, route {}", index + 1)}</label>
                        <FieldError error=destination_error/>
                        <input class="nhsuk-input" id=destination_id name="route_destination" type="text" value=destination/>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let is_relay = form.transport == "relay";
    let credential_section = existing.map(|(id, issued)| {
        let action = format!("/admin/gateways/{id}/credential");
        let csrf = csrf.clone();
        view! {
            <h2 id="credential">"Credential"</h2>
            {new_credential.map(|credential| view! {
                <div class="nhsuk-warning-callout">
                    <h3 class="nhsuk-warning-callout__label">
                        <span><span class="nhsuk-u-visually-hidden">"Important: "</span>"Copy this credential now"</span>
                    </h3>
                    <p>"It is shown only this once and stored only as a hash. Give it to the gateway as its credential file or SCREENING_GATEWAY_CREDENTIAL."</p>
                    <p><code id="new-credential" class="nhsuk-u-font-size-19 app-break-all">{credential}</code></p>
                </div>
            })}
            <p>{if issued {
                "A credential has been issued. Rotating it makes the old one stop working at once."
            } else {
                "No credential has been issued yet: the gateway cannot connect until one is."
            }}</p>
            <form method="post" action=action>
                <CsrfField token=csrf/>
                <button class="nhsuk-button nhsuk-button--secondary" type="submit">
                    {if issued { "Rotate credential" } else { "Issue credential" }}
                </button>
            </form>
            <p class="nhsuk-body-s">"Gateway id: " <code>{id.to_string()}</code></p>
        }
    });
    page.render(
        status,
        title,
        Section::Gateways,
        view! {
            <a class="nhsuk-back-link" href="/admin/gateways">"All gateways"</a>
            <ErrorSummary problems=problems.clone()/>
            <h1>{title}</h1>
            <form method="post" action=action novalidate>
                <CsrfField token=csrf.clone()/>
                <TextInput id="name" label="Name" value=form.name.clone() error=error_for("name")/>
                <div class=setting_class>
                    <label class="nhsuk-label" for="setting">"Site"</label>
                    <FieldError error=setting_error/>
                    <select class="nhsuk-select" id="setting" name="setting">{setting_options}</select>
                </div>
                <div class=transport_class>
                    <fieldset class="nhsuk-fieldset">
                        <legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s">"How is the gateway reached?"</legend>
                        <FieldError error=transport_error/>
                        <div class="nhsuk-radios">
                            <div class="nhsuk-radios__item">
                                <input class="nhsuk-radios__input" id="transport-polling" name="transport" type="radio" value="polling" checked=!is_relay/>
                                <label class="nhsuk-label nhsuk-radios__label" for="transport-polling">"HTTP polling (the gateway asks for messages)"</label>
                            </div>
                            <div class="nhsuk-radios__item">
                                <input class="nhsuk-radios__input" id="transport-relay" name="transport" type="radio" value="relay" checked=is_relay/>
                                <label class="nhsuk-label nhsuk-radios__label" for="transport-relay">"Azure Relay push (the gateway listens on a Hybrid Connection)"</label>
                            </div>
                        </div>
                    </fieldset>
                </div>
                <details class="nhsuk-details" open=is_relay>
                    <summary class="nhsuk-details__summary"><span class="nhsuk-details__summary-text">"Azure Relay settings"</span></summary>
                    <div class="nhsuk-details__text">
                        <TextInput id="relay_namespace" label="Relay namespace" value=form.namespace.clone() hint="contoso.servicebus.windows.net, or ws://127.0.0.1:9400 for the local relay" error=error_for("relay_namespace")/>
                        <TextInput id="relay_hybrid_connection" label="Hybrid connection" value=form.hybrid_connection.clone() error=error_for("relay_hybrid_connection")/>
                        <TextInput id="relay_key_name" label="Send key name" value=form.key_name.clone() error=error_for("relay_key_name")/>
                        <TextInput id="relay_key_ref" label="Where the hub finds the Send key" value=form.key_ref.clone() hint="env:SCREENING_SECRET_NAME or file:/path in the hub's secrets directory – never the key itself" error=error_for("relay_key_ref")/>
                    </div>
                </details>
                <h2>"Routes"</h2>
                <p>"Where the gateway forwards each type of message: http(s)://… (an order endpoint), file:///folder (a file drop) or log:."</p>
                <table class="nhsuk-table">
                    <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Routes"</caption>
                    <thead class="nhsuk-table__head">
                        <tr class="nhsuk-table__row">
                            <th class="nhsuk-table__header" scope="col">"Message type"</th>
                            <th class="nhsuk-table__header" scope="col">"Destination"</th>
                        </tr>
                    </thead>
                    <tbody class="nhsuk-table__body">{route_rows}</tbody>
                </table>
                <button class="nhsuk-button" type="submit">"Save gateway"</button>
            </form>
            {credential_section}
        }
        .into_any(),
    )
}
