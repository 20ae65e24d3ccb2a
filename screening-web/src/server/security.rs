//! Security headers on every response (pages, redirects, the event stream, static assets, the
//! hub's API and errors alike), set in one layer so no route can forget them: a
//! Content-Security-Policy whose script and style nonce is new for each response, `nosniff`,
//! `X-Frame-Options`, `Referrer-Policy`, and HSTS when the app is served over https.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use screening_gateway::random;

use super::auth::over_tls;
use super::AppState;

tokio::task_local! {
    /// This response's CSP nonce, for the page renderer.
    static NONCE: Arc<str>;
}

/// The nonce of the response being made, when inside [`security_headers`].
pub fn current_nonce() -> Option<Arc<str>> {
    NONCE.try_with(Arc::clone).ok()
}

/// The policy: only this origin's scripts (and the page's own hydration script, by nonce),
/// WebAssembly for the live status, this origin's styles (and the page's one style element), the
/// NHS fonts, and nothing framed, embedded or posted elsewhere.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; \
         font-src 'self' https://assets.nhs.uk; connect-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The layer: a fresh nonce for the handler to render with, then the headers on what it returns.
pub async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let https = over_tls(&state, request.headers());
    let nonce: Arc<str> = URL_SAFE_NO_PAD.encode(random::bytes::<16>()).into();
    let mut response = NONCE.scope(nonce.clone(), next.run(request)).await;
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}
