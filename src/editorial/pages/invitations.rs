//! Following an invitation link: join the team with the account the invitation was
//! sent to, signing in first if needed, or make that account if there is none. The link
//! works once: two clicks at the same moment make one member.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;

use super::see_other;
use crate::db::write_tx;
use crate::domain::blogs::{self, Blog};
use crate::domain::names::{EmailAddress, Username};
use crate::domain::password::Password;
use crate::domain::users::{self, User};
use crate::editorial::Actor;
use crate::editorial::audit::{self, actions};
use crate::editorial::invitations::{self, Invitation, Unusable};
use crate::editorial::roles;
use crate::error::{AppError, FieldError};
use crate::web::AppState;
use crate::web::auth::{self, SignedIn, html_page, html_page_invalid};
use crate::web::errors::urlencode;
use crate::web::ui::{self, Field, Page};

/// Routes under `/dashboard`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/invitations/{token}", web::get().to(show))
        .route("/invitations/{token}", web::post().to(accept))
        .route(
            "/invitations/{token}/account",
            web::post().to(create_account),
        );
}

/// The invitation, its blog and whether an account has its address.
struct Found {
    invitation: Invitation,
    blog: Blog,
    account: Option<User>,
}

async fn find(state: &AppState, token: String) -> Result<Result<Found, Unusable>, AppError> {
    state
        .db(move |conn| {
            let Some(invitation) = invitations::find_by_token(conn, &token)? else {
                return Ok(Err(Unusable::Unknown));
            };
            if let Some(why) = invitation.unusable(crate::domain::now()) {
                return Ok(Err(why));
            }
            let blog = blogs::find(conn, invitation.blog_id)?.ok_or(AppError::NotFound)?;
            let account = users::find_for_sign_in(conn, &invitation.email)?;
            Ok(Ok(Found {
                invitation,
                blog,
                account,
            }))
        })
        .await
}

fn unusable_page(state: &AppState, why: Unusable) -> HttpResponse {
    let page = Page {
        title: "This invitation cannot be used".into(),
        noindex: true,
        main: html! {
            h1 { "This invitation cannot be used" }
            p { (why.message()) }
            p { a href="/" { "Go to the home page" } }
        },
        ..Page::default()
    };
    let mut response = html_page(&state.public_chrome(), page);
    *response.status_mut() = match why {
        Unusable::Unknown => actix_web::http::StatusCode::NOT_FOUND,
        _ => actix_web::http::StatusCode::GONE,
    };
    response
}

#[derive(Debug, Default, Clone, Deserialize)]
struct AccountValues {
    #[serde(default)]
    username: String,
}

async fn show(
    state: web::Data<AppState>,
    session: Session,
    me: Option<SignedIn>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = path.into_inner();
    let found = match find(&state, token.clone()).await? {
        Ok(found) => found,
        Err(why) => return Ok(unusable_page(&state, why)),
    };
    invitation_page(
        &state,
        &session,
        me.as_ref(),
        &token,
        &found,
        &[],
        &AccountValues::default(),
        false,
    )
}

#[allow(clippy::too_many_arguments)]
fn invitation_page(
    state: &AppState,
    session: &Session,
    me: Option<&SignedIn>,
    token: &str,
    found: &Found,
    errors: &[FieldError],
    values: &AccountValues,
    invalid: bool,
) -> Result<HttpResponse, AppError> {
    let Found {
        invitation,
        blog,
        account,
    } = found;
    let csrf = auth::csrf_token(session)?;
    let role = invitation.role().as_str();
    let here = format!("/dashboard/invitations/{token}");
    let matches = me.is_some_and(|m| m.user.email == invitation.email);
    let page = Page {
        title: format!("Join the {} blog", blog.display_name),
        noindex: true,
        main: html! {
            div class="nhsuk-grid-row" { div class="nhsuk-grid-column-two-thirds" {
                (ui::error_summary(errors))
                h1 { "Join the " (blog.display_name) " blog" }
                p { "You are invited to join the team as " strong { (role) } ". The invitation was sent to " strong { (invitation.email) } "." }
                @if let Some(me) = me {
                    @if matches {
                        form method="post" action=(here) {
                            (ui::csrf_field(&csrf))
                            button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Accept and join the team" }
                        }
                    } @else {
                        p { "You are signed in as " (me.user.username) " (" (me.user.email) "). Only the account with the address the invitation was sent to can accept it: sign out, then follow the link again." }
                    }
                } @else if account.is_some() {
                    p { "You already have an account with that address." }
                    p { a class="nhsuk-button" data-module="nhsuk-button" role="button" draggable="false" href={ "/login?next=" (urlencode(&here)) } { "Sign in to accept" } }
                } @else {
                    h2 { "Create your account" }
                    form method="post" action={ (here) "/account" } novalidate {
                        (ui::csrf_field(&csrf))
                        (ui::input(Field::text("username", "Username").autocomplete("username").width(20)
                            .hint("Letters, numbers, dots, hyphens and underscores. You sign in with it, or with your email address."), &values.username, errors))
                        (ui::input(Field::text("password", "Password").kind("password").autocomplete("new-password").width(20)
                            .hint("At least 10 characters. A few unrelated words make a good one."), "", errors))
                        button class="nhsuk-button" data-module="nhsuk-button" type="submit" { "Create account and join" }
                    }
                }
            } }
        },
        ..Page::default()
    };
    let chrome = match me {
        Some(me) => me.chrome(state),
        None => state.public_chrome(),
    };
    Ok(if invalid {
        html_page_invalid(&chrome, page)
    } else {
        html_page(&chrome, page)
    })
}

#[derive(Deserialize)]
struct AcceptForm {
    csrf_token: String,
}

/// Takes the invitation for `user` and adds them to the team, in one transaction.
fn join(
    conn: &mut crate::db::DbConnection,
    invitation: &Invitation,
    user: &User,
    actor: &Actor,
) -> Result<(), AppError> {
    if !invitations::take(conn, invitation.id, user.id)? {
        return Err(AppError::Conflict(
            "this invitation has been used already, or has expired".into(),
        ));
    }
    let before = roles::set_member(conn, invitation.blog_id, user.id, invitation.role())?;
    audit::record(
        conn,
        &audit::Event::new(actor, actions::INVITATION_ACCEPTED)
            .blog(invitation.blog_id)
            .subject(user.username.clone())
            .detail("invitation", invitation.id)
            .detail("role", invitation.role().as_str())
            .detail("had_role", before.map(|r| r.as_str())),
    )?;
    Ok(())
}

async fn accept(
    state: web::Data<AppState>,
    me: SignedIn,
    path: web::Path<String>,
    form: web::Form<AcceptForm>,
) -> Result<HttpResponse, AppError> {
    me.check_csrf(&form.csrf_token)?;
    let found = match find(&state, path.into_inner()).await? {
        Ok(found) => found,
        Err(why) => return Ok(unusable_page(&state, why)),
    };
    if me.user.email != found.invitation.email {
        return Err(AppError::Forbidden);
    }
    let actor = Actor::web(&me.user);
    let user = me.user.clone();
    let invitation = found.invitation.clone();
    state
        .db(move |conn| write_tx(conn, |conn| join(conn, &invitation, &user, &actor)))
        .await?;
    Ok(see_other(&format!(
        "/dashboard/@{}/team?done=joined",
        found.blog.handle
    )))
}

#[derive(Deserialize)]
struct AccountForm {
    csrf_token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn create_account(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<AccountForm>,
) -> Result<HttpResponse, AppError> {
    auth::check_csrf(&session, &form.csrf_token)?;
    let token = path.into_inner();
    let found = match find(&state, token.clone()).await? {
        Ok(found) => found,
        Err(why) => return Ok(unusable_page(&state, why)),
    };
    if found.account.is_some() {
        return Ok(see_other(&format!(
            "/login?next={}",
            urlencode(&format!("/dashboard/invitations/{token}"))
        )));
    }
    let mut errors = Vec::new();
    let username = Username::parse(&form.username)
        .map_err(|e| errors.push(FieldError::new("username", e)))
        .ok();
    let password = Password::parse(&form.password)
        .map_err(|e| errors.push(FieldError::new("password", e)))
        .ok();
    let email = EmailAddress::parse(&found.invitation.email)
        .map_err(|e| errors.push(FieldError::new("", e)))
        .ok();
    let values = AccountValues {
        username: form.username.clone(),
    };
    let (Some(username), Some(password), Some(email), true) =
        (username, password, email, errors.is_empty())
    else {
        return invitation_page(
            &state, &session, None, &token, &found, &errors, &values, true,
        );
    };
    let invitation = found.invitation.clone();
    let created = state
        .db(move |conn| {
            write_tx(conn, |conn| {
                let user = users::create(conn, &username, &email, &password, false).map_err(
                    |e| match e {
                        users::CreateUserError::Taken => {
                            AppError::invalid("username", "That username is taken: choose another")
                        }
                        users::CreateUserError::Hash(e) => AppError::internal(e),
                        users::CreateUserError::Database(e) => e.into(),
                    },
                )?;
                let actor = Actor::web(&user);
                audit::record(
                    conn,
                    &audit::Event::new(&actor, actions::ACCOUNT_CREATED)
                        .blog(invitation.blog_id)
                        .subject(user.username.clone())
                        .detail("by_invitation", invitation.id),
                )?;
                join(conn, &invitation, &user, &actor)?;
                Ok(user)
            })
        })
        .await;
    let user = match created {
        Ok(user) => user,
        Err(AppError::Validation(errors)) => {
            return invitation_page(
                &state, &session, None, &token, &found, &errors, &values, true,
            );
        }
        Err(other) => return Err(other),
    };
    auth::start_session(&state, &req, &session, &user).await?;
    Ok(see_other(&format!(
        "/dashboard/@{}/team?done=joined",
        found.blog.handle
    )))
}
