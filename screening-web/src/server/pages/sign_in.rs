//! Signing in and out.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use leptos::prelude::*;
use screening_store::now_utc;
use serde::Deserialize;

use super::append_cookie;
use crate::server::auth::{
    cookie, csrf_token, current_session, over_tls, random_token, safe_return_to, set_cookie,
    start_session, token_hash, Admission, Session, SignInError, SignInLimits, ANON_COOKIE,
    SESSION_COOKIE, SESSION_HOURS,
};
use crate::server::form::Form;
use crate::server::html::{
    render_page, Chrome, CsrfField, ErrorSummary, Problem, Section, SuccessBanner, TextInput,
};
use crate::server::AppState;

/// The sign-in page's query.
#[derive(Debug, Deserialize, Default)]
pub struct SignInQuery {
    return_to: Option<String>,
    signed_out: Option<String>,
}

/// `GET /sign-in`: the form (or straight on, when already signed in).
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    let return_to = safe_return_to(query.return_to.as_deref());
    if current_session(&state, &headers).await.is_some() {
        return Redirect::to(&return_to).into_response();
    }
    let banner = query
        .signed_out
        .is_some()
        .then(|| "You have signed out.".to_string());
    render_form(
        &state,
        &headers,
        StatusCode::OK,
        &return_to,
        "",
        Vec::new(),
        banner,
    )
}

/// `POST /sign-in`.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    connected: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(form): Extension<Form>,
) -> Response {
    let return_to = safe_return_to(form.get("return_to"));
    let username = form.text("username");
    let password = form.get("password").unwrap_or_default();
    let mut problems = Vec::new();
    if username.is_empty() {
        problems.push(Problem::field("username", "Enter your username"));
    }
    if password.is_empty() {
        problems.push(Problem::field("password", "Enter your password"));
    }
    if !problems.is_empty() {
        return render_form(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            &return_to,
            username,
            problems,
            None,
        );
    }
    let address = connected.map(|Extension(ConnectInfo(address))| address.ip());
    let admission =
        match SignInLimits::admit(state.store.as_ref(), username, address, now_utc()).await {
            Ok(admission) => admission,
            Err(error) => return super::errors::PageError::Store(error).into_response(),
        };
    let refusal = match admission {
        Admission::Allowed => None,
        Admission::TooManyForUsername => Some(
            "Too many failed sign-ins for this username. Wait 15 minutes, or ask an administrator \
             to reset your password",
        ),
        Admission::TooManyFromAddress => Some(
            "Too many sign-ins from your network. Wait 15 minutes, or ask an administrator for help",
        ),
    };
    if let Some(refusal) = refusal {
        let problem = Problem::field("username", refusal);
        return render_form(
            &state,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            &return_to,
            username,
            vec![problem],
            None,
        );
    }
    match state.authenticator.sign_in(username, password).await {
        Ok(user) => {
            if let Err(error) =
                SignInLimits::signed_in(state.store.as_ref(), username, address).await
            {
                return super::errors::PageError::Store(error).into_response();
            }
            let token = match start_session(state.store.as_ref(), &user).await {
                Ok(token) => token,
                Err(error) => return super::errors::PageError::Store(error).into_response(),
            };
            let secure = over_tls(&state, &headers);
            let mut response = Redirect::to(&return_to).into_response();
            append_cookie(
                &mut response,
                &set_cookie(SESSION_COOKIE, &token, SESSION_HOURS * 3600, secure),
            );
            append_cookie(&mut response, &set_cookie(ANON_COOKIE, "", 0, secure));
            response
        }
        Err(SignInError::Rejected) => render_form(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            &return_to,
            username,
            vec![Problem::field(
                "username",
                SignInError::Rejected.to_string(),
            )],
            None,
        ),
        Err(SignInError::Store(error)) => super::errors::PageError::Store(error).into_response(),
    }
}

/// `POST /sign-out`: ends the session, here and in the database.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(session): Extension<Session>,
) -> Response {
    if let Err(error) = state.store.end_session(&token_hash(&session.token)).await {
        return super::errors::PageError::Store(error).into_response();
    }
    let mut response = Redirect::to("/sign-in?signed_out=1").into_response();
    append_cookie(
        &mut response,
        &set_cookie(SESSION_COOKIE, "", 0, over_tls(&state, &headers)),
    );
    response
}

fn render_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    return_to: &str,
    username: &str,
    problems: Vec<Problem>,
    banner: Option<String>,
) -> Response {
    // The form's CSRF token is bound to an anonymous id kept in a cookie until sign-in.
    let existing = cookie(headers, ANON_COOKIE)
        .filter(|value| !value.is_empty() && value.len() <= 64)
        .map(str::to_string);
    let anon_id = existing.clone().unwrap_or_else(random_token);
    let csrf = csrf_token(&anon_id);
    let username_error = problems
        .iter()
        .find(|p| p.href == "#username")
        .map(|p| p.text.clone());
    let password_error = problems
        .iter()
        .find(|p| p.href == "#password")
        .map(|p| p.text.clone());
    let return_to = return_to.to_string();
    let username = username.to_string();
    let mut response = render_page(
        status,
        "Sign in",
        Section::None,
        &Chrome::default(),
        view! {
            {banner.map(|text| view! { <SuccessBanner text=text/> })}
            <ErrorSummary problems=problems/>
            <h1>"Sign in"</h1>
            <p>"Sign in with the account your screening service gave you."</p>
            <form method="post" action="/sign-in" novalidate>
                <CsrfField token=csrf/>
                <input type="hidden" name="return_to" value=return_to/>
                <TextInput id="username" label="Username" value=username error=username_error autocomplete="username"/>
                <TextInput id="password" label="Password" value=String::new() input_type="password" error=password_error autocomplete="current-password"/>
                <button class="nhsuk-button" type="submit">"Sign in"</button>
            </form>
        }
        .into_any(),
    );
    if existing.is_none() {
        append_cookie(
            &mut response,
            &set_cookie(ANON_COOKIE, &anon_id, 3600, over_tls(state, headers)),
        );
    }
    response
}
