//! Clinics, their appointments, and acting on an appointment (Check in, Send to modality, Resend…).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use leptos::prelude::*;
use screening_core::prelude::*;
use screening_core::procedure::ProcedureStatus;
use std::sync::Arc;

use screening_store::{now_utc, AlertRecord, ClinicPage, ClinicPageRow, LatestMessage};

use super::errors::PageError;
use super::Page;
use crate::live::{status_cell_id, LiveUpdates};
use crate::server::auth::CSRF_FIELD;
use crate::server::clinic_tables::ClinicTable;
use crate::server::form::Form;
use crate::server::format;
use crate::server::html::{appointment_tag, AlertCallout, ErrorSummary, Problem, Section};
use crate::server::AppState;
use crate::status::{StatusCell, StatusView};

/// A message's status as the clinic page shows it.
pub(crate) fn status_view(message: &LatestMessage) -> StatusView {
    StatusView {
        appointment_id: message.appointment_id.to_string(),
        message_id: message.id.to_string(),
        status: message.status().code().to_string(),
        created: format::clock_seconds(message.created_at),
        delivered: message.delivered_at.map(format::clock_seconds),
        confirmed: message.confirmed_at.map(format::clock_seconds),
        failed: message.failed_at.map(format::clock_seconds),
        reason: message.last_error.clone(),
        procedure: message.procedure.as_ref().map(|note| {
            match note.status {
                ProcedureStatus::InProgress => "started",
                ProcedureStatus::Completed => "completed",
                ProcedureStatus::Discontinued => "discontinued",
            }
            .to_string()
        }),
        procedure_text: message.procedure.as_ref().map(procedure_text),
    }
}

/// The modality's report in words, UK time: "Started at 09:14 on MAMMO1".
fn procedure_text(note: &screening_store::ProcedureNote) -> String {
    let what = match note.status {
        ProcedureStatus::InProgress => "Started",
        ProcedureStatus::Completed => "Completed",
        ProcedureStatus::Discontinued => "Discontinued",
    };
    let mut text = format!("{what} at {} on {}", format::clock(note.at), note.station);
    if let Some(reason) = &note.reason {
        text.push_str(&format!(": {reason}"));
    }
    text
}

/// `GET /clinics`.
pub async fn list(State(state): State<AppState>, page: Page) -> Result<Response, PageError> {
    let clinics = state.store.clinics().await?;
    let rows = clinics
        .into_iter()
        .map(|summary| {
            let href = format!("/clinics/{}", summary.clinic.id);
            let counts = summary
                .counts
                .iter()
                .map(|(state, n)| format!("{}: {n}", state.label()))
                .collect::<Vec<_>>()
                .join(", ");
            view! {
                <tr class="nhsuk-table__row">
                    <td class="nhsuk-table__cell">
                        <span class="nhsuk-table-responsive__heading" aria-hidden="true">"Clinic "</span>
                        <a href=href>{summary.clinic.name.clone()}</a>
                    </td>
                    <td class="nhsuk-table__cell">
                        <span class="nhsuk-table-responsive__heading" aria-hidden="true">"Date "</span>
                        {format::date(summary.clinic.date)}
                    </td>
                    <td class="nhsuk-table__cell">
                        <span class="nhsuk-table-responsive__heading" aria-hidden="true">"Site "</span>
                        {summary.setting_name.clone()}
                    </td>
                    <td class="nhsuk-table__cell">
                        <span class="nhsuk-table-responsive__heading" aria-hidden="true">"Appointments "</span>
                        {summary.total()}
                    </td>
                    <td class="nhsuk-table__cell">
                        <span class="nhsuk-table-responsive__heading" aria-hidden="true">"By state "</span>
                        {counts}
                    </td>
                </tr>
            }
        })
        .collect_view();
    Ok(page.render(
        StatusCode::OK,
        "Clinics",
        Section::Clinics,
        view! {
            <h1>"Clinics"</h1>
            <table class="nhsuk-table-responsive">
                <caption class="nhsuk-table__caption">"Clinics and their appointments by state"</caption>
                <thead class="nhsuk-table__head">
                    <tr class="nhsuk-table__row">
                        <th class="nhsuk-table__header" scope="col">"Clinic"</th>
                        <th class="nhsuk-table__header" scope="col">"Date"</th>
                        <th class="nhsuk-table__header" scope="col">"Site"</th>
                        <th class="nhsuk-table__header" scope="col">"Appointments"</th>
                        <th class="nhsuk-table__header" scope="col">"By state"</th>
                    </tr>
                </thead>
                <tbody class="nhsuk-table__body">{rows}</tbody>
            </table>
        }
        .into_any(),
    ))
}

/// `GET /clinics/{clinic_id}`.
pub async fn detail(
    State(state): State<AppState>,
    page: Page,
    Path(clinic_id): Path<String>,
) -> Result<Response, PageError> {
    let clinic_id = ClinicId::parse(&clinic_id).map_err(|_| PageError::NotFound("clinic"))?;
    render_clinic(&state, &page, clinic_id, StatusCode::OK, Vec::new()).await
}

/// Between the appointment's id and the words in the success banner's cookie.
const FLASH_SEPARATOR: char = '|';

/// The clinic page, with problems to show in the error summary (a refused action).
async fn render_clinic(
    state: &AppState,
    page: &Page,
    clinic_id: ClinicId,
    status: StatusCode,
    problems: Vec<Problem>,
) -> Result<Response, PageError> {
    // Right after an action (a banner) or a refused one the table is read afresh, so the person
    // sees what they just did even if another instance, not yet heard from, did it.
    let cached = if page.chrome.flash.is_none() && problems.is_empty() {
        state.clinic_tables.cached(clinic_id)
    } else {
        None
    };
    let table = match cached {
        Some(table) => table,
        None => read_table(state, clinic_id).await?,
    };
    let summary = &table.summary;
    // Problems with the gateways serving this clinic's site, so staff know to use the manual
    // process before they wonder why nothing reaches the modality.
    let alerts: Vec<String> = open_alerts(state)
        .await?
        .iter()
        .filter(|alert| alert.setting_id == summary.clinic.setting_id)
        .map(|alert| alert.summary.clone())
        .collect();
    // The banner's cookie names the appointment, not the participant: the name is put back here.
    let banner =
        page.chrome
            .flash
            .as_deref()
            .map(|flash| match flash.split_once(FLASH_SEPARATOR) {
                Some((id, text)) => AppointmentId::parse(id)
                    .ok()
                    .and_then(|id| table.participant_name(&id))
                    .map(|name| format!("{name}: {text}"))
                    .unwrap_or_else(|| text.to_string()),
                None => flash.to_string(),
            });
    let rows = table.rows_html(&page.chrome.csrf);
    let heading = summary.clinic.name.clone();
    let caption = format!(
        "{} at {}, {}",
        summary.clinic.name,
        summary.setting_name,
        format::date(summary.clinic.date)
    );
    let title = format!(
        "{} – {}",
        summary.clinic.name,
        format::date(summary.clinic.date)
    );
    Ok(page.render_with_banner(
        banner,
        status,
        &title,
        Section::Clinics,
        view! {
            <a class="nhsuk-back-link" href="/clinics">"All clinics"</a>
            <ErrorSummary problems=problems/>
            <span class="nhsuk-caption-l">{summary.setting_name.clone()}</span>
            <h1>{heading}" – "{format::date(summary.clinic.date)}</h1>
            <AlertCallout summaries=alerts/>
            <LiveUpdates clinic_id=clinic_id.to_string()/>
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">{caption}</caption>
                <thead class="nhsuk-table__head">
                    <tr class="nhsuk-table__row">
                        <th class="nhsuk-table__header" scope="col">"Time"</th>
                        <th class="nhsuk-table__header" scope="col">"Participant"</th>
                        <th class="nhsuk-table__header" scope="col">"NHS number"</th>
                        <th class="nhsuk-table__header" scope="col">"Date of birth"</th>
                        <th class="nhsuk-table__header" scope="col">"State"</th>
                        <th class="nhsuk-table__header" scope="col">"Message"</th>
                        <th class="nhsuk-table__header" scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody class="nhsuk-table__body" inner_html=rows></tbody>
            </table>
        }
        .into_any(),
    ))
}

/// Reads the clinic's appointments, renders its table for everyone, and keeps it for the next
/// request.
async fn read_table(state: &AppState, clinic_id: ClinicId) -> Result<Arc<ClinicTable>, PageError> {
    let tables = &state.clinic_tables;
    let mark = tables.mark();
    let ClinicPage { summary, rows } = state.store.clinic_page(clinic_id).await?;
    let names = rows
        .iter()
        .map(|row| {
            let participant = &row.participant;
            let name = format!("{} {}", participant.first_name, participant.last_name);
            (row.appointment.id, name)
        })
        .collect();
    Ok(tables.keep(clinic_id, mark, summary, names, |csrf| {
        Owner::new().with(|| table_rows(clinic_id, rows, csrf).to_html())
    }))
}

/// The open alerts, kept between changes like the tables.
async fn open_alerts(state: &AppState) -> Result<Arc<[AlertRecord]>, PageError> {
    let tables = &state.clinic_tables;
    if let Some(alerts) = tables.cached_alerts() {
        return Ok(alerts);
    }
    let mark = tables.mark();
    let alerts: Arc<[AlertRecord]> = state.store.open_alerts().await?.into();
    tables.keep_alerts(mark, alerts.clone());
    Ok(alerts)
}

/// The table's rows, each with its form carrying `csrf`.
fn table_rows(clinic_id: ClinicId, rows: Vec<ClinicPageRow>, csrf: &str) -> impl IntoView {
    rows.into_iter()
        .map(|row| {
            let appointment = row.appointment;
            let participant = row.participant;
            let name = format!("{} {}", participant.first_name, participant.last_name);
            let action_url = format!("/clinics/{clinic_id}/appointments/{}", appointment.id);
            let buttons = appointment
                .state
                .staff_actions()
                .map(|action| {
                    let class = match action {
                        AppointmentAction::SendToModality => "nhsuk-button nhsuk-button--small",
                        AppointmentAction::Cancel | AppointmentAction::MarkDidNotAttend => {
                            "nhsuk-button nhsuk-button--small nhsuk-button--warning"
                        }
                        _ => "nhsuk-button nhsuk-button--small nhsuk-button--secondary",
                    };
                    view! {
                        <button class=class type="submit" name="action" value=action.code()>
                            {action.label()}
                            <span class="nhsuk-u-visually-hidden">" for "{name.clone()}</span>
                        </button>
                    }
                })
                .collect_view();
            let status_id = status_cell_id(&appointment.id.to_string());
            // One form per row: each button names its action, so one CSRF token serves them all.
            view! {
                <tr class="nhsuk-table__row" id=format!("appointment-{}", appointment.id)>
                    <td class="nhsuk-table__cell">{format::clock(row.slot.starts_at)}</td>
                    <td class="nhsuk-table__cell">{name.clone()}</td>
                    <td class="nhsuk-table__cell nhsuk-u-nowrap">{participant.nhs_number.to_string()}</td>
                    <td class="nhsuk-table__cell nhsuk-u-nowrap">{format::date(participant.date_of_birth)}</td>
                    <td class="nhsuk-table__cell">
                        <strong class=appointment_tag(appointment.state) data-state=appointment.state.code()>
                            {appointment.state.label()}
                        </strong>
                    </td>
                    <td class="nhsuk-table__cell" id=status_id aria-live="polite">
                        <StatusCell view=row.latest.as_ref().map(status_view)/>
                    </td>
                    <td class="nhsuk-table__cell">
                        <form method="post" action=action_url>
                            <input type="hidden" name=CSRF_FIELD value=csrf.to_string()/>
                            <input type="hidden" name="version" value=appointment.version.to_string()/>
                            {buttons}
                        </form>
                    </td>
                </tr>
            }
        })
        .collect_view()
}

/// `POST /clinics/{clinic_id}/appointments/{appointment_id}`: `action` (a state-machine code) and
/// `version` (the appointment as the page showed it).
///
/// A refused action shows the clinic again with an error summary and changes nothing: an action
/// the state machine does not allow now (including pressing Send twice), or one made on a page that
/// is out of date.
pub async fn perform_action(
    State(state): State<AppState>,
    page: Page,
    Path((clinic_id, appointment_id)): Path<(String, String)>,
    Extension(form): Extension<Form>,
) -> Result<Response, PageError> {
    let clinic_id = ClinicId::parse(&clinic_id).map_err(|_| PageError::NotFound("clinic"))?;
    let appointment_id =
        AppointmentId::parse(&appointment_id).map_err(|_| PageError::NotFound("appointment"))?;
    let action: AppointmentAction = form.text("action").parse().map_err(|_| {
        PageError::BadRequest(format!(
            "The action {:?} is not one this service knows. Go back and use one of the buttons.",
            form.text("action").chars().take(32).collect::<String>()
        ))
    })?;
    let version: i64 = form.text("version").parse().map_err(|_| {
        PageError::BadRequest(
            "The form is missing the appointment's version. Reload the page and try again.".into(),
        )
    })?;
    let context = state.store.send_context(appointment_id).await?;
    if context.clinic.id != clinic_id {
        return Err(PageError::NotFound("appointment"));
    }
    let name = format!(
        "{} {}",
        context.participant.first_name, context.participant.last_name
    );
    let refuse = |text: String| Problem::general(format!("{name}: {text}"));

    // First the rules, so a double submit reads "already sent; use Resend" rather than "changed".
    let request = ActionRequest::new(
        action,
        now_utc(),
        MessageId::generate(),
        page.session.actor(),
    );
    // One load and one render: the outcome worked out here is the one committed, and the store
    // checks in the transaction that the appointment is still at the version this page showed.
    let checked = match screening_core::send::act(&context, &request) {
        Err(error) => Err(refuse(format::capitalised(&error.to_string()))),
        Ok(_) if context.appointment.version != version => Err(refuse(format!(
            "the appointment changed since you opened this page (it is now {}). Nothing was \
             changed: check it and try again.",
            context.appointment.state.label().to_lowercase()
        ))),
        Ok(outcome) => Ok(outcome),
    };
    let outcome = match checked {
        Ok(outcome) => outcome,
        Err(problem) => {
            return render_clinic(
                &state,
                &page,
                clinic_id,
                StatusCode::CONFLICT,
                vec![problem],
            )
            .await
        }
    };
    match screening_core::send::commit_outcome(state.store.as_ref(), &context, &request, outcome)
        .await
    {
        Ok(outcome) => {
            let done = match (&outcome.message, action) {
                (Some(_), AppointmentAction::Cancel) => {
                    "cancelled – the order is being withdrawn from the modality.".to_string()
                }
                (Some(_), _) => format!("{} – the message is on its way.", action.label()),
                (None, _) => format!("{}.", outcome.appointment.state.label()),
            };
            // No participant's name in a cookie: the appointment's id, and the words.
            Ok(page.redirect_with_flash(
                &format!("/clinics/{clinic_id}#appointment-{appointment_id}"),
                &format!("{appointment_id}{FLASH_SEPARATOR}{done}"),
            ))
        }
        Err(ActionError::Store(error)) => Err(error.into()),
        Err(refused) => {
            let problem = refuse(format::capitalised(&refused.to_string()));
            render_clinic(
                &state,
                &page,
                clinic_id,
                StatusCode::CONFLICT,
                vec![problem],
            )
            .await
        }
    }
}
