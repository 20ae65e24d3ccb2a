//! The interactive islands: the only code that runs in the browser.
//!
//! Each appointment row has a [`LiveMessageStatus`] island; one [`LiveUpdates`] island per page
//! opens a single server-sent events stream (browsers allow few connections per host, so not one
//! per row) and hands each update to the row's island. Without JavaScript the server-rendered
//! status stands, and a reload shows the latest.

use leptos::prelude::*;

use crate::status::{StatusCell, StatusView};

#[cfg(feature = "hydrate")]
thread_local! {
    /// The status setters of the hydrated rows, by appointment id.
    static ROWS: std::cell::RefCell<std::collections::HashMap<String, WriteSignal<Option<StatusView>>>> =
        Default::default();
}

/// The latest message status of one appointment; updated live when JavaScript runs.
#[island]
pub fn LiveMessageStatus(appointment_id: String, initial: Option<StatusView>) -> impl IntoView {
    let (status, set_status) = signal(initial);
    #[cfg(feature = "hydrate")]
    ROWS.with(|rows| rows.borrow_mut().insert(appointment_id, set_status));
    #[cfg(not(feature = "hydrate"))]
    let _ = (appointment_id, set_status);
    view! {
        <div aria-live="polite">
            {move || view! { <StatusCell view=status.get()/> }}
        </div>
    }
}

/// Opens the page's event stream and routes each status to its row. Shows whether updates are live.
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
            let Some(data) = event.data().as_string() else {
                return;
            };
            let Ok(update) = serde_json::from_str::<StatusView>(&data) else {
                return;
            };
            ROWS.with(|rows| {
                if let Some(set) = rows.borrow().get(&update.appointment_id) {
                    set.set(Some(update));
                }
            });
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
