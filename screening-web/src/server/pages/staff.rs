//! Admin: staff accounts. List them, add one, disable and re-enable, change a role, reset a
//! password. Every change is recorded on the audit page; disabling or a new password ends the
//! account's sessions on every instance at once. An admin cannot disable or demote themselves, so
//! the service is never left without one by accident.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use leptos::prelude::*;
use screening_core::prelude::*;
use screening_store::{now_utc, StaffChange};

use super::errors::PageError;
use super::Page;
use crate::server::auth::{hash_password, save_account, MIN_PASSWORD_CHARS};
use crate::server::form::Form;
use crate::server::format;
use crate::server::html::{CsrfField, ErrorSummary, Problem, Section, TextInput};
use crate::server::AppState;

/// What the add form was given, to show again when it is refused.
#[derive(Debug, Clone, Default)]
struct NewAccount {
    username: String,
    display_name: String,
    role: String,
}

/// `GET /admin/staff`.
pub async fn list(State(state): State<AppState>, page: Page) -> Result<Response, PageError> {
    render(
        &state,
        &page,
        StatusCode::OK,
        Vec::new(),
        NewAccount::default(),
    )
    .await
}

async fn render(
    state: &AppState,
    page: &Page,
    status: StatusCode,
    problems: Vec<Problem>,
    new: NewAccount,
) -> Result<Response, PageError> {
    let accounts = state.store.staff_accounts().await?;
    let csrf = page.chrome.csrf.clone();
    let me = page.session.user.username.clone();
    let rows = accounts
        .into_iter()
        .map(|account| {
            let user = account.user;
            let action = format!("/admin/staff/{}", user.username);
            let disabled = account.disabled_at.is_some();
            let is_me = user.username == me;
            let (role_action, role_label) = if user.role.is_admin() {
                ("make_staff", "Make clinic staff")
            } else {
                ("make_admin", "Make admin")
            };
            let status = match account.disabled_at {
                Some(at) => format!("Disabled {}", format::date_time(at)),
                None => "Active".to_string(),
            };
            view! {
                <tr class="nhsuk-table__row" data-username=user.username.to_string()>
                    <td class="nhsuk-table__cell">{user.username.to_string()}</td>
                    <td class="nhsuk-table__cell">{user.display_name.clone()}</td>
                    <td class="nhsuk-table__cell">{if user.role.is_admin() { "Admin" } else { "Clinic staff" }}</td>
                    <td class="nhsuk-table__cell">{status}</td>
                    <td class="nhsuk-table__cell">
                        {(!is_me).then(|| view! {
                            <form method="post" action=action.clone()>
                                <CsrfField token=csrf.clone()/>
                                {if disabled {
                                    view! {
                                        <button class="nhsuk-button nhsuk-button--small nhsuk-button--secondary" type="submit" name="action" value="enable">
                                            "Enable"<span class="nhsuk-u-visually-hidden">" "{user.username.to_string()}</span>
                                        </button>
                                    }.into_any()
                                } else {
                                    view! {
                                        <button class="nhsuk-button nhsuk-button--small nhsuk-button--warning" type="submit" name="action" value="disable">
                                            "Disable"<span class="nhsuk-u-visually-hidden">" "{user.username.to_string()}</span>
                                        </button>
                                    }.into_any()
                                }}
                                <button class="nhsuk-button nhsuk-button--small nhsuk-button--secondary" type="submit" name="action" value=role_action>
                                    {role_label}<span class="nhsuk-u-visually-hidden">": "{user.username.to_string()}</span>
                                </button>
                            </form>
                        })}
                        {is_me.then(|| view! { <p class="nhsuk-body-s">"You"</p> })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    let error_for = |id: &str| {
        problems
            .iter()
            .find(|problem| problem.href == format!("#{id}"))
            .map(|problem| problem.text.clone())
    };
    let (username_error, password_error, reset_error) = (
        error_for("username"),
        error_for("password"),
        error_for("reset-password"),
    );
    let admin_selected = new.role == "admin";
    Ok(page.render(
        status,
        "Staff accounts",
        Section::Staff,
        view! {
            <ErrorSummary problems=problems/>
            <h1>"Staff accounts"</h1>
            <table class="nhsuk-table">
                <caption class="nhsuk-table__caption nhsuk-u-visually-hidden">"Staff accounts"</caption>
                <thead class="nhsuk-table__head">
                    <tr>
                        <th class="nhsuk-table__header" scope="col">"Username"</th>
                        <th class="nhsuk-table__header" scope="col">"Name"</th>
                        <th class="nhsuk-table__header" scope="col">"Role"</th>
                        <th class="nhsuk-table__header" scope="col">"Status"</th>
                        <th class="nhsuk-table__header" scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody class="nhsuk-table__body">{rows}</tbody>
            </table>

            <h2>"Add a staff account"</h2>
            <form method="post" action="/admin/staff" novalidate>
                <CsrfField token=csrf.clone()/>
                <TextInput id="username" label="Username" value=new.username error=username_error autocomplete="off"/>
                <TextInput id="display_name" label="Name" value=new.display_name/>
                <div class="nhsuk-form-group">
                    <label class="nhsuk-label" for="role">"Role"</label>
                    <select class="nhsuk-select" id="role" name="role">
                        <option value="staff" selected=!admin_selected>"Clinic staff"</option>
                        <option value="admin" selected=admin_selected>"Admin"</option>
                    </select>
                </div>
                <TextInput id="password" label="Password" value=String::new() error=password_error
                    input_type="password" autocomplete="new-password"
                    hint="At least 12 characters. Give it to them in person; they cannot change it yet."/>
                <button class="nhsuk-button" type="submit">"Add account"</button>
            </form>

            <h2>"Reset a password"</h2>
            <form method="post" action="/admin/staff/reset-password" novalidate>
                <CsrfField token=csrf/>
                <TextInput id="reset-username" label="Username" value=String::new() autocomplete="off"/>
                <TextInput id="reset-password" label="New password" value=String::new() error=reset_error
                    input_type="password" autocomplete="new-password"
                    hint="At least 12 characters. Their sessions end at once."/>
                <button class="nhsuk-button nhsuk-button--secondary" type="submit">"Reset password"</button>
            </form>
        }
        .into_any(),
    ))
}

/// `POST /admin/staff`: `username`, `display_name`, `role`, `password`.
pub async fn create(
    State(state): State<AppState>,
    page: Page,
    Extension(form): Extension<Form>,
) -> Result<Response, PageError> {
    let new = NewAccount {
        username: form.text("username").to_string(),
        display_name: form.text("display_name").to_string(),
        role: form.text("role").to_string(),
    };
    let password = form.get("password").unwrap_or_default().to_string();
    let mut problems = Vec::new();
    let username = match Username::parse(&new.username) {
        Ok(username) => Some(username),
        Err(error) => {
            problems.push(Problem::field(
                "username",
                format::capitalised(&error.to_string()),
            ));
            None
        }
    };
    if let Some(username) = &username {
        let taken = state
            .store
            .staff_accounts()
            .await?
            .into_iter()
            .any(|account| &account.user.username == username);
        if taken {
            problems.push(Problem::field(
                "username",
                format!("{username} already has an account. Use its row to change it."),
            ));
        }
    }
    let role = new.role.parse::<StaffRole>().unwrap_or(StaffRole::Staff);
    if password.chars().count() < MIN_PASSWORD_CHARS {
        problems.push(Problem::field(
            "password",
            format!("Enter a password of at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if !problems.is_empty() {
        return render(&state, &page, StatusCode::BAD_REQUEST, problems, new).await;
    }
    let user = save_account(
        state.store.as_ref(),
        &new.username,
        &new.display_name,
        role,
        &password,
    )
    .await
    .map_err(|error| PageError::BadRequest(error.to_string()))?;
    page.audit(
        &state,
        "added a staff account",
        format!("staff {} ({})", user.username, user.role),
    )
    .await?;
    Ok(page.redirect_with_flash(
        "/admin/staff",
        &format!(
            "{} can now sign in as {}.",
            user.display_name, user.username
        ),
    ))
}

/// `POST /admin/staff/{username}`: `action` is `disable`, `enable`, `make_admin` or `make_staff`;
/// `POST /admin/staff/reset-password`: `reset-username` and `reset-password`.
pub async fn change(
    State(state): State<AppState>,
    page: Page,
    Path(target): Path<String>,
    Extension(form): Extension<Form>,
) -> Result<Response, PageError> {
    let resetting = target == "reset-password";
    let name = if resetting {
        form.text("reset-username").to_string()
    } else {
        target
    };
    let refuse = async |problem: Problem| {
        render(
            &state,
            &page,
            StatusCode::BAD_REQUEST,
            vec![problem],
            NewAccount::default(),
        )
        .await
    };
    let Ok(username) = Username::parse(&name) else {
        return refuse(Problem::field(
            "reset-username",
            "Enter the username of an account on this page",
        ))
        .await;
    };
    let change = if resetting {
        let password = form.get("reset-password").unwrap_or_default().to_string();
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return refuse(Problem::field(
                "reset-password",
                format!("Enter a password of at least {MIN_PASSWORD_CHARS} characters"),
            ))
            .await;
        }
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|error| PageError::BadRequest(error.to_string()))?
            .map_err(|error| PageError::BadRequest(error.to_string()))?;
        StaffChange::Password(hash)
    } else {
        match form.text("action") {
            "disable" => StaffChange::Disable,
            "enable" => StaffChange::Enable,
            "make_admin" => StaffChange::Role(StaffRole::Admin),
            "make_staff" => StaffChange::Role(StaffRole::Staff),
            other => {
                return Err(PageError::BadRequest(format!(
                "The action {:?} is not one this page offers. Go back and use one of the buttons.",
                other.chars().take(32).collect::<String>()
            )))
            }
        }
    };
    let yourself = username == page.session.user.username;
    if yourself
        && matches!(
            change,
            StaffChange::Disable | StaffChange::Role(StaffRole::Staff)
        )
    {
        return refuse(Problem::general(
            "You cannot disable your own account or remove your own admin role. Ask another admin.",
        ))
        .await;
    }
    match state
        .store
        .change_staff_account(&username, &change, now_utc())
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound { .. }) => {
            return refuse(Problem::field(
                "reset-username",
                format!("No account has the username {username}"),
            ))
            .await
        }
        Err(error) => return Err(error.into()),
    }
    let (audited, done) = match &change {
        StaffChange::Disable => (
            "disabled a staff account",
            format!("{username} can no longer sign in, and their sessions have ended."),
        ),
        StaffChange::Enable => (
            "enabled a staff account",
            format!("{username} can sign in again."),
        ),
        StaffChange::Role(role) => (
            "changed a staff account's role",
            format!(
                "{username} is now {}.",
                if role.is_admin() {
                    "an admin"
                } else {
                    "clinic staff"
                }
            ),
        ),
        StaffChange::Password(_) => (
            "reset a staff account's password",
            format!("{username} has a new password, and their sessions have ended."),
        ),
    };
    page.audit(&state, audited, format!("staff {username}"))
        .await?;
    Ok(page.redirect_with_flash("/admin/staff", &done))
}
