//! The interactive island: the only code that runs in the browser.
//!
//! The server renders each appointment's status cell (`id="status-{appointment id}"`) as plain
//! HTML. One [`LiveUpdates`] island per clinic page opens a single server-sent events stream
//! (browsers allow few connections per host, so not one per row) and, for each update, renders the
//! same [`crate::status::StatusCell`] component into that row's cell. When the stream cannot get through (an error,
//! or nothing within 10 s, as behind a proxy that buffers streams) it asks the server function
//! [`crate::api::clinic_statuses`] every 5 s instead, until the stream opens. Without JavaScript the
//! server-rendered status stands, and a reload shows the latest.

use leptos::prelude::*;

#[cfg(feature = "hydrate")]
use crate::status::{StatusCell, StatusView};

/// The id of the element that holds an appointment's status cell.
pub fn status_cell_id(appointment_id: &str) -> String {
    format!("status-{appointment_id}")
}

/// How the page is getting status updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// The server only ever renders `Off`; the browser moves on from there.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Updates {
    /// Not yet, or not at all (no JavaScript).
    Off,
    /// Through the event stream.
    Stream,
    /// By asking every few seconds.
    Polling,
}

pub use island::{LiveUpdates, LiveUpdatesProps};

// `#[island]` generates a public struct for its serialised props that it leaves undocumented.
#[allow(missing_docs)]
mod island {
    use super::*;

    /// Opens the clinic's event stream and updates each row's status cell. Shows how updates arrive.
    #[island]
    pub fn LiveUpdates(
        /// The clinic whose rows to update.
        clinic_id: String,
    ) -> impl IntoView {
        let (updates, set_updates) = signal(Updates::Off);
        #[cfg(feature = "hydrate")]
        Effect::new(move |_| connect(clinic_id.clone(), updates, set_updates));
        #[cfg(not(feature = "hydrate"))]
        let _ = (clinic_id, set_updates);
        view! {
            <p
                class="nhsuk-body-s nhsuk-u-secondary-text-colour"
                data-live=move || match updates.get() {
                    Updates::Off => "off",
                    Updates::Stream => "on",
                    Updates::Polling => "polling",
                }
            >
                {move || match updates.get() {
                    Updates::Stream => "Message status updates automatically.",
                    Updates::Polling => "Message status updates every few seconds.",
                    Updates::Off => {
                        "Message status as it was when the page loaded: reload the page to update it."
                    }
                }}
            </p>
        }
    }
}

/// Shows `update` in its row. Each cell is mounted once with a signal behind it; later updates only
/// set the signal, so views are neither leaked nor rebuilt per update.
#[cfg(feature = "hydrate")]
fn render_cell(update: StatusView) {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use wasm_bindgen::JsCast;

    thread_local! {
        static CELLS: RefCell<HashMap<String, RwSignal<Option<StatusView>>>> =
            RefCell::new(HashMap::new());
    }
    let known = CELLS.with(|cells| cells.borrow().get(&update.appointment_id).copied());
    if let Some(signal) = known {
        signal.set(Some(update));
        return;
    }
    let Some(document) = web_sys::window().and_then(|window| window.document()) else {
        return;
    };
    let cell = document
        .get_element_by_id(&status_cell_id(&update.appointment_id))
        .and_then(|element| element.dyn_into::<web_sys::HtmlElement>().ok());
    let Some(cell) = cell else {
        return;
    };
    let appointment_id = update.appointment_id.clone();
    let signal = RwSignal::new(Some(update));
    cell.set_inner_html("");
    // Mounted for the life of the page: one view per row, updated through its signal.
    leptos::mount::mount_to(
        cell,
        move || view! { {move || view! { <StatusCell view=signal.get()/> }} },
    )
    .forget();
    let mounted = CELLS.with(|cells| {
        let mut cells = cells.borrow_mut();
        cells.insert(appointment_id, signal);
        cells.len()
    });
    // Shown on the island, so a test can see that views are mounted once per row, not per update.
    if let Some(island) = document.query_selector("[data-live]").ok().flatten() {
        let _ = island.set_attribute("data-live-cells", &mounted.to_string());
    }
}

/// Asks for every row's status every 5 s while the stream is not open.
#[cfg(feature = "hydrate")]
fn poll_until_streaming(
    clinic_id: String,
    updates: ReadSignal<Updates>,
    set_updates: WriteSignal<Updates>,
) {
    if updates.get_untracked() != Updates::Off {
        return;
    }
    set_updates.set(Updates::Polling);
    let poll = move || {
        let clinic_id = clinic_id.clone();
        leptos::task::spawn_local(async move {
            if let Ok(views) = crate::api::clinic_statuses(clinic_id).await {
                views.into_iter().for_each(render_cell);
            }
        });
    };
    poll();
    if let Ok(handle) = set_interval_with_handle(
        move || {
            if updates.get_untracked() == Updates::Polling {
                poll();
            }
        },
        std::time::Duration::from_secs(5),
    ) {
        // Stop polling once the stream is open.
        Effect::new(move |_| {
            if updates.get() == Updates::Stream {
                handle.clear();
            }
        });
    }
}

#[cfg(feature = "hydrate")]
fn connect(clinic_id: String, updates: ReadSignal<Updates>, set_updates: WriteSignal<Updates>) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    let Ok(source) = web_sys::EventSource::new(&format!("/clinics/{clinic_id}/events")) else {
        poll_until_streaming(clinic_id, updates, set_updates);
        return;
    };
    let on_open =
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| set_updates.set(Updates::Stream));
    // The browser reconnects by itself; the server then sends every row again. Meanwhile, poll.
    let polling_id = clinic_id.clone();
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        if updates.get_untracked() == Updates::Stream {
            set_updates.set(Updates::Off);
        }
        poll_until_streaming(polling_id.clone(), updates, set_updates);
    });
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            if let Some(update) = event
                .data()
                .as_string()
                .and_then(|data| serde_json::from_str::<StatusView>(&data).ok())
            {
                render_cell(update);
            }
        });
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // A stream that has not opened after 10 s is being held up: poll meanwhile.
    set_timeout(
        move || poll_until_streaming(clinic_id, updates, set_updates),
        std::time::Duration::from_secs(10),
    );
    // The stream lives as long as the page.
    on_open.forget();
    on_error.forget();
    on_message.forget();
    std::mem::forget(source);
}
