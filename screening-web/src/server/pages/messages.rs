//! Admin: every message with its status, a message's detail and payload, and resending a failed
//! message (a new message linked to the failed one, to the same gateway route).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use leptos::prelude::*;
use screening_core::prelude::*;
use screening_core::procedure::ProcedureStatus;
use screening_store::{now_utc, MessageEvent, MessageFilter, MessageListing, MessageStep};

use super::errors::PageError;
use super::Page;
use crate::server::format;
use crate::server::html::{CsrfField, ErrorSummary, Problem, Section, SummaryList, TextInput};
use crate::server::AppState;
use crate::status::status_tag;

fn tag(message: &Message) -> impl IntoView {
    let (class, label) = status_tag(message.status().code());
    view! { <strong class=class>{label}</strong> }
}

/// A history step in words: what happened, and by whom or why.
fn step_words(event: &MessageEvent, gateway: &str) -> (String, String) {
    let detail = event.detail.clone().unwrap_or_default();
    match event.step {
        MessageStep::Created => (
            "Created".into(),
            if detail.is_empty() {
                String::new()
            } else {
                format!("by {detail}")
            },
        ),
        MessageStep::Taken => (format!("Taken by the {gateway}"), detail),
        MessageStep::Returned => ("Back in the queue".into(), detail),
        MessageStep::Confirmed => (format!("Confirmed by the {gateway}"), String::new()),
        MessageStep::Failed => ("Failed".into(), detail),
        MessageStep::Resent => ("Resent".into(), String::new()),
        MessageStep::Procedure => {
            let (status, station) = detail.split_once(" on ").unwrap_or((detail.as_str(), ""));
            let what = match ProcedureStatus::from_code(status) {
                Some(ProcedureStatus::InProgress) => "Started at the modality",
                Some(ProcedureStatus::Completed) => "Completed at the modality",
                Some(ProcedureStatus::Discontinued) => "Discontinued at the modality",
                None => "Reported by the modality",
            };
            (what.into(), station.to_string())
        }
        MessageStep::PayloadRemoved => ("Payload removed".into(), "retention policy".into()),
    }
}

fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(format::date_time).unwrap_or_else(|| "–".into())
}

/// Messages a page of the list shows.
const PAGE_SIZE: u32 = 50;

/// What the search form asked for, as typed (shown again in the form and kept in page links).
#[derive(Debug, Default)]
struct Search {
    nhs: String,
    accession: String,
    status: String,
    gateway: String,
    from: String,
    to: String,
}

impl Search {
    fn from_query(query: &HashMap<String, String>) -> Self {
        let field = |name: &str| {
            query
                .get(name)
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        Self {
            nhs: field("nhs"),
            accession: field("accession"),
            status: field("status"),
            gateway: field("gateway"),
            from: field("from"),
            to: field("to"),
        }
    }

    /// The store's filter, or the problems with what was typed.
    fn filter(&self, page: u32) -> Result<MessageFilter, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut filter = MessageFilter {
            limit: PAGE_SIZE + 1,
            offset: (page - 1) * PAGE_SIZE,
            ..MessageFilter::default()
        };
        if !self.nhs.is_empty() {
            match NhsNumber::parse(&self.nhs) {
                Ok(number) => filter.nhs_number = Some(number),
                Err(error) => problems.push(Problem::field(
                    "nhs",
                    format!("Enter a whole NHS number: {error}"),
                )),
            }
        }
        if !self.accession.is_empty() {
            let upper = self.accession.to_ascii_uppercase();
            let valid = upper.len() == 16
                && upper.starts_with("BS")
                && upper[2..].chars().all(|c| c.is_ascii_hexdigit());
            if valid {
                filter.accession_number = Some(upper);
            } else {
                problems.push(Problem::field(
                    "accession",
                    "Enter an accession number as the modality shows it: BS and 14 letters or digits, like BS00A1B2C3D4E5F6",
                ));
            }
        }
        if !self.status.is_empty() {
            filter.status = MessageStatus::ALL
                .into_iter()
                .find(|s| s.code() == self.status);
            if filter.status.is_none() {
                problems.push(Problem::field(
                    "status",
                    "Choose a status from the list: pending, delivered, confirmed or failed",
                ));
            }
        }
        if !self.gateway.is_empty() {
            filter.gateway_id = GatewayId::parse(&self.gateway).ok();
            if filter.gateway_id.is_none() {
                problems.push(Problem::field("gateway", "Choose a gateway from the list"));
            }
        }
        // Dates are UK days: "from" is from its midnight, "to" up to the next midnight.
        let day = |id: &str, text: &str, problems: &mut Vec<Problem>| {
            if text.is_empty() {
                return None;
            }
            match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                Ok(day) => Some(day),
                Err(_) => {
                    problems.push(Problem::field(id, "Enter a date like 2026-12-02"));
                    None
                }
            }
        };
        let midnight = |day: chrono::NaiveDate| {
            screening_core::london::to_utc(day.and_time(chrono::NaiveTime::MIN))
        };
        if let Some(from) = day("from", &self.from, &mut problems) {
            filter.created_from = Some(midnight(from));
        }
        if let Some(to) = day("to", &self.to, &mut problems) {
            filter.created_before = to.succ_opt().map(midnight);
        }
        if problems.is_empty() {
            Ok(filter)
        } else {
            Err(problems)
        }
    }

    /// The list's address for page `page` of this search.
    fn href(&self, page: u32) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("nhs", &self.nhs),
            ("accession", &self.accession),
            ("status", &self.status),
            ("gateway", &self.gateway),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.append_pair("page", &page.to_string());
        format!("/admin/messages?{}", query.finish())
    }
}

/// `GET /admin/messages?nhs=…&accession=…&status=…&gateway=…&from=…&to=…&page=…`: the search
/// form and one page of matches, newest first. Summary columns only, so the list fits a laptop
/// screen; everything else is on the message's page.
pub async fn list(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let search = Search::from_query(&query);
    let page_number: u32 = match query.get("page").map(|p| p.trim()) {
        None | Some("") => 1,
        Some(text) => text
            .parse()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or_else(|| {
                PageError::BadRequest("The page number must be a whole number from 1.".into())
            })?,
    };
    let gateways = state.store.gateways().await?;
    let (mut listings, problems) = match search.filter(page_number) {
        Ok(filter) => (state.store.messages(&filter).await?, Vec::new()),
        Err(problems) => (Vec::new(), problems),
    };
    let more = listings.len() > PAGE_SIZE as usize;
    listings.truncate(PAGE_SIZE as usize);
    let names: HashMap<GatewayId, String> = gateways
        .iter()
        .map(|gateway| (gateway.id, gateway.name.clone()))
        .collect();
    let count = listings.len();
    let rows = listings
        .into_iter()
        .map(|MessageListing { message, nhs_number }| {
            let href = format!("/admin/messages/{}", message.id);
            let short = message.id.to_string()[..8].to_string();
            view! {
                <tr class="nhsuk-table__row">
                    <td class="nhsuk-table__cell"><a href=href>{short}<span class="nhsuk-u-visually-hidden">" (message details)"</span></a></td>
                    <td class="nhsuk-table__cell nhsuk-u-nowrap">{time(Some(message.created_at))}</td>
                    <td class="nhsuk-table__cell">{tag(&message)}</td>
                    <td class="nhsuk-table__cell nhsuk-u-nowrap">{nhs_number.masked()}</td>
                    <td class="nhsuk-table__cell">{names.get(&message.gateway_id).cloned().unwrap_or_default()}</td>
                    <td class="nhsuk-table__cell">{message.attempts}</td>
                </tr>
            }
        })
        .collect_view();
    let status_options = std::iter::once(("", "Any status"))
        .chain(
            MessageStatus::ALL
                .into_iter()
                .map(|s| (s.code(), status_tag(s.code()).1)),
        )
        .map(|(code, label)| {
            view! { <option value=code selected=code == search.status>{label}</option> }
        })
        .collect_view();
    let gateway_options = std::iter::once((String::new(), "Any gateway".to_string()))
        .chain(gateways.iter().map(|g| (g.id.to_string(), g.name.clone())))
        .map(|(id, name)| {
            let selected = id == search.gateway;
            view! { <option value=id selected=selected>{name}</option> }
        })
        .collect_view();
    let error_for = |id: &str| {
        problems
            .iter()
            .find(|problem| problem.href == format!("#{id}"))
            .map(|problem| problem.text.clone())
    };
    let (nhs_error, accession_error, from_error, to_error) = (
        error_for("nhs"),
        error_for("accession"),
        error_for("from"),
        error_for("to"),
    );
    let previous = (page_number > 1).then(|| search.href(page_number - 1));
    let next = more.then(|| search.href(page_number + 1));
    let first_shown = (page_number - 1) * PAGE_SIZE + 1;
    let summary = if count == 0 {
        "No messages match.".to_string()
    } else {
        format!(
            "Messages {first_shown} to {}, newest first.",
            first_shown + count as u32 - 1
        )
    };
    let http_status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(page.render(
        http_status,
        "Messages",
        Section::Messages,
        view! {
            <ErrorSummary problems=problems/>
            <h1>"Messages"</h1>
            <form method="get" action="/admin/messages" class="nhsuk-u-margin-bottom-5" novalidate>
                <TextInput id="nhs" label="NHS number" value=search.nhs.clone() error=nhs_error autocomplete="off"/>
                <TextInput id="accession" label="Accession number" value=search.accession.clone() error=accession_error
                    hint="As the modality shows it, like BS00A1B2C3D4E5F6" autocomplete="off"/>
                <div class="nhsuk-form-group">
                    <label class="nhsuk-label" for="status">"Status"</label>
                    <select class="nhsuk-select" id="status" name="status">{status_options}</select>
                </div>
                <div class="nhsuk-form-group">
                    <label class="nhsuk-label" for="gateway">"Gateway"</label>
                    <select class="nhsuk-select" id="gateway" name="gateway">{gateway_options}</select>
                </div>
                <TextInput id="from" label="Created from (UK date)" value=search.from.clone() error=from_error input_type="date"/>
                <TextInput id="to" label="Created up to and including" value=search.to.clone() error=to_error input_type="date"/>
                <button class="nhsuk-button nhsuk-button--secondary" type="submit">"Search"</button>
            </form>
            <p class="nhsuk-body-s" data-page=page_number.to_string()>{summary}</p>
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Messages"</caption>
                <thead class="nhsuk-table__head">
                    <tr class="nhsuk-table__row">
                        <th class="nhsuk-table__header" scope="col">"Id"</th>
                        <th class="nhsuk-table__header" scope="col">"Created"</th>
                        <th class="nhsuk-table__header" scope="col">"Status"</th>
                        <th class="nhsuk-table__header" scope="col">"NHS number"</th>
                        <th class="nhsuk-table__header" scope="col">"Gateway"</th>
                        <th class="nhsuk-table__header" scope="col">"Attempts"</th>
                    </tr>
                </thead>
                <tbody class="nhsuk-table__body">{rows}</tbody>
            </table>
            {(previous.is_some() || next.is_some()).then(|| view! {
                <nav class="nhsuk-pagination" aria-label="Pages of messages">
                    <ul class="nhsuk-list nhsuk-pagination__list">
                        {previous.map(|href| view! {
                            <li class="nhsuk-pagination-item--previous">
                                <a class="nhsuk-pagination__link nhsuk-pagination__link--prev" href=href rel="prev">
                                    <span class="nhsuk-pagination__title">"Previous"</span>
                                </a>
                            </li>
                        })}
                        {next.map(|href| view! {
                            <li class="nhsuk-pagination-item--next">
                                <a class="nhsuk-pagination__link nhsuk-pagination__link--next" href=href rel="next">
                                    <span class="nhsuk-pagination__title">"Next"</span>
                                </a>
                            </li>
                        })}
                    </ul>
                </nav>
            })}
        }
        .into_any(),
    ))
}

/// `GET /admin/messages/{message_id}`.
pub async fn detail(
    State(state): State<AppState>,
    page: Page,
    Path(message_id): Path<String>,
) -> Result<Response, PageError> {
    let message_id = MessageId::parse(&message_id).map_err(|_| PageError::NotFound("message"))?;
    render_detail(&state, &page, message_id, StatusCode::OK, Vec::new(), false).await
}

/// `POST /admin/messages/{message_id}/payload`: the page with the payload (the participant's
/// details) shown, once the look is recorded on the audit page.
pub async fn show_payload(
    State(state): State<AppState>,
    page: Page,
    Path(message_id): Path<String>,
) -> Result<Response, PageError> {
    let message_id = MessageId::parse(&message_id).map_err(|_| PageError::NotFound("message"))?;
    // Exists, before anything is recorded about it.
    state.store.message(message_id).await?;
    page.audit(
        &state,
        "showed a message's payload",
        format!("message {message_id}"),
    )
    .await?;
    render_detail(&state, &page, message_id, StatusCode::OK, Vec::new(), true).await
}

async fn render_detail(
    state: &AppState,
    page: &Page,
    message_id: MessageId,
    status: StatusCode,
    problems: Vec<Problem>,
    show_payload: bool,
) -> Result<Response, PageError> {
    let MessageListing {
        message,
        nhs_number,
    } = state.store.message_listing(message_id).await?;
    let gateway = state.store.gateway(message.gateway_id).await?;
    let history = state
        .store
        .message_events(message_id)
        .await?
        .into_iter()
        .map(|event| {
            let (what, detail) = step_words(&event, &gateway.name);
            let related = event.related.map(|id| {
                let text = match event.step {
                    MessageStep::Resent => "the new message",
                    _ => "the message it replaced",
                };
                view! { " " <a href=format!("/admin/messages/{id}")>{text}</a> }
            });
            view! {
                <tr class="nhsuk-table__row" data-step=format!("{:?}", event.step)>
                    <td class="nhsuk-table__cell nhsuk-u-nowrap">{format::date_time(event.at)}</td>
                    <td class="nhsuk-table__cell">{what}</td>
                    <td class="nhsuk-table__cell">{detail}{related}</td>
                </tr>
            }
        })
        .collect_view();
    let clinic_id = state
        .store
        .send_context(message.appointment_id)
        .await?
        .clinic
        .id;
    // Pretty-printed for reading; a payload that is not JSON is shown as it is.
    let payload = show_payload.then(|| {
        serde_json::from_str::<serde_json::Value>(&message.payload)
            .and_then(|value| serde_json::to_string_pretty(&value))
            .unwrap_or_else(|_| message.payload.clone())
    });
    let payload_action = format!("/admin/messages/{}/payload", message.id);
    // Retention empties a confirmed message's payload after its time (screening_store::retention).
    let removed = message.payload.is_empty();
    let appointment_href = format!(
        "/clinics/{clinic_id}#appointment-{}",
        message.appointment_id
    );
    let can_resend = message.status() == MessageStatus::Failed;
    let resend_action = format!("/admin/messages/{}/resend", message.id);
    let csrf = page.chrome.csrf.clone();
    let rows: Vec<(&'static str, AnyView)> = vec![
        (
            "Id",
            view! { <code>{message.id.to_string()}</code> }.into_any(),
        ),
        ("Status", tag(&message).into_any()),
        ("Type", message.message_type.to_string().into_any()),
        ("NHS number", nhs_number.masked().into_any()),
        (
            "Appointment",
            view! { <a href=appointment_href>"Open the appointment in its clinic"</a> }.into_any(),
        ),
        ("Gateway", gateway.name.clone().into_any()),
        ("Destination", message.destination.to_string().into_any()),
        ("Created", time(Some(message.created_at)).into_any()),
        ("Delivered", time(message.delivered_at).into_any()),
        ("Lease expires", time(message.lease_expires_at).into_any()),
        ("Confirmed", time(message.confirmed_at).into_any()),
        ("Failed", time(message.failed_at).into_any()),
        ("Attempts", message.attempts.to_string().into_any()),
        (
            "Last error",
            message
                .last_error
                .clone()
                .unwrap_or_else(|| "–".into())
                .into_any(),
        ),
        (
            "Resend of",
            match message.resend_of {
                Some(original) => view! {
                    <a href=format!("/admin/messages/{original}")>{original.to_string()}</a>
                }
                .into_any(),
                None => "–".into_any(),
            },
        ),
    ];
    Ok(page.render(
        status,
        "Message",
        Section::Messages,
        view! {
            <a class="nhsuk-back-link" href="/admin/messages">"All messages"</a>
            <ErrorSummary problems=problems/>
            <h1>"Message"</h1>
            <SummaryList rows=rows/>
            <h2>"History"</h2>
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Every step of this message, oldest first"</caption>
                <thead class="nhsuk-table__head">
                    <tr class="nhsuk-table__row">
                        <th class="nhsuk-table__header" scope="col">"When"</th>
                        <th class="nhsuk-table__header" scope="col">"What"</th>
                        <th class="nhsuk-table__header" scope="col">"By whom or why"</th>
                    </tr>
                </thead>
                <tbody class="nhsuk-table__body">{history}</tbody>
            </table>
            {can_resend.then(|| view! {
                <form method="post" action=resend_action>
                    <CsrfField token=csrf/>
                    <button class="nhsuk-button" type="submit">"Resend"</button>
                </form>
            })}
            <h2 id="payload-heading">"Payload"</h2>
            {match payload {
                _ if removed => view! {
                    <p data-payload="removed">"The payload was removed under the retention policy (kept for a set time after confirmation). The message's record stays."</p>
                }
                .into_any(),
                // A labelled region that takes focus, so keyboard users can scroll a wide payload.
                Some(payload) => view! {
                    <div role="region" aria-labelledby="payload-heading" tabindex="0" class="app-scroll-x">
                        <pre class="nhsuk-u-font-size-16 app-pre"><code>{payload}</code></pre>
                    </div>
                }
                .into_any(),
                None => view! {
                    <p>"The payload holds the participant's details. Showing it is recorded on the audit page, with your name."</p>
                    <form method="post" action=payload_action>
                        <CsrfField token=page.chrome.csrf.clone()/>
                        <button class="nhsuk-button nhsuk-button--secondary" type="submit">"Show payload"</button>
                    </form>
                }
                .into_any(),
            }}
        }
        .into_any(),
    ))
}

/// `POST /admin/messages/{message_id}/resend`: only a failed message, and only while it is its
/// appointment's latest (a newer one means someone already resent it).
pub async fn resend(
    State(state): State<AppState>,
    page: Page,
    Path(message_id): Path<String>,
) -> Result<Response, PageError> {
    let message_id = MessageId::parse(&message_id).map_err(|_| PageError::NotFound("message"))?;
    let message = state.store.message(message_id).await?;
    // A refusal shows the message again with why, and changes nothing.
    let refused = |text: String| {
        let problems = vec![Problem::general(text)];
        render_detail(
            &state,
            &page,
            message_id,
            StatusCode::CONFLICT,
            problems,
            false,
        )
    };
    if message.status() != MessageStatus::Failed {
        return refused("Only a failed message can be resent; this one is not failed.".into())
            .await;
    }
    let context = state.store.send_context(message.appointment_id).await?;
    if context.latest_message_id != Some(message_id) {
        return refused(
            "A newer message was already sent for this appointment. Check that one instead.".into(),
        )
        .await;
    }
    let request = ActionRequest {
        message_type: message.message_type.clone(),
        ..ActionRequest::new(
            AppointmentAction::Resend,
            now_utc(),
            MessageId::generate(),
            page.session.actor(),
        )
    };
    match act_on_appointment(state.store.as_ref(), message.appointment_id, &request).await {
        Ok(outcome) => {
            let new_id = outcome.message.map(|m| m.id).unwrap_or(message_id);
            page.audit(
                &state,
                "resent a failed message",
                format!("message {message_id}, resent as {new_id}"),
            )
            .await?;
            Ok(page.redirect_with_flash(
                &format!("/admin/messages/{new_id}"),
                "The message was resent. This is the new message; it links to the failed one.",
            ))
        }
        Err(ActionError::Store(error)) => Err(error.into()),
        Err(why) => refused(format!("It could not be resent: {why}")).await,
    }
}
