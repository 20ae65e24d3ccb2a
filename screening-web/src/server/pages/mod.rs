//! The pages. Each handler loads what it shows, renders it with [`super::html`], and answers a
//! successful form with a redirect back (303) and a one-off banner, or a refused one with the same
//! page, an error summary and a 4xx status.

pub mod alerts;
pub mod audit;
pub mod clinics;
pub mod errors;
pub mod gateways;
pub mod messages;
pub mod sign_in;
pub mod staff;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::AnyView;

use super::auth::{cookie, over_tls, set_cookie, Session};
use super::html::{render_page, Chrome, Section};
use super::AppState;

/// The cookie that carries a success message across the redirect after a form.
const FLASH_COOKIE: &str = "screening_flash";

/// A signed-in request's page context.
pub struct Page {
    /// Who is signed in.
    pub session: Session,
    /// The frame: user, CSRF token, banner.
    pub chrome: Chrome,
    had_flash: bool,
    secure: bool,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| Redirect::to("/sign-in").into_response())?;
        let flash = cookie(&parts.headers, FLASH_COOKIE).and_then(|value| {
            form_urlencoded::parse(format!("f={value}").as_bytes())
                .next()
                .map(|(_, text)| text.chars().take(300).collect::<String>())
        });
        let csrf = session.csrf_token();
        Ok(Self {
            chrome: Chrome::for_session(&session, csrf, flash.clone()),
            session,
            had_flash: flash.is_some(),
            secure: over_tls(state, &parts.headers),
        })
    }
}

impl Page {
    /// Renders a page in the frame, clearing the banner once shown.
    pub fn render(
        &self,
        status: StatusCode,
        title: &str,
        section: Section,
        body: AnyView,
    ) -> Response {
        self.render_with_banner(self.chrome.flash.clone(), status, title, section, body)
    }

    /// As [`Page::render`], with the banner's words as the page worked them out (the clinic page
    /// puts back the participant's name, which the cookie never carries).
    pub fn render_with_banner(
        &self,
        banner: Option<String>,
        status: StatusCode,
        title: &str,
        section: Section,
        body: AnyView,
    ) -> Response {
        let chrome = Chrome {
            flash: banner,
            ..self.chrome.clone()
        };
        let mut response = render_page(status, title, section, &chrome, body);
        if self.had_flash {
            append_cookie(&mut response, &set_cookie(FLASH_COOKIE, "", 0, self.secure));
        }
        response
    }

    /// Records, for the audit page, that this person did `action` to `subject`.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        subject: String,
    ) -> Result<(), screening_core::prelude::StoreError> {
        state
            .store
            .record_admin_event(&screening_store::AdminEvent {
                occurred_at: screening_store::now_utc(),
                actor: self.session.user.username.to_string(),
                action: action.into(),
                subject,
            })
            .await
    }

    /// A redirect (303) to `to` that shows `flash` there once.
    pub fn redirect_with_flash(&self, to: &str, flash: &str) -> Response {
        let mut response = Redirect::to(to).into_response();
        let value: String = form_urlencoded::byte_serialize(flash.as_bytes()).collect();
        append_cookie(
            &mut response,
            &set_cookie(FLASH_COOKIE, &value, 60, self.secure),
        );
        response
    }
}

/// Adds a `Set-Cookie` header.
pub fn append_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}
