//! Security headers on every response (pages, redirects, the event stream, static assets, the
//! hub's API and errors alike), set in one layer so no route can forget them: a
//! Content-Security-Policy whose script and style nonce is new for each response, `nosniff`,
//! `X-Frame-Options`, `Referrer-Policy`, and HSTS when the app is served over https.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::http::{header, HeaderMap, HeaderValue, Request, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use screening_gateway::random;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use super::auth::forwarded_from_https;
use super::AppState;

tokio::task_local! {
    /// This response's CSP nonce, for the page renderer.
    static NONCE: Arc<str>;
}

/// The nonce of the response being made, when inside [`SecurityHeadersLayer`].
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
///
/// A tower layer with its own future rather than `axum::middleware::from_fn`, which boxes its
/// future and a clone of the service beneath for every request: a waiting long poll holds its
/// request's futures for up to a minute, ten thousand of them at once (`benches/many_gateways.rs`).
#[derive(Clone)]
pub struct SecurityHeadersLayer {
    secure_cookies: bool,
}

impl SecurityHeadersLayer {
    /// HSTS goes on every response when the app says it is served over https
    /// ([`super::WebConfig::secure_cookies`]), and otherwise on those forwarded from https.
    pub fn new(state: &AppState) -> Self {
        Self {
            secure_cookies: state.config.secure_cookies,
        }
    }
}

impl<S> Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeaders {
            inner,
            secure_cookies: self.secure_cookies,
        }
    }
}

/// The service of [`SecurityHeadersLayer`].
#[derive(Clone)]
pub struct SecurityHeaders<S> {
    inner: S,
    secure_cookies: bool,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SecurityHeaders<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = SecurityHeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let https = self.secure_cookies || forwarded_from_https(request.headers());
        let nonce: Arc<str> = URL_SAFE_NO_PAD.encode(random::bytes::<16>()).into();
        // The nonce is there both when the service beneath is called and while its future runs.
        let inner = NONCE.sync_scope(nonce.clone(), || self.inner.call(request));
        SecurityHeadersFuture {
            inner: NONCE.scope(nonce.clone(), inner),
            nonce,
            https,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of the service beneath, with the security headers added.
    pub struct SecurityHeadersFuture<F> {
        #[pin]
        inner: TaskLocalFuture<Arc<str>, F>,
        nonce: Arc<str>,
        https: bool,
    }
}

impl<F, ResBody, E> Future for SecurityHeadersFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        add_security_headers(response.headers_mut(), this.nonce, *this.https);
        Poll::Ready(Ok(response))
    }
}

fn add_security_headers(headers: &mut HeaderMap, nonce: &str, https: bool) {
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(nonce)) {
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
}
