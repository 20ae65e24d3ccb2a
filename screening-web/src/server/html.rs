//! The page shell and the NHS.UK frontend components, rendered with Leptos on the server.
//!
//! The markup follows `nhsuk-frontend` 10 (header, footer, table, tag, button, summary list, error
//! summary, notification banner, back link) so its CSS applies unchanged.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use leptos::config::LeptosOptions;
use leptos::hydration::HydrationScripts;
use leptos::prelude::*;
use screening_core::prelude::*;

use super::auth::{Session, CSRF_FIELD};

/// Which section of the header navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// No section (sign-in, errors).
    None,
    /// Clinics and appointments.
    Clinics,
    /// Admin: messages.
    Messages,
    /// Admin: gateways.
    Gateways,
    /// Admin: what admins did.
    Audit,
    /// Admin: alerts open and past.
    Alerts,
    /// Admin: staff accounts.
    Staff,
}

/// What every page's frame needs: who is signed in, their CSRF token, a one-off banner.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// The signed-in user.
    pub user: Option<StaffUser>,
    /// The CSRF token for this session's forms.
    pub csrf: String,
    /// A success message from the action that redirected here.
    pub flash: Option<String>,
}

impl Chrome {
    /// The frame for a signed-in session.
    pub fn for_session(session: &Session, csrf: String, flash: Option<String>) -> Self {
        Self {
            user: Some(session.user.clone()),
            csrf,
            flash,
        }
    }
}

fn leptos_options() -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("screening_web")
        .site_pkg_dir("pkg")
        .build()
}

/// Leptos marks text boundaries with `<!>`, which the HTML standard parses as a bogus comment (a
/// parse error that browsers forgive). `<!---->` is the well-formed spelling of the same empty
/// comment: the DOM, and so hydration, is unchanged.
fn well_formed_markers(html: &str) -> String {
    html.replace("<!>", "<!---->")
}

/// Leptos 0.8's hydration scripts put the nonce in the preload links' `crossorigin` attribute,
/// which is not a value it may have; `anonymous` is what a browser makes of it anyway, and what a
/// module script is fetched with, so the preloads are still used.
fn preloads_without_nonce(html: &str, nonce: &str) -> String {
    html.replace(
        &format!(" crossorigin=\"{nonce}\""),
        " crossorigin=\"anonymous\"",
    )
}

/// Renders a whole page: `<title>`, header, the optional banner, the body, footer and the islands'
/// hydration script.
pub fn render_page(
    status: StatusCode,
    title: &str,
    section: Section,
    chrome: &Chrome,
    body: AnyView,
) -> Response {
    let user = chrome.user.clone();
    let csrf = chrome.csrf.clone();
    let flash = chrome.flash.clone();
    let title = format!("{title} – NHS Breast Screening");
    let nonce = super::security::current_nonce();
    let html = Owner::new().with(move || {
        // The hydration script carries this response's nonce, which the CSP names.
        if let Some(nonce) = nonce.clone() {
            provide_context(leptos::nonce::Nonce::from_value(nonce));
        }
        let style_nonce = nonce.map(|n| n.to_string());
        view! {
            <!DOCTYPE html>
            <html lang="en">
                <head>
                    <meta charset="utf-8"/>
                    <meta name="viewport" content="width=device-width, initial-scale=1"/>
                    <title>{title}</title>
                    <link rel="stylesheet" href="/assets/nhsuk-frontend.min.css"/>
                    <link rel="icon" href="/assets/images/favicon.svg" type="image/svg+xml"/>
                    <style nonce=style_nonce>{PAGE_STYLE}</style>
                    <HydrationScripts options=leptos_options() islands=true/>
                </head>
                <body>
                    <a class="nhsuk-skip-link" href="#maincontent">"Skip to main content"</a>
                    <Header user=user csrf=csrf section=section/>
                    <div class="nhsuk-width-container">
                        <main class="nhsuk-main-wrapper" id="maincontent">
                            {flash.map(|text| view! { <SuccessBanner text=text/> })}
                            {body}
                        </main>
                    </div>
                    <Footer/>
                </body>
            </html>
        }
        .to_html()
    });
    let html = match super::security::current_nonce() {
        Some(nonce) => preloads_without_nonce(&html, &nonce),
        None => html,
    };
    let mut response = (status, well_formed_markers(&html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Pages carry patient data: never cache them in shared or browser caches.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The other security headers go on every response, in `security::SecurityHeadersLayer`.
    response
}

/// The few rules the NHS frontend has no class for; in the page (with its nonce), as the CSP
/// allows no `style` attributes.
const PAGE_STYLE: &str =
    ".app-scroll-x{overflow-x:auto}.app-pre{white-space:pre}.app-break-all{word-break:break-all}";

const NHS_LOGO_PATH: &str = "M200 0v80H0V0h200Zm-27.5 5.5c-14.5 0-29 5-29 22 0 10.2 7.7 13.5 14.7 16.3l.7.3c5.4 2 10.1 3.9 10.1 8.4 0 6.5-8.5 7.5-14 7.5s-12.5-1.5-16-3.5L135 70c5.5 2 13.5 3.5 20 3.5 15.5 0 32-4.5 32-22.5 0-19.5-25.5-16.5-25.5-25.5 0-5.5 5.5-6.5 12.5-6.5a35 35 0 0 1 14.5 3l4-13.5c-4.5-2-12-3-20-3Zm-131 2h-22l-14 65H22l9-45h.5l13.5 45h21.5l14-65H64l-9 45h-.5l-13-45Zm63 0h-18l-13 65h17l6-28H117l-5.5 28H129l13.5-65H125L119.5 32h-20l5-24.5Z";

/// The NHS header: logo and service name, the account (name, sign out), and the navigation.
#[component]
fn Header(user: Option<StaffUser>, csrf: String, section: Section) -> impl IntoView {
    let nav_item = move |href: &'static str, label: &'static str, this: Section| {
        let current = section == this;
        view! {
            <li class=if current { "nhsuk-header__navigation-item nhsuk-header__navigation-item--current" } else { "nhsuk-header__navigation-item" }>
                <a class="nhsuk-header__navigation-link" href=href aria-current=current.then_some("page")>
                    {label}
                </a>
            </li>
        }
    };
    let is_admin = user.as_ref().is_some_and(|user| user.role.is_admin());
    let signed_in = user.is_some();
    view! {
        <header class="nhsuk-header">
            <div class="nhsuk-header__container nhsuk-width-container">
                <div class="nhsuk-header__service">
                    <a class="nhsuk-header__service-logo" href="/clinics" aria-label="NHS Breast Screening homepage">
                        <svg class="nhsuk-header__logo" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 80" height="40" width="100" focusable="false" role="img" aria-label="NHS">
                            <title>"NHS"</title>
                            <path fill="currentcolor" d=NHS_LOGO_PATH></path>
                        </svg>
                        <span class="nhsuk-header__service-name">"Breast Screening"</span>
                    </a>
                </div>
                {user.map(|user| view! {
                    <nav class="nhsuk-header__account" aria-label="Account">
                        <ul class="nhsuk-header__account-list">
                            <li class="nhsuk-header__account-item">
                                {user.display_name.clone()}
                                {user.role.is_admin().then_some(" (admin)")}
                            </li>
                            <li class="nhsuk-header__account-item">
                                <form class="nhsuk-header__account-form" action="/sign-out" method="post">
                                    <CsrfField token=csrf/>
                                    <button class="nhsuk-header__account-button">"Sign out"</button>
                                </form>
                            </li>
                        </ul>
                    </nav>
                })}
            </div>
            {signed_in.then(|| view! {
                <nav class="nhsuk-header__navigation" aria-label="Menu">
                    <div class="nhsuk-header__navigation-container nhsuk-width-container">
                        <ul class="nhsuk-header__navigation-list">
                            {nav_item("/clinics", "Clinics", Section::Clinics)}
                            {is_admin.then(|| nav_item("/admin/messages", "Messages", Section::Messages))}
                            {is_admin.then(|| nav_item("/admin/gateways", "Gateways", Section::Gateways))}
                            {is_admin.then(|| nav_item("/admin/alerts", "Alerts", Section::Alerts))}
                            {is_admin.then(|| nav_item("/admin/staff", "Staff", Section::Staff))}
                            {is_admin.then(|| nav_item("/admin/audit", "Audit", Section::Audit))}
                        </ul>
                    </div>
                </nav>
            })}
        </header>
    }
}

#[component]
fn Footer() -> impl IntoView {
    view! {
        <footer class="nhsuk-footer">
            <div class="nhsuk-width-container">
                <div class="nhsuk-footer__meta">
                    <h2 class="nhsuk-u-visually-hidden">"Support links"</h2>
                    <p class="nhsuk-body-s">
                        "NHS Breast Screening – send to modality. Patient data on these pages is confidential."
                    </p>
                </div>
            </div>
        </footer>
    }
}

/// The hidden field that proves a form came from our page.
#[component]
pub fn CsrfField(
    /// The session's CSRF token.
    token: String,
) -> impl IntoView {
    view! { <input type="hidden" name=CSRF_FIELD value=token/> }
}

/// A green "Success" notification banner.
#[component]
pub fn SuccessBanner(
    /// What was done.
    text: String,
) -> impl IntoView {
    view! {
        <div class="nhsuk-notification-banner nhsuk-notification-banner--success" role="alert" aria-labelledby="notification-banner-title">
            <div class="nhsuk-notification-banner__header">
                <h2 class="nhsuk-notification-banner__title" id="notification-banner-title">"Success"</h2>
            </div>
            <div class="nhsuk-notification-banner__content">
                <p class="nhsuk-notification-banner__heading">{text}</p>
            </div>
        </div>
    }
}

/// The NHS warning callout for open alerts: what is wrong and what to do, one paragraph each.
#[component]
pub fn AlertCallout(
    /// The open alerts' summaries; nothing is shown when there are none.
    summaries: Vec<String>,
) -> impl IntoView {
    (!summaries.is_empty()).then(|| {
        let paragraphs = summaries
            .into_iter()
            .map(|summary| view! { <p data-alert="open">{summary}</p> })
            .collect_view();
        view! {
            <div class="nhsuk-warning-callout">
                <h2 class="nhsuk-warning-callout__label">
                    <span class="nhsuk-u-visually-hidden">"Important: "</span>
                    "Gateway problem"
                </h2>
                {paragraphs}
            </div>
        }
    })
}

/// One problem in an error summary: the message and the field it links to.
#[derive(Debug, Clone)]
pub struct Problem {
    /// `#field-id`, or `#maincontent` when no field is to blame.
    pub href: String,
    /// What went wrong and how to put it right.
    pub text: String,
}

impl Problem {
    /// A problem with a field.
    pub fn field(id: &str, text: impl Into<String>) -> Self {
        Self {
            href: format!("#{id}"),
            text: text.into(),
        }
    }

    /// A problem with the action as a whole.
    pub fn general(text: impl Into<String>) -> Self {
        Self {
            href: "#maincontent".into(),
            text: text.into(),
        }
    }
}

/// The NHS error summary, shown at the top of a page whose action was refused.
#[component]
pub fn ErrorSummary(
    /// Each problem, linked to its field; none renders nothing.
    problems: Vec<Problem>,
) -> impl IntoView {
    (!problems.is_empty()).then(|| {
        view! {
            <div class="nhsuk-error-summary" aria-labelledby="error-summary-title" role="alert" tabindex="-1" autofocus>
                <h2 class="nhsuk-error-summary__title" id="error-summary-title">"There is a problem"</h2>
                <div class="nhsuk-error-summary__body">
                    <ul class="nhsuk-list nhsuk-error-summary__list">
                        {problems.into_iter().map(|problem| view! {
                            <li><a href=problem.href>{problem.text}</a></li>
                        }).collect_view()}
                    </ul>
                </div>
            </div>
        }
    })
}

/// A back link.
#[component]
pub fn BackLink(
    /// Where it goes.
    href: String,
    /// Its text.
    text: &'static str,
) -> impl IntoView {
    view! { <a class="nhsuk-back-link" href=href>{text}</a> }
}

/// A summary list of key/value rows.
#[component]
pub fn SummaryList(
    /// Each row's key and value.
    rows: Vec<(&'static str, AnyView)>,
) -> impl IntoView {
    view! {
        <dl class="nhsuk-summary-list">
            {rows.into_iter().map(|(key, value)| view! {
                <div class="nhsuk-summary-list__row">
                    <dt class="nhsuk-summary-list__key">{key}</dt>
                    <dd class="nhsuk-summary-list__value">{value}</dd>
                </div>
            }).collect_view()}
        </dl>
    }
}

/// The NHS tag colour of an appointment state.
pub fn appointment_tag(state: AppointmentState) -> &'static str {
    match state {
        AppointmentState::Pending => "nhsuk-tag nhsuk-tag--white",
        AppointmentState::Arrived => "nhsuk-tag nhsuk-tag--yellow",
        AppointmentState::CheckedIn => "nhsuk-tag nhsuk-tag--blue",
        AppointmentState::SentToModality => "nhsuk-tag nhsuk-tag--purple",
        AppointmentState::InProgress => "nhsuk-tag nhsuk-tag--aqua-green",
        AppointmentState::Discontinued => "nhsuk-tag nhsuk-tag--red",
        AppointmentState::Complete => "nhsuk-tag nhsuk-tag--green",
        AppointmentState::Cancelled => "nhsuk-tag nhsuk-tag--grey",
        AppointmentState::DidNotAttend => "nhsuk-tag nhsuk-tag--orange",
    }
}

/// The class of a form group, red-edged when it has an error.
pub fn group_class(has_error: bool) -> &'static str {
    if has_error {
        "nhsuk-form-group nhsuk-form-group--error"
    } else {
        "nhsuk-form-group"
    }
}

/// A field's error message, when it has one.
#[component]
pub fn FieldError(
    /// The message; none renders nothing.
    error: Option<String>,
    /// The element id, for the input's `aria-describedby`.
    #[prop(optional)]
    id: Option<String>,
) -> impl IntoView {
    error.map(|error| {
        view! {
            <span class="nhsuk-error-message" id=id>
                <span class="nhsuk-u-visually-hidden">"Error: "</span>{error}
            </span>
        }
    })
}

/// A text input with its label, hint and error message, as the NHS form-group pattern lays out.
#[component]
pub fn TextInput(
    /// The input's id and form field name.
    id: &'static str,
    /// The label's text.
    label: &'static str,
    /// The current value.
    value: String,
    /// A hint under the label.
    #[prop(optional)]
    hint: Option<&'static str>,
    /// The field's error, when the form was refused.
    #[prop(default = None)]
    error: Option<String>,
    /// The input `type`: `text` unless given.
    #[prop(default = "text")]
    input_type: &'static str,
    /// The `autocomplete` hint.
    #[prop(optional)]
    autocomplete: Option<&'static str>,
) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described_by = [
        hint.map(|_| hint_id.clone()),
        error.as_ref().map(|_| error_id.clone()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let has_error = error.is_some();
    view! {
        <div class=group_class(has_error)>
            <label class="nhsuk-label" for=id>{label}</label>
            {hint.map(|hint| view! { <div class="nhsuk-hint" id=hint_id.clone()>{hint}</div> })}
            <FieldError error=error id=error_id/>
            <input
                class=if has_error { "nhsuk-input nhsuk-input--error" } else { "nhsuk-input" }
                id=id
                name=id
                type=input_type
                value=value
                autocomplete=autocomplete
                aria-describedby=(!described_by.is_empty()).then_some(described_by)
            />
        </div>
    }
}
