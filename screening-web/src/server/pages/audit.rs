//! Admin: what admins did and looked at (gateways added and changed, credentials issued,
//! messages resent, payloads shown), newest first.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use leptos::prelude::*;

use super::errors::PageError;
use super::Page;
use crate::server::format;
use crate::server::html::Section;
use crate::server::AppState;

/// How many events the page shows.
const SHOWN: u32 = 500;

/// `GET /admin/audit`.
pub async fn list(State(state): State<AppState>, page: Page) -> Result<Response, PageError> {
    let events = state.store.admin_events(SHOWN).await?;
    let count = events.len();
    let rows = events
        .into_iter()
        .map(|event| {
            view! {
                <tr class="nhsuk-table__row">
                    <td class="nhsuk-table__cell">{format::date_time(event.occurred_at)}</td>
                    <td class="nhsuk-table__cell">{event.actor}</td>
                    <td class="nhsuk-table__cell">{event.action}</td>
                    <td class="nhsuk-table__cell">{event.subject}</td>
                </tr>
            }
        })
        .collect_view();
    Ok(page.render(
        StatusCode::OK,
        "Audit",
        Section::Audit,
        view! {
            <h1>"Audit"</h1>
            <p class="nhsuk-body-s">{format!("{count} event{} (newest first, at most {SHOWN})", if count == 1 { "" } else { "s" })}</p>
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"What admins did"</caption>
                <thead class="nhsuk-table__head">
                    <tr>
                        <th class="nhsuk-table__header" scope="col">"When"</th>
                        <th class="nhsuk-table__header" scope="col">"Who"</th>
                        <th class="nhsuk-table__header" scope="col">"What"</th>
                        <th class="nhsuk-table__header" scope="col">"Of"</th>
                    </tr>
                </thead>
                <tbody class="nhsuk-table__body">{rows}</tbody>
            </table>
        }
        .into_any(),
    ))
}
