//! Admin: the alerts open now (what staff on the affected sites see as a banner), then every
//! opening and resolution, newest first, with where its webhook notification stands.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use leptos::prelude::*;
use screening_core::alert::{AlertRule, AlertTransition};
use screening_store::WebhookState;

use super::errors::PageError;
use super::Page;
use crate::server::format;
use crate::server::html::{AlertCallout, Section};
use crate::server::AppState;

/// How many events the history shows.
const SHOWN: u32 = 200;

fn rule_label(rule: AlertRule) -> &'static str {
    match rule {
        AlertRule::GatewaySilent => "Gateway silent",
        AlertRule::MessagesWaiting => "Messages waiting",
        AlertRule::MessagesFailed => "Messages failed",
        AlertRule::GatewayUnproven => "Gateway unproven",
        AlertRule::RelayListenerAbsent => "Relay listener absent",
        AlertRule::WorklistNotQueried => "Worklist not queried",
    }
}

fn webhook_label(state: WebhookState, attempts: u32, error: Option<String>) -> String {
    match state {
        WebhookState::NotConfigured => "No webhook".into(),
        WebhookState::Sent => format!("Sent (attempt {attempts})"),
        WebhookState::Pending if attempts == 0 => "Waiting".into(),
        WebhookState::Pending => format!(
            "Not sent after {attempts} attempt{}: {}",
            if attempts == 1 { "" } else { "s" },
            error.unwrap_or_default()
        ),
    }
}

/// `GET /admin/alerts`.
pub async fn list(State(state): State<AppState>, page: Page) -> Result<Response, PageError> {
    let open = state.store.open_alerts().await?;
    let events = state.store.alert_events(SHOWN).await?;
    let open_count = open.len();
    let summaries: Vec<String> = open.iter().map(|alert| alert.summary.clone()).collect();
    let open_rows = open
        .into_iter()
        .map(|alert| {
            view! {
                <tr class="nhsuk-table__row" data-alert-id=alert.id.to_string()>
                    <td class="nhsuk-table__cell">{alert.gateway_name}</td>
                    <td class="nhsuk-table__cell">{rule_label(alert.rule)}</td>
                    <td class="nhsuk-table__cell">{format::date_time(alert.since)}</td>
                    <td class="nhsuk-table__cell">{format::date_time(alert.opened_at)}</td>
                </tr>
            }
        })
        .collect_view();
    let history = events
        .into_iter()
        .map(|event| {
            let what = match event.transition {
                AlertTransition::Opened => "Opened",
                AlertTransition::Resolved => "Resolved",
            };
            view! {
                <tr class="nhsuk-table__row" data-event=event.transition.code()>
                    <td class="nhsuk-table__cell">{format::date_time(event.occurred_at)}</td>
                    <td class="nhsuk-table__cell">{what}</td>
                    <td class="nhsuk-table__cell">{event.alert.gateway_name.clone()}</td>
                    <td class="nhsuk-table__cell">{event.alert.summary.clone()}</td>
                    <td class="nhsuk-table__cell">
                        {webhook_label(event.webhook, event.webhook_attempts, event.webhook_error)}
                    </td>
                </tr>
            }
        })
        .collect_view();
    Ok(page.render(
        StatusCode::OK,
        "Alerts",
        Section::Alerts,
        view! {
            <h1>"Alerts"</h1>
            <AlertCallout summaries=summaries/>
            <h2>{format!("Open now: {open_count}")}</h2>
            {(open_count == 0).then(|| view! { <p class="nhsuk-body">"No alert is open: every gateway is heard from and delivering."</p> })}
            {(open_count > 0).then(|| view! {
                <table class="nhsuk-table">
                    <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Alerts open now"</caption>
                    <thead class="nhsuk-table__head">
                        <tr>
                            <th class="nhsuk-table__header" scope="col">"Gateway"</th>
                            <th class="nhsuk-table__header" scope="col">"Rule"</th>
                            <th class="nhsuk-table__header" scope="col">"Since"</th>
                            <th class="nhsuk-table__header" scope="col">"Opened"</th>
                        </tr>
                    </thead>
                    <tbody class="nhsuk-table__body">{open_rows}</tbody>
                </table>
            })}
            <h2>"History"</h2>
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Alerts opened and resolved, newest first"</caption>
                <thead class="nhsuk-table__head">
                    <tr>
                        <th class="nhsuk-table__header" scope="col">"When"</th>
                        <th class="nhsuk-table__header" scope="col">"What"</th>
                        <th class="nhsuk-table__header" scope="col">"Gateway"</th>
                        <th class="nhsuk-table__header" scope="col">"Alert"</th>
                        <th class="nhsuk-table__header" scope="col">"Webhook"</th>
                    </tr>
                </thead>
                <tbody class="nhsuk-table__body">{history}</tbody>
            </table>
        }
        .into_any(),
    ))
}
