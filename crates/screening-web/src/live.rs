//! The interactive island: the only code that runs in the browser.
//!
//! The server renders each appointment's status cell (`id="status-{appointment id}"`) as plain
//! HTML. One [`LiveUpdates`] island per clinic page opens a single server-sent events stream
//! (browsers allow few connections per host, so not one per row) and, for each update, renders the
//! same [`StatusCell`] component into that row's cell. Without JavaScript the server-rendered
//! status stands, and a reload shows the latest.

use leptos::prelude::*;

#[cfg(feature = "hydrate")]
use crate::status::{StatusCell, StatusView};

/// The id of the element that holds an appointment's status cell.
pub fn status_cell_id(appointment_id: &str) -> String {
    format!("status-{appointment_id}")
}

/// Opens the page's event stream and updates each row's status cell. Shows whether updates are live.
#[island]
pub fn LiveUpdates(events_url: String) -> impl IntoView {
    let (live, set_live) = signal(false);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| connect(&events_url, set_live));
    #[cfg(not(feature = "hydrate"))]
    let _ = (events_url, set_live);
    view! {
        <p class="nhsuk-body-s nhsuk-u-secondary-text-colour" data-live=move || if live.get() { "on" } else { "off" }>
            {move || if live.get() {
                "Message status updates automatically."
            } else {
                "Message status as it was when the page loaded: reload the page to update it."
            }}
        </p>
    }
}

#[cfg(feature = "hydrate")]
fn connect(url: &str, set_live: WriteSignal<bool>) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    let Ok(source) = web_sys::EventSource::new(url) else {
        return;
    };
    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| set_live.set(true));
    // The browser reconnects by itself; the server then sends every row again.
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| set_live.set(false));
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let Some(update) = event
                .data()
                .as_string()
                .and_then(|data| serde_json::from_str::<StatusView>(&data).ok())
            else {
                return;
            };
            let cell = web_sys::window()
                .and_then(|window| window.document())
                .and_then(|document| {
                    document.get_element_by_id(&status_cell_id(&update.appointment_id))
                })
                .and_then(|element| element.dyn_into::<web_sys::HtmlElement>().ok());
            if let Some(cell) = cell {
                cell.set_inner_html("");
                leptos::mount::mount_to(cell, move || view! { <StatusCell view=Some(update)/> })
                    .forget();
            }
        });
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The stream lives as long as the page.
    on_open.forget();
    on_error.forget();
    on_message.forget();
    std::mem::forget(source);
}
