//! Error pages: not found, forbidden, bad request, and the store failing.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use leptos::prelude::*;
use screening_core::prelude::*;

use crate::server::auth::chrome_for;
use crate::server::html::{render_page, Chrome, Section};
use crate::server::AppState;

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The thing named in the URL does not exist (or the id is not an id).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request itself was wrong.
    #[error("{0}")]
    BadRequest(String),
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { what, .. } => PageError::NotFound(what),
            other => PageError::Store(other),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::NotFound(what) => message_page(
                StatusCode::NOT_FOUND,
                "Page not found",
                &format!(
                    "There is no {what} at this address. If you typed it, check it is correct; \
                     if you followed a link, it may have been removed. Go to the list of clinics."
                ),
            ),
            PageError::BadRequest(text) => message_page(
                StatusCode::BAD_REQUEST,
                "There is a problem with the request",
                &text,
            ),
            PageError::Store(error) => {
                tracing::error!(%error, "page failed (store)");
                message_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sorry, there is a problem with the service",
                    "Nothing was saved. Try again later.",
                )
            }
        }
    }
}

/// A page with a heading, one paragraph and a link to the clinics.
pub fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    let heading = title.to_string();
    let text = text.to_string();
    render_page(
        status,
        title,
        Section::None,
        &Chrome::default(),
        view! {
            <h1>{heading}</h1>
            <p>{text}</p>
            <p><a href="/clinics">"Go to the list of clinics"</a></p>
        }
        .into_any(),
    )
}

/// 403 for a signed-in user who may not see the page.
pub fn forbidden(chrome: Chrome) -> Response {
    render_page(
        StatusCode::FORBIDDEN,
        "You do not have access to this page",
        Section::None,
        &chrome,
        view! {
            <h1>"You do not have access to this page"</h1>
            <p>"Only administrators can see the admin pages. Ask an administrator if you need access."</p>
            <p><a href="/clinics">"Go to the list of clinics"</a></p>
        }
        .into_any(),
    )
}

/// The fallback: a helpful 404 for any unknown address.
pub async fn not_found(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let chrome = chrome_for(&state, &headers).await;
    let path = uri.path().chars().take(200).collect::<String>();
    render_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        Section::None,
        &chrome,
        view! {
            <h1>"Page not found"</h1>
            <p>"If you typed the web address, check it is correct."</p>
            <p>"If you pasted the web address, check you copied the entire address."</p>
            <p class="nhsuk-body-s">"Address: " <code>{path}</code></p>
            <p><a href="/clinics">"Go to the list of clinics"</a></p>
        }
        .into_any(),
    )
}
