//! Who is signed in, and proof that a form came from our own page.
//!
//! - [`Authenticator`] turns what a person presents into a [`StaffUser`]. Passwords (argon2id) are
//!   the first implementation; NHS CIS2 (OIDC) can replace it without touching the pages.
//! - A session is a random 256-bit token in a cookie (`HttpOnly`, `SameSite=Lax`, `Secure` over
//!   TLS); the database keeps only its SHA-256 with the user and an expiry. Signing out ends it at
//!   once, and a role change or removed account applies to the next request, on every instance.
//! - Every state-changing POST carries a CSRF token derived from the session's token (from an
//!   anonymous token before sign-in), checked in one middleware so no handler can forget it. No
//!   server secret is needed: only the holder of the cookie can compute the token.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use screening_core::prelude::*;
use screening_gateway::random;
use screening_store::{ScreeningStore, StaffAccount};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::form::Form;
use super::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "screening_session";
/// The anonymous visitor's id, which the sign-in form's CSRF token is bound to.
pub const ANON_COOKIE: &str = "screening_anon";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
/// How long a session lasts: one working day.
pub const SESSION_HOURS: i64 = 10;
/// The shortest password accepted for a new account.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Why signing in failed. Deliberately the same for an unknown user and a wrong password.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Nothing matched.
    #[error("Enter a correct username and password")]
    Rejected,
    /// The store failed.
    #[error("the account store failed: {0}")]
    Store(#[from] StoreError),
}

/// Proves who someone is. Passwords today; an OIDC provider such as NHS CIS2 can implement this.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// The user for a username and password, or why not.
    async fn sign_in(&self, username: &str, password: &str) -> Result<StaffUser, SignInError>;
}

/// Username and password, checked against argon2id hashes in the store.
pub struct PasswordAuthenticator {
    store: Arc<dyn ScreeningStore>,
    /// The hash of a password nobody has, checked when the username is unknown, so an unknown
    /// username costs the same argon2 work as a known one and timing tells nothing.
    decoy_hash: Arc<str>,
}

impl PasswordAuthenticator {
    /// Checks passwords against the store's accounts.
    pub fn new(store: Arc<dyn ScreeningStore>) -> Self {
        let decoy = random_token();
        Self {
            store,
            decoy_hash: hash_password(&decoy)
                .expect("a 43-character token is long enough")
                .into(),
        }
    }
}

#[async_trait]
impl Authenticator for PasswordAuthenticator {
    async fn sign_in(&self, username: &str, password: &str) -> Result<StaffUser, SignInError> {
        let account = match Username::parse(username) {
            Ok(username) => self.store.staff_account(&username).await?,
            Err(_) => None,
        };
        let password = password.to_string();
        let decoy = self.decoy_hash.clone();
        // argon2 is deliberately slow: keep it off the async workers.
        let verified = tokio::task::spawn_blocking(move || match account {
            Some(account) => verify_password(&password, &account.password_hash).then_some(account),
            None => {
                // Always false; done for its cost.
                let _ = verify_password(&password, &decoy);
                None
            }
        })
        .await
        .map_err(|_| SignInError::Rejected)?;
        verified
            .map(|account| account.user)
            .ok_or(SignInError::Rejected)
    }
}

/// Slows password guessing. Attempts are counted in the database, so every instance sees the
/// same counts and a flood of made-up usernames costs no memory; each attempt is counted *before*
/// its password is checked, so guesses sent in parallel cannot pass the limit. Two limits: per
/// username (5 in 15 minutes; unknown usernames alike, so a refusal reveals nothing) and per client
/// address (50 in 15 minutes, for guessing across many usernames; higher, as a whole hospital may
/// share one address). A successful sign-in clears its username's count and takes its own
/// attempt back from the address's.
pub struct SignInLimits;

/// Whether a sign-in attempt may go on to the password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the password.
    Allowed,
    /// This username has had too many attempts in the window.
    TooManyForUsername,
    /// This client address has had too many attempts in the window.
    TooManyFromAddress,
}

impl SignInLimits {
    /// Attempts per username per window.
    pub const PER_USERNAME: u32 = 5;
    /// Attempts per client address per window.
    pub const PER_ADDRESS: u32 = 50;
    /// How long attempts count, from a key's first.
    pub const WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

    fn username_key(username: &str) -> String {
        let name: String = username.trim().to_lowercase().chars().take(64).collect();
        format!("user:{name}")
    }

    fn address_key(address: std::net::IpAddr) -> String {
        format!("addr:{address}")
    }

    /// Counts the attempt and says whether it may proceed.
    pub async fn admit(
        store: &dyn ScreeningStore,
        username: &str,
        address: Option<std::net::IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<Admission, StoreError> {
        if let Some(address) = address {
            let from_address = store
                .count_sign_in_attempt(&Self::address_key(address), now, Self::WINDOW)
                .await?;
            if from_address > Self::PER_ADDRESS {
                return Ok(Admission::TooManyFromAddress);
            }
        }
        let for_username = store
            .count_sign_in_attempt(&Self::username_key(username), now, Self::WINDOW)
            .await?;
        Ok(if for_username > Self::PER_USERNAME {
            Admission::TooManyForUsername
        } else {
            Admission::Allowed
        })
    }

    /// A successful sign-in: its username starts afresh, and its address gets this attempt back.
    pub async fn signed_in(
        store: &dyn ScreeningStore,
        username: &str,
        address: Option<std::net::IpAddr>,
    ) -> Result<(), StoreError> {
        store
            .forgive_sign_in_attempts(&Self::username_key(username), true)
            .await?;
        if let Some(address) = address {
            store
                .forgive_sign_in_attempts(&Self::address_key(address), false)
                .await?;
        }
        Ok(())
    }
}

/// A password that cannot be used for a new account.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short to resist guessing.
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
}

/// The argon2id PHC string of a password (a fresh random salt each time).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let salt = SaltString::encode_b64(&random::bytes::<16>()).expect("16 bytes of salt");
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with valid parameters")
        .to_string())
}

/// argon2id, version 0x13, 19 MiB of memory, 2 passes, 1 lane: OWASP's recommended minimum.
/// Verification reads the parameters from each stored hash, so raising them later keeps old
/// passwords working.
fn argon2() -> Argon2<'static> {
    Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Creates or updates a staff account with a new password.
pub async fn save_account(
    store: &dyn ScreeningStore,
    username: &str,
    display_name: &str,
    role: StaffRole,
    password: &str,
) -> Result<StaffUser, Box<dyn std::error::Error + Send + Sync>> {
    let username = Username::parse(username)?;
    let password = password.to_string();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    let display_name = match display_name.trim() {
        "" => username.to_string(),
        name => name.to_string(),
    };
    let account = StaffAccount {
        user: StaffUser {
            id: UserId::from_uuid(uuid::Uuid::new_v4()),
            username,
            display_name,
            role,
        },
        password_hash,
    };
    Ok(store.save_staff_account(&account, Utc::now()).await?)
}

/// A signed-in member of staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who, as their account is now.
    pub user: StaffUser,
    /// The cookie's token: the CSRF token derives from it. Never stored or logged.
    pub token: String,
}

impl Session {
    /// Who acts, for audit events.
    pub fn actor(&self) -> Actor {
        Actor(self.user.username.to_string())
    }

    /// The CSRF token for this session's forms.
    pub fn csrf_token(&self) -> String {
        csrf_token(&self.token)
    }
}

/// A random 256-bit token from the OS, URL-safe.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random::bytes::<32>())
}

/// What the database keeps of a session token.
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The CSRF token of forms shown to the holder of `secret` (a session or anonymous token).
pub fn csrf_token(secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"screening-web csrf\0");
    hasher.update(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// Whether a submitted CSRF token belongs to `secret`, compared in constant time.
pub fn csrf_valid(secret: &str, submitted: &str) -> bool {
    let expected = csrf_token(secret);
    bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
}

/// Starts a session for a user who just signed in; returns the cookie's token.
pub async fn start_session(
    store: &dyn ScreeningStore,
    user: &StaffUser,
) -> Result<String, StoreError> {
    let token = random_token();
    let now = Utc::now();
    store
        .create_session(
            &token_hash(&token),
            user.id,
            now,
            now + TimeDelta::hours(SESSION_HOURS),
        )
        .await?;
    Ok(token)
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the request reached us over TLS (directly configured, or said by the proxy in front).
pub fn over_tls(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.secure_cookies || forwarded_from_https(headers)
}

/// Whether a proxy in front says the request came over https (`X-Forwarded-Proto`).
pub fn forwarded_from_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value with the attributes every cookie of ours has.
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age_seconds}; HttpOnly; SameSite=Lax{secure}")
}

/// The session of the request, when it has a live one. A store failure counts as none (and is
/// logged): the visitor is asked to sign in rather than shown another person's page.
pub async fn current_session(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let token =
        cookie(headers, SESSION_COOKIE).filter(|token| !token.is_empty() && token.len() <= 128)?;
    match state
        .store
        .session_user(&token_hash(token), Utc::now())
        .await
    {
        Ok(user) => user.map(|user| Session {
            user,
            token: token.to_string(),
        }),
        Err(error) => {
            tracing::error!(%error, "reading the session failed (store)");
            None
        }
    }
}

/// Where to go after signing in: only a path on this site, never `//host` or a full URL.
pub fn safe_return_to(candidate: Option<&str>) -> String {
    match candidate {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.contains(['\r', '\n'])
                && path != "/sign-in" =>
        {
            path.to_string()
        }
        _ => "/clinics".to_string(),
    }
}

/// Pages for signed-in staff: no session → the sign-in page, coming back here afterwards.
pub async fn require_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match current_session(&state, request.headers()).await {
        Some(session) => {
            request.extensions_mut().insert(session);
            next.run(request).await
        }
        None => {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/clinics", |p| p.as_str());
            let target = if request.method() == Method::GET {
                format!(
                    "/sign-in?return_to={}",
                    form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
                )
            } else {
                "/sign-in".to_string()
            };
            Redirect::to(&target).into_response()
        }
    }
}

/// The page frame for whoever made the request: their name and CSRF token when signed in.
pub async fn chrome_for(state: &AppState, headers: &HeaderMap) -> super::html::Chrome {
    current_session(state, headers)
        .await
        .map(|session| super::html::Chrome::for_session(&session, session.csrf_token(), None))
        .unwrap_or_default()
}

/// The admin pages: admins only; clinic staff get 403.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let is_admin = request
        .extensions()
        .get::<Session>()
        .is_some_and(|session| session.user.role.is_admin());
    if is_admin {
        next.run(request).await
    } else {
        super::pages::errors::forbidden(chrome_for(&state, request.headers()).await)
    }
}

/// Every POST must carry the CSRF token of its session (or, before sign-in, its anonymous id).
/// The form is read here once and handed on parsed.
pub async fn check_csrf(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, super::MAX_FORM_BYTES).await else {
        return super::pages::errors::message_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form was too large",
            "Nothing was saved. Go back and try again with less text.",
        )
        .into_response();
    };
    let form = Form::parse(&bytes);
    let secret = match current_session(&state, &parts.headers).await {
        Some(session) => Some(session.token),
        None => cookie(&parts.headers, ANON_COOKIE).map(str::to_string),
    };
    let valid = match (secret, form.get(CSRF_FIELD)) {
        (Some(secret), Some(token)) => csrf_valid(&secret, token),
        _ => false,
    };
    if !valid {
        return super::pages::errors::message_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Nothing was saved. Go back, reload the page and try again.",
        )
        .into_response();
    }
    parts.extensions.insert(form);
    // The body goes on as it came, for any handler that reads it rather than the parsed form.
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_checked_post_reaches_its_handler_with_the_body_it_was_sent() {
        let store = screening_store::connect("sqlite::memory:").await.unwrap();
        let state = AppState::new(store, super::super::WebConfig::default());
        let app = axum::Router::new()
            .route(
                "/echo",
                axum::routing::post(|body: String| async move { body }),
            )
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                check_csrf,
            ))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let anonymous = "an-anonymous-visitor";
        let body = format!("{CSRF_FIELD}={}&note=kept", csrf_token(anonymous));
        let reply = reqwest::Client::new()
            .post(format!("http://{address}/echo"))
            .header(header::COOKIE, format!("{ANON_COOKIE}={anonymous}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        assert_eq!(reply.text().await.unwrap(), body);
    }

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        // The salt (16 bytes from the OS, base64) differs every time.
        let salt = |h: &str| h.split('$').nth(4).unwrap().to_string();
        let again = hash_password("a long enough password").unwrap();
        assert_eq!(salt(&hash).len(), 22);
        assert_ne!(salt(&hash), salt(&again));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn a_short_password_is_refused() {
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort)
        ));
    }

    #[test]
    fn a_csrf_token_is_valid_for_its_session_only() {
        let token = csrf_token("session-a");
        assert!(csrf_valid("session-a", &token));
        assert!(!csrf_valid("session-b", &token));
        assert!(!csrf_valid("session-a", "forged"));
        assert!(!csrf_valid("session-a", ""));
    }

    #[test]
    fn tokens_are_long_random_and_kept_only_as_hashes() {
        let token = random_token();
        assert_eq!(token.len(), 43, "256 bits in base64url");
        assert_ne!(token, random_token());
        assert_ne!(token_hash(&token), token);
        assert_ne!(
            token_hash(&token),
            csrf_token(&token),
            "the CSRF token is not the stored hash"
        );
    }

    #[test]
    fn return_urls_stay_on_this_site() {
        assert_eq!(safe_return_to(Some("/clinics/abc")), "/clinics/abc");
        assert_eq!(safe_return_to(Some("//evil.example")), "/clinics");
        assert_eq!(safe_return_to(Some("/\\evil.example")), "/clinics");
        assert_eq!(safe_return_to(Some("https://evil.example")), "/clinics");
        assert_eq!(safe_return_to(Some("/x\r\nSet-Cookie: a=b")), "/clinics");
        assert_eq!(safe_return_to(None), "/clinics");
    }

    #[test]
    fn cookies_are_read_from_any_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            "a=1; screening_session=abc".parse().unwrap(),
        );
        headers.append(header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
