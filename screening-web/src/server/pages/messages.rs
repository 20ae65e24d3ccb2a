//! Admin: every message with its status, a message's detail and payload, and resending a failed
//! message (a new message linked to the failed one, to the same gateway route).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use leptos::prelude::*;
use screening_core::prelude::*;
use screening_store::{now_utc, MessageFilter, MessageListing};

use super::errors::PageError;
use super::Page;
use crate::server::format;
use crate::server::html::{CsrfField, ErrorSummary, Problem, Section, SummaryList};
use crate::server::AppState;
use crate::status::status_tag;

fn tag(message: &Message) -> impl IntoView {
    let (class, label) = status_tag(message.status().code());
    view! { <strong class=class>{label}</strong> }
}

fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(format::date_time).unwrap_or_else(|| "–".into())
}

/// `GET /admin/messages?status=…&gateway=…`.
pub async fn list(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let mut problems = Vec::new();
    let status_text = query.get("status").map(|s| s.trim()).unwrap_or_default();
    let status = match status_text {
        "" => None,
        code => {
            let found = MessageStatus::ALL.into_iter().find(|s| s.code() == code);
            if found.is_none() {
                problems.push(Problem::field(
                    "status",
                    "Choose a status from the list: pending, delivered, confirmed or failed",
                ));
            }
            found
        }
    };
    let gateway_text = query.get("gateway").map(|s| s.trim()).unwrap_or_default();
    let gateway_id = match gateway_text {
        "" => None,
        text => {
            let parsed = GatewayId::parse(text).ok();
            if parsed.is_none() {
                problems.push(Problem::field("gateway", "Choose a gateway from the list"));
            }
            parsed
        }
    };
    let gateways = state.store.gateways().await?;
    let listings = if problems.is_empty() {
        state
            .store
            .messages(&MessageFilter {
                status,
                gateway_id,
                limit: 200,
            })
            .await?
    } else {
        Vec::new()
    };
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
                    <td class="nhsuk-table__cell">{tag(&message)}</td>
                    <td class="nhsuk-table__cell">{message.message_type.to_string()}</td>
                    <td class="nhsuk-table__cell nhsuk-u-nowrap">{nhs_number.masked()}</td>
                    <td class="nhsuk-table__cell">{names.get(&message.gateway_id).cloned().unwrap_or_default()}</td>
                    <td class="nhsuk-table__cell">{message.destination.to_string()}</td>
                    <td class="nhsuk-table__cell">{time(Some(message.created_at))}</td>
                    <td class="nhsuk-table__cell">{time(message.delivered_at)}</td>
                    <td class="nhsuk-table__cell">{time(message.confirmed_at)}</td>
                    <td class="nhsuk-table__cell">{time(message.failed_at)}</td>
                    <td class="nhsuk-table__cell">{message.attempts}</td>
                    <td class="nhsuk-table__cell">{message.last_error.clone().unwrap_or_default()}</td>
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
            view! { <option value=code selected=code == status_text>{label}</option> }
        })
        .collect_view();
    let gateway_options = std::iter::once((String::new(), "Any gateway".to_string()))
        .chain(gateways.iter().map(|g| (g.id.to_string(), g.name.clone())))
        .map(|(id, name)| {
            let selected = id == gateway_text;
            view! { <option value=id selected=selected>{name}</option> }
        })
        .collect_view();
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
            <form method="get" action="/admin/messages" class="nhsuk-u-margin-bottom-5">
                <div class="nhsuk-form-group">
                    <label class="nhsuk-label" for="status">"Status"</label>
                    <select class="nhsuk-select" id="status" name="status">{status_options}</select>
                </div>
                <div class="nhsuk-form-group">
                    <label class="nhsuk-label" for="gateway">"Gateway"</label>
                    <select class="nhsuk-select" id="gateway" name="gateway">{gateway_options}</select>
                </div>
                <button class="nhsuk-button nhsuk-button--secondary" type="submit">"Filter"</button>
            </form>
            <p class="nhsuk-body-s">{format!("{count} message{} (newest first, at most 200)", if count == 1 { "" } else { "s" })}</p>
            <div class="nhsuk-u-font-size-16" style="overflow-x:auto">
                <table class="nhsuk-table">
                    <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Messages"</caption>
                    <thead class="nhsuk-table__head">
                        <tr class="nhsuk-table__row">
                            <th class="nhsuk-table__header" scope="col">"Id"</th>
                            <th class="nhsuk-table__header" scope="col">"Status"</th>
                            <th class="nhsuk-table__header" scope="col">"Type"</th>
                            <th class="nhsuk-table__header" scope="col">"NHS number"</th>
                            <th class="nhsuk-table__header" scope="col">"Gateway"</th>
                            <th class="nhsuk-table__header" scope="col">"Destination"</th>
                            <th class="nhsuk-table__header" scope="col">"Created"</th>
                            <th class="nhsuk-table__header" scope="col">"Delivered"</th>
                            <th class="nhsuk-table__header" scope="col">"Confirmed"</th>
                            <th class="nhsuk-table__header" scope="col">"Failed"</th>
                            <th class="nhsuk-table__header" scope="col">"Attempts"</th>
                            <th class="nhsuk-table__header" scope="col">"Last error"</th>
                        </tr>
                    </thead>
                    <tbody class="nhsuk-table__body">{rows}</tbody>
                </table>
            </div>
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
    render_detail(&state, &page, message_id, StatusCode::OK, Vec::new()).await
}

async fn render_detail(
    state: &AppState,
    page: &Page,
    message_id: MessageId,
    status: StatusCode,
    problems: Vec<Problem>,
) -> Result<Response, PageError> {
    let MessageListing {
        message,
        nhs_number,
    } = state.store.message_listing(message_id).await?;
    let gateway = state.store.gateway(message.gateway_id).await?;
    let clinic_id = state
        .store
        .send_context(message.appointment_id)
        .await?
        .clinic
        .id;
    // Pretty-printed for reading; a payload that is not JSON is shown as it is.
    let payload = serde_json::from_str::<serde_json::Value>(&message.payload)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_else(|_| message.payload.clone());
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
            {can_resend.then(|| view! {
                <form method="post" action=resend_action>
                    <CsrfField token=csrf/>
                    <button class="nhsuk-button" type="submit">"Resend"</button>
                </form>
            })}
            <h2 id="payload-heading">"Payload"</h2>
            // A labelled region that takes focus, so keyboard users can scroll a wide payload.
            <div role="region" aria-labelledby="payload-heading" tabindex="0" style="overflow-x:auto">
                <pre class="nhsuk-u-font-size-16" style="white-space:pre"><code>{payload}</code></pre>
            </div>
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
    let refuse = |text: &str| vec![Problem::general(text)];
    if message.status() != MessageStatus::Failed {
        let problems = refuse("Only a failed message can be resent; this one is not failed.");
        return render_detail(&state, &page, message_id, StatusCode::CONFLICT, problems).await;
    }
    let context = state.store.send_context(message.appointment_id).await?;
    if context.latest_message_id != Some(message_id) {
        let problems = refuse(
            "A newer message was already sent for this appointment. Check that one instead.",
        );
        return render_detail(&state, &page, message_id, StatusCode::CONFLICT, problems).await;
    }
    let request = ActionRequest {
        message_type: message.message_type.clone(),
        ..ActionRequest::new(
            AppointmentAction::Resend,
            now_utc(),
            MessageId::from_uuid(uuid::Uuid::new_v4()),
            page.session.actor(),
        )
    };
    match act_on_appointment(state.store.as_ref(), message.appointment_id, &request).await {
        Ok(outcome) => {
            let new_id = outcome.message.map(|m| m.id).unwrap_or(message_id);
            Ok(page.redirect_with_flash(
                &format!("/admin/messages/{new_id}"),
                "The message was resent. This is the new message; it links to the failed one.",
            ))
        }
        Err(ActionError::Store(error)) => Err(error.into()),
        Err(refused) => {
            let problems = refuse(&format!("It could not be resent: {refused}"));
            render_detail(&state, &page, message_id, StatusCode::CONFLICT, problems).await
        }
    }
}
