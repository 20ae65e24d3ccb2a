//! # screening-web
//!
//! The clinic web application: clinics, appointments and "Send to modality" for clinic staff; the
//! admin of messages and gateways. Leptos renders every page on the server with the NHS.UK design
//! system's markup; forms post and redirect back, so everything works without JavaScript. Where
//! JavaScript runs, small islands hydrate and the status of sent messages updates live.
//!
//! The server side (feature `ssr`, the default) is in [`server`]; the browser bundle (feature
//! `hydrate`) holds only [`live`], [`status`] and the client side of the server functions in
//! [`api`], built by `cargo xtask build-web`.

#![warn(missing_docs)]

pub mod api;
pub mod live;
pub mod status;

#[cfg(feature = "ssr")]
pub mod server;

/// The browser entry point: hydrates the interactive islands of a server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_islands();
}
