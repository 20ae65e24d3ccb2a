//! A message's status as the clinic page shows it. The same markup renders on the server and, in
//! the live-status island, in the browser, so hydration finds what it expects.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The latest message of one appointment, formatted for display (times already in UK local time,
/// so the browser needs no clock or time-zone data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// The appointment the message is about: which row of the clinic page it belongs to.
    pub appointment_id: String,
    /// The message.
    pub message_id: String,
    /// `pending`, `delivered`, `confirmed` or `failed`.
    pub status: String,
    /// When it was created (`HH:MM:SS`).
    pub created: String,
    /// When the gateway took it.
    pub delivered: Option<String>,
    /// When the gateway reported its destination accepted it.
    pub confirmed: Option<String>,
    /// When it was parked as failed.
    pub failed: Option<String>,
    /// Why it failed (or why the last attempt did not go through), naming the phase.
    pub reason: Option<String>,
    /// What the modality reported: `started`, `completed` or `discontinued`.
    #[serde(default)]
    pub procedure: Option<String>,
    /// The modality's report in words: "Started at 09:14 on MAMMO1".
    #[serde(default)]
    pub procedure_text: Option<String>,
}

/// The NHS tag colour and label of a message status.
pub fn status_tag(status: &str) -> (&'static str, &'static str) {
    match status {
        "pending" => ("nhsuk-tag nhsuk-tag--grey", "Pending"),
        "delivered" => ("nhsuk-tag nhsuk-tag--blue", "Delivered"),
        "confirmed" => ("nhsuk-tag nhsuk-tag--green", "Confirmed"),
        "failed" => ("nhsuk-tag nhsuk-tag--red", "Failed"),
        _ => ("nhsuk-tag nhsuk-tag--grey", "Unknown"),
    }
}

/// The status cell: a tag, the times, and the reason when there is one.
#[component]
pub fn StatusCell(
    /// The latest message's status; none when nothing was sent.
    view: Option<StatusView>,
) -> impl IntoView {
    match view {
        None => {
            view! { <span class="nhsuk-body-s" data-status="none">"Not sent"</span> }.into_any()
        }
        Some(view) => {
            let (class, label) = status_tag(&view.status);
            let times = [
                Some(format!("Sent {}", view.created)),
                view.delivered.map(|t| format!("delivered {t}")),
                view.confirmed.map(|t| format!("confirmed {t}")),
                view.failed.map(|t| format!("failed {t}")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
            view! {
                <span data-status=view.status.clone()>
                    <strong class=class>{label}</strong>
                    <span class="nhsuk-body-s nhsuk-u-display-block nhsuk-u-margin-top-1">{times}</span>
                    {view.procedure_text.map(|text| view! {
                        <span class="nhsuk-body-s nhsuk-u-display-block" data-procedure=view.procedure.clone()>
                            {text}
                        </span>
                    })}
                    {view.reason.map(|reason| view! {
                        <span class="nhsuk-error-message nhsuk-u-font-size-16 nhsuk-u-margin-bottom-0">
                            <span class="nhsuk-u-visually-hidden">"Reason: "</span>{reason}
                        </span>
                    })}
                </span>
            }
            .into_any()
        }
    }
}
